// Drives a NetBackend from a TAP fd: the TAP's frames go to
// backend.transmit(), the backend's frames are written to the TAP. It plays
// the part the virtio queues play for a guest, through the same NetBackend
// (and FrameInterceptor) interfaces, so usernet serves a network namespace
// exactly as it serves a VM.
//
// The fd carries one frame per read()/write() behind a 12-byte virtio-net
// header (a TAP opened with IFF_VNET_HDR; a SOCK_SEQPACKET socket works the
// same, which is how the unit tests drive it). Frames are read into, and
// written from, one buffer owned here; the backend sees spans of it.
#pragma once

#include <sys/uio.h>

#include <vector>

#include "base/counter_set.hpp"
#include "base/unique_fd.hpp"
#include "net/net_backend.hpp"

namespace vnk::netns {

#define VNK_TAP_LINK_COUNTERS(X)                                                    \
  X(frames_from_tap)  /* frames read from the TAP and handed on */                  \
  X(bytes_from_tap)   /* their bytes, virtio-net header excluded */                 \
  X(frames_to_tap)    /* frames written to the TAP */                               \
  X(bytes_to_tap)     /* their bytes, virtio-net header excluded */                 \
  X(intercepted)      /* frames from the TAP consumed by the interceptor (MMDS) */  \
  X(drop_runt)        /* reads shorter than the header plus an Ethernet header */   \
  X(drop_oversize)    /* frames longer than the read buffer */                      \
  X(drop_backend)     /* frames the backend refused */                              \
  X(drop_truncated)   /* backend frames larger than the buffer */                   \
  X(read_errors)      /* read() failed with something other than EAGAIN */          \
  X(write_errors)     /* write() failed: the frame is lost (the interface down, ...) */

struct TapLinkCounters {
  VNK_TAP_LINK_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_TAP_LINK_COUNTERS)
};

class TapLink {
 public:
  // Frames handled per call before returning, so neither direction starves
  // the other.
  static constexpr unsigned kBudget = 64;
  // to_tap() reads the TAP (from_tap()) after every this many frames it
  // writes: the namespace's kernel answers our segments with ACKs while we
  // write, and taking them between bursts keeps the data in flight toward it
  // short -- which is what each peek re-reads on kernels without TCP
  // SO_PEEK_OFF, and what holds the window up on every kernel.
  static constexpr unsigned kReadEvery = 4;

  // `interceptor` may be null. Both must outlive the link.
  TapLink(UniqueFd tap, net::NetBackend& backend, net::FrameInterceptor* interceptor);

  [[nodiscard]] int tap_fd() const noexcept { return tap_.get(); }
  // Turns on checksum offload and TCP segmentation offload for IPv4 on the
  // TAP (TUNSETOFFLOAD: TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) and tells the backend it
  // may send frames with partial checksums and of up to 64 KiB. False (and
  // nothing changed) where the fd refuses it.
  bool enable_offloads();
  [[nodiscard]] const TapLinkCounters& counters() const noexcept { return counters_; }

  // TAP → backend: reads frames until the fd is drained or the budget is
  // spent. Returns true when it stopped at the budget (more may be waiting).
  bool from_tap();
  // Backend → TAP: writes the frames the backend (and interceptor) have,
  // reading the TAP between bursts (kReadEvery).
  // `backend_ready`: the backend's rx_fd() was reported readable; without it
  // only frames already pending() are taken, so no call is spent asking an
  // idle backend. Returns true when it stopped at the budget.
  bool to_tap(bool backend_ready = true);
  // True when to_tap() has frames to write without waiting for rx_fd().
  [[nodiscard]] bool pending() const;

 private:
  // from_tap() without the flush: frames until EAGAIN or the budget.
  bool read_burst();

  UniqueFd tap_;
  net::NetBackend& backend_;
  net::FrameInterceptor* interceptor_;
  TapLinkCounters counters_;
  std::vector<std::byte> in_;   // virtio-net header + one frame read from the TAP
  std::vector<std::byte> out_;  // virtio-net header + one frame for the TAP
};

}  // namespace vnk::netns
