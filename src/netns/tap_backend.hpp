// A NetBackend on a host TAP device (`vnetkit serve --net tap:IFNAME`): the
// guest's frames go to the TAP, the TAP's frames to the guest, so a user can
// bridge the guest into a real L2 network (a bridge, a veth, macvtap's
// neighbours) the way QEMU's -netdev tap does.
//
// The TAP is opened (or created) with IFF_VNET_HDR, so every frame carries the
// same 12-byte virtio-net header the guest's driver exchanges with the
// device: checksum and segmentation offloads pass through untouched. TX takes
// whatever the guest's header says (a TAP accepts partial checksums and GSO
// frames from its writer); toward the guest, set_rx_offloads() tells the TAP
// (TUNSETOFFLOAD) which ones the guest negotiated, so the kernel completes
// the rest before a frame reaches us. Frames cross with one writev() and
// one readv() each, straight between guest memory and the TAP.
#pragma once

#include <expected>
#include <memory>
#include <string>

#include "base/counter_set.hpp"
#include "base/unique_fd.hpp"
#include "net/net_backend.hpp"

namespace vnk::netns {

#define VNK_TAP_BACKEND_COUNTERS(X)                                                  \
  X(frames_to_tap)   /* guest frames written to the TAP */                           \
  X(bytes_to_tap)    /* their bytes, virtio-net header excluded */                   \
  X(frames_from_tap) /* TAP frames delivered to the guest */                         \
  X(bytes_from_tap)  /* their bytes */                                               \
  X(write_errors)    /* writes the TAP refused (interface down, ...): frame lost */ \
  X(read_errors)     /* reads that failed with something other than EAGAIN */        \
  X(rx_truncated)    /* TAP frames larger than the guest's buffer */

struct TapBackendCounters {
  VNK_TAP_BACKEND_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_TAP_BACKEND_COUNTERS)
};

class TapBackend final : public net::NetBackend {
 public:
  // Opens TAP `ifname` (created if it does not exist; an existing one must be
  // a TAP with IFF_VNET_HDR, or unused); the error is a sentence for the user.
  static std::expected<std::unique_ptr<TapBackend>, std::string> open(const std::string& ifname);

  net::TxResult transmit(const net::TxFrame& frame) override;
  net::RxResult receive(std::span<const iovec> buffer) override;
  [[nodiscard]] bool rx_pending() const override { return false; }  // the TAP's fd says
  [[nodiscard]] int rx_fd() const override { return tap_.get(); }
  [[nodiscard]] std::string_view name() const override { return "tap"; }
  // A TAP takes partial checksums and TCP GSO frames from its writer.
  [[nodiscard]] net::TxOffloads tx_offloads() const override { return {true, true, true}; }
  void set_rx_offloads(net::RxOffloads offloads) override;
  [[nodiscard]] const TapBackendCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] const std::string& ifname() const noexcept { return ifname_; }

 private:
  TapBackend(UniqueFd tap, std::string ifname) : tap_(std::move(tap)), ifname_(std::move(ifname)) {}
  UniqueFd tap_;
  std::string ifname_;
  TapBackendCounters counters_;
};

}  // namespace vnk::netns
