// Socketpair backend: one Ethernet frame per datagram on a SOCK_DGRAM (or
// SOCK_SEQPACKET) Unix socket, the framing vfkit, gvproxy and the arcbox seed
// use. No virtio-net header crosses the socket.
//
// The fd is nonblocking. TX is sendmsg() straight from guest memory; a full
// socket buffer drops the frame (counted), as a NIC with a full ring would.
// RX is recvmsg() straight into the guest's buffer; MSG_TRUNC reports the real
// length so an oversize datagram is delivered truncated and counted.
#pragma once

#include <expected>
#include <memory>
#include <string>

#include "base/counter_set.hpp"
#include "base/unique_fd.hpp"
#include "net/net_backend.hpp"

namespace vnk::backend {

#define VNK_SOCKETPAIR_COUNTERS(X)                                       \
  X(tx_would_block) /* socket buffer full: frame dropped */              \
  X(tx_errors)      /* sendmsg failed otherwise (peer gone, ...) */      \
  X(rx_errors)      /* recvmsg failed with something other than EAGAIN */\
  X(rx_runts)       /* datagrams shorter than an Ethernet header, dropped */

struct SocketpairCounters {
  VNK_SOCKETPAIR_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_SOCKETPAIR_COUNTERS)
};

class SocketpairBackend final : public net::NetBackend {
 public:
  // Takes ownership of `fd`; fails (with a sentence for the user) when it is
  // not a datagram-preserving Unix socket.
  static std::expected<std::unique_ptr<SocketpairBackend>, std::string> create(UniqueFd fd);

  net::TxResult transmit(const net::TxFrame& frame) override;
  net::RxResult receive(std::span<const iovec> buffer) override;
  [[nodiscard]] bool rx_pending() const override { return false; }
  [[nodiscard]] int rx_fd() const override { return fd_.get(); }
  [[nodiscard]] std::string_view name() const override { return "socketpair"; }

  [[nodiscard]] const SocketpairCounters& counters() const noexcept { return counters_; }

 private:
  explicit SocketpairBackend(UniqueFd fd) : fd_(std::move(fd)) {}

  UniqueFd fd_;
  SocketpairCounters counters_;
};

}  // namespace vnk::backend
