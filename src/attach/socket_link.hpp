// Drives a NetBackend from a socket that carries plain Ethernet frames --
// the way VMMs and tools without vhost-user hand their network to a helper:
//
//   stream    QEMU's -netdev stream (and passt's, gvproxy's qemu mode): a
//             4-byte big-endian length before each frame (StreamDeframer);
//             partial reads and writes are carried over, and while the peer
//             does not take our bytes no further frame is taken from the
//             backend (backpressure, nothing dropped);
//   datagram  one frame per datagram: a SOCK_DGRAM or SOCK_SEQPACKET
//             socketpair end (vfkit, krunkit, Virtualization.framework's
//             file-handle attachment) or a bound unixgram socket (QEMU's
//             -netdev dgram, vfkit's unixgram://), answered at the address
//             the last datagram came from; a datagram the socket cannot
//             take yet waits for it the same way.
//
// It plays the part TapLink plays for a TAP and the virtio queues for a
// guest, through the same NetBackend and FrameInterceptor interfaces. There
// is no virtio-net header on these sockets, so frames go both ways whole and
// checksummed, at most the MTU (no offloads are turned on). A malformed
// stream (a length of 0 or over 64 KiB + 14) ends the connection, counted;
// a peer that hangs up ends it too (closed()).
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstddef>
#include <vector>

#include "attach/stream_deframer.hpp"
#include "base/counter_set.hpp"
#include "base/unique_fd.hpp"
#include "net/net_backend.hpp"

namespace vnk::attach {

#define VNK_SOCKET_LINK_COUNTERS(X)                                                             \
  X(frames_from_peer)   /* frames read from the socket and handed on */                          \
  X(bytes_from_peer)    /* their bytes */                                                        \
  X(frames_to_peer)     /* frames written to the socket */                                       \
  X(bytes_to_peer)      /* their bytes */                                                        \
  X(intercepted)        /* frames from the peer consumed by the interceptor (MMDS) */            \
  X(drop_runt)          /* frames shorter than an Ethernet header */                             \
  X(drop_backend)       /* frames the backend refused */                                         \
  X(drop_truncated)     /* backend frames larger than the buffer */                              \
  X(bad_length)         /* stream lengths of 0 or over 65549 bytes: the connection was closed */ \
  X(write_waits)        /* times the peer's socket was full and a frame had to wait */           \
  X(read_errors)        /* reads that failed with something other than EAGAIN */                 \
  X(write_errors)       /* datagrams the socket refused (lost), or a stream write that failed */ \
  X(disconnects)        /* the peer hung up (stream: EOF) */

struct SocketLinkCounters {
  VNK_SOCKET_LINK_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_SOCKET_LINK_COUNTERS)
};

class SocketLink {
 public:
  enum class Framing { stream, datagram };
  // Frames handled per call before returning, so neither direction starves
  // the other.
  static constexpr unsigned kBudget = 64;
  // Datagrams taken per recvmmsg(), and sent per sendmmsg().
  static constexpr std::size_t kDatagramBatch = 16;

  // `sock` is non-blocking. `connected`: it has a peer of its own (a
  // stream connection, a socketpair end). With Framing::datagram on an
  // unconnected socket (a bound unixgram path), frames for the peer go to
  // the address the last datagram came from; none go before the first
  // arrives. `interceptor` may be null; it and `backend` must outlive the
  // link. `counters` are kept across connections (the owner's).
  SocketLink(UniqueFd sock, Framing framing, bool connected, net::NetBackend& backend,
             net::FrameInterceptor* interceptor, SocketLinkCounters& counters);

  [[nodiscard]] int fd() const noexcept { return sock_.get(); }
  // Datagram, unconnected: frames go to `peer` from now on (a sender the
  // owner tells apart on a shared unixgram socket it reads itself).
  void set_peer(const sockaddr_storage& peer, socklen_t len) noexcept {
    peer_ = peer;
    peer_len_ = len;
  }
  // A frame the owner read for this link's peer: handed on as from_peer()
  // hands on what it reads (the owner calls the backend's flush_tx()).
  void deliver_frame(std::span<const std::byte> frame) { deliver(frame); }
  // Peer → backend: reads until EAGAIN or the budget. True when it stopped
  // at the budget (more may be waiting).
  bool from_peer();
  // Backend → peer: writes what the backend and interceptor have, unless the
  // socket is full. `backend_ready`: rx_fd() was reported readable. True
  // when it stopped at the budget.
  bool to_peer(bool backend_ready = true);
  // True when to_peer() has frames to write without waiting for rx_fd().
  [[nodiscard]] bool pending() const;
  // A frame waits for the socket (half a stream frame, or a datagram it
  // refused with EAGAIN): wait for EPOLLOUT, then to_peer().
  [[nodiscard]] bool wants_write() const noexcept {
    return framing_ == Framing::stream ? out_begin_ < out_end_ : dgram_sent_ < dgram_count_;
  }
  // Frames may go to the peer: false for an unconnected datagram socket
  // until the first datagram names where answers go.
  [[nodiscard]] bool can_send() const noexcept {
    return framing_ == Framing::stream || connected_ || peer_len_ != 0;
  }
  // The peer hung up or broke the framing: the owner closes the link.
  [[nodiscard]] bool closed() const noexcept { return closed_; }

 private:
  void deliver(std::span<const std::byte> frame);
  bool read_stream();
  bool read_datagrams();
  // Writes what of out_ is unwritten; false while the socket is full.
  bool flush();
  bool flush_datagrams();
  // Counts a send that failed for good (once logged, with a hint for
  // sandbox-related errors).
  void warn_send_failed(int err);
  // The next frame from the interceptor or backend into `space`; its length,
  // or 0 when there is none.
  std::size_t next_frame(std::span<std::byte> space, bool backend_ready);

  UniqueFd sock_;
  Framing framing_;
  net::NetBackend& backend_;
  net::FrameInterceptor* interceptor_;
  SocketLinkCounters& counters_;
  StreamDeframer deframer_;          // stream
  std::vector<std::byte> in_;        // datagram: kDatagramBatch frame-sized slots
  std::vector<std::byte> out_;       // stream: the length and one frame; datagram: kDatagramBatch frame slots
  std::size_t out_begin_ = 0, out_end_ = 0;  // stream: bytes of out_ not yet written
  // Datagram: frames gathered in out_'s frame-sized slots, and sent of them.
  std::array<std::size_t, kDatagramBatch> dgram_lens_{};
  std::size_t dgram_count_ = 0, dgram_sent_ = 0;
  bool connected_ = false;           // datagram: the socket has a peer of its own (a socketpair)
  bool seqpacket_ = false;           // datagram on SOCK_SEQPACKET: a read of 0 is the peer hanging up
  sockaddr_storage peer_{};          // datagram, unconnected: where replies go
  socklen_t peer_len_ = 0;
  bool closed_ = false;
};

}  // namespace vnk::attach
