// Small datagrams from the guest, held for one host socket until they can go
// out together with one sendmmsg() instead of one system call each.
//
// The TX engines hand usernet one frame per call and guest memory is only
// valid during that call, so each datagram's bytes are copied here (small
// ones only: a larger datagram is sent at once, after the batch). A batch
// holds datagrams for one socket; the owner sends it when the next datagram
// is for another socket, when it is full, before that socket closes, and at
// the end of every batch of frames (NetBackend::flush_tx).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "usernet/socket_address.hpp"

namespace vnk::usernet {

class DatagramBatch {
 public:
  static constexpr std::size_t kMaxDatagrams = 64;
  static constexpr std::size_t kMaxBytes = 2048;  // larger datagrams are not held

  // What one send() did, per kind (UDP, ICMP echo) as add() tagged them.
  struct Outcome {
    unsigned udp_sent = 0, udp_failed = 0;
    unsigned icmp_sent = 0, icmp_failed = 0;
  };

  DatagramBatch();

  // True when a datagram of `length` bytes for `fd` may join: it is small,
  // and the batch is empty or already for `fd`. (The batch is sent when full.)
  [[nodiscard]] bool accepts(int fd, std::size_t length) const noexcept {
    return length <= kMaxBytes && (count_ == 0 || fd == fd_);
  }
  // Copies the datagram in; `to` (may be null) is its destination for an
  // unconnected socket. Only after accepts() said yes.
  void add(int fd, const SocketAddress* to, bool icmp, std::span<const iovec> payload, std::size_t length) noexcept;
  [[nodiscard]] bool full() const noexcept { return count_ == kMaxDatagrams; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] int fd() const noexcept { return count_ ? fd_ : -1; }
  // Sends every held datagram (non-blocking; a datagram the socket refuses
  // is lost and counted as failed, as a single send would be) and empties
  // the batch.
  Outcome send() noexcept;

 private:
  int fd_ = -1;
  std::size_t count_ = 0;
  std::array<mmsghdr, kMaxDatagrams> msgs_{};
  std::array<iovec, kMaxDatagrams> iov_{};
  std::array<SocketAddress, kMaxDatagrams> to_{};
  std::array<bool, kMaxDatagrams> icmp_{};
  std::unique_ptr<std::byte[]> bytes_;  // kMaxDatagrams slots of kMaxBytes
};

}  // namespace vnk::usernet
