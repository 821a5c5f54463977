// The seam between the virtio-net device and whatever carries its frames.
//
// The device knows no concrete backend. TX hands a backend the frame as spans
// (valid only during the call: copy or write them out before returning) plus
// the parsed virtio-net header. The frame's leading bytes -- every header a
// consumer parses -- are a copy in host memory, taken once by the TX engine;
// only the payload behind them is still guest memory (zero-copy). So the
// interceptor, the backend and pcap all see the same headers, whatever
// another vCPU writes into the guest's buffer meanwhile (time of check is
// time of use). RX hands a backend the
// guest's posted buffer as spans so it writes (or recv()s) the frame straight
// into guest memory; the device writes the header afterwards.
//
// Backends live in src/backend/ and depend on this file, never the reverse.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <string_view>

#include "net/net_header.hpp"

namespace vnk::net {

// How many leading bytes of each TX frame are copied into host memory:
// Ethernet (14) + the largest IPv4 (60) or IPv6 header with extension
// headers one may parse + TCP with options (60), with room to spare.
constexpr std::size_t kTxHeadBytes = 256;

struct TxFrame {
  const NetHeader& header;
  // The Ethernet frame, virtio-net header stripped: data[0] is `head`, the
  // rest is the payload in guest memory.
  std::span<const iovec> data;
  std::size_t length;                // == iov_length(data)
  std::span<const std::byte> head;   // the first min(length, kTxHeadBytes) bytes, in host memory
};

enum class TxResult { sent, dropped };

enum class RxStatus {
  frame,  // a frame was written into the buffer
  empty,  // nothing to deliver now
  error,  // the backend failed; the buffer's contents are undefined
};

struct RxResult {
  RxStatus status = RxStatus::empty;
  std::size_t frame_len = 0;  // the frame's real length
  std::size_t written = 0;    // bytes written; < frame_len when the buffer was too small
  NetHeader header{};         // offload fields for the guest (num_buffers set by the device)
};

// What the consumer of RX frames (the guest's driver, a TAP) accepts besides
// whole frames with every checksum done: partial checksums (NEEDS_CSUM with
// csum_start/csum_offset; the consumer completes them) and TCP segmentation
// offload for IPv4 and IPv6 (one frame of up to 64 KiB, cut by the consumer
// at gso_size). TSO comes only with partial checksums.
struct RxOffloads {
  bool partial_csum = false;
  bool tso4 = false;
  bool tso6 = false;
};

// What a backend takes from the guest besides whole, checksummed frames of
// at most the MTU: partial checksums (it never needs the checksum, or
// completes it) and TCPv4 and TCPv6 GSO frames of up to 64 KiB (it takes
// the payload as one). The device offers VIRTIO_NET_F_CSUM, HOST_TSO4 and
// HOST_TSO6 only for a backend that says so.
struct TxOffloads {
  bool partial_csum = false;
  bool tso4 = false;
  bool tso6 = false;
};

class NetBackend {
 public:
  virtual ~NetBackend() = default;

  [[nodiscard]] virtual TxOffloads tx_offloads() const { return {}; }

  // The consumer's offloads, once known (negotiated with the guest, or set
  // on the TAP). A backend that builds frames itself may use them; the
  // default ignores them.
  virtual void set_rx_offloads(RxOffloads offloads) { (void)offloads; }

  virtual TxResult transmit(const TxFrame& frame) = 0;
  // The end of a batch of transmit() calls (a TX drain, a TAP read burst):
  // a backend that holds frames to send them together sends them now.
  virtual void flush_tx() {}
  // Fills `buffer` (guest memory) with the next frame, if any.
  virtual RxResult receive(std::span<const iovec> buffer) = 0;
  // True when receive() can produce a frame without waiting for rx_fd().
  [[nodiscard]] virtual bool rx_pending() const = 0;
  // An upper bound on the length of the frame receive() would produce next:
  // with MRG_RXBUF the device gathers that much posted buffer space first.
  [[nodiscard]] virtual std::size_t next_frame_bound() const { return kMaxFrameSize; }
  // A pollable fd that becomes readable when receive() may produce a frame,
  // or -1 for in-process backends (use rx_pending()).
  [[nodiscard]] virtual int rx_fd() const { return -1; }
  [[nodiscard]] virtual std::string_view name() const = 0;
};

// Sits in front of any backend: sees each TX frame first and may consume it
// (the metadata service answers 169.254.169.254 this way), and injects its
// own RX frames ahead of the backend's.
class FrameInterceptor {
 public:
  virtual ~FrameInterceptor() = default;

  // True when the frame was consumed and must not reach the backend.
  virtual bool intercept_tx(const TxFrame& frame) = 0;
  virtual RxResult receive(std::span<const iovec> buffer) = 0;
  [[nodiscard]] virtual bool rx_pending() const = 0;
  [[nodiscard]] virtual std::size_t next_frame_bound() const { return kMaxFrameSize; }
};

// The two paths every consumer of a backend (the device's engines, a TAP
// link, a frame-socket link) takes, with an optional interceptor in front.
//
// A frame from the consumer: the interceptor may consume it; otherwise the
// backend takes or drops it.
enum class TxPath { intercepted, dropped, sent };
inline TxPath transmit_through(NetBackend& backend, FrameInterceptor* interceptor, const TxFrame& frame) {
  if (interceptor && interceptor->intercept_tx(frame)) return TxPath::intercepted;
  return backend.transmit(frame) == TxResult::dropped ? TxPath::dropped : TxPath::sent;
}
// The next frame for the consumer: the interceptor's own first, then the
// backend's.
inline RxResult receive_through(NetBackend& backend, FrameInterceptor* interceptor, std::span<const iovec> buffer) {
  RxResult r;
  if (interceptor && interceptor->rx_pending()) r = interceptor->receive(buffer);
  if (r.status == RxStatus::empty) r = backend.receive(buffer);
  return r;
}
// receive_through() has something without waiting for the backend's rx_fd().
inline bool rx_pending_through(const NetBackend& backend, const FrameInterceptor* interceptor) {
  return backend.rx_pending() || (interceptor && interceptor->rx_pending());
}

}  // namespace vnk::net
