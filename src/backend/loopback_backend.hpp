// Loopback backend: every frame the guest transmits comes back on its RX
// queue, byte for byte (the ktstr seed's in-VMM loopback, behind NetBackend).
//
// Frames wait in a bounded ring whose storage is allocated once at
// construction; when the guest sends faster than it posts RX buffers the ring
// fills and further frames are dropped and counted, so memory stays bounded.
#pragma once

#include <cstdint>

#include "backend/frame_ring.hpp"
#include "base/counter_set.hpp"
#include "net/net_backend.hpp"

namespace vnk::backend {

#define VNK_LOOPBACK_COUNTERS(X)                                            \
  X(frames_queued)    /* frames from the guest kept for its RX queue */       \
  X(frames_delivered) /* frames handed back to the guest */                  \
  X(drops_ring_full)  /* frames dropped: the guest posted no RX buffers in time */

struct LoopbackCounters {
  VNK_LOOPBACK_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_LOOPBACK_COUNTERS)
};

class LoopbackBackend final : public net::NetBackend {
 public:
  static constexpr std::size_t kDefaultCapacity = 256;

  explicit LoopbackBackend(std::size_t capacity = kDefaultCapacity);

  net::TxResult transmit(const net::TxFrame& frame) override;
  net::RxResult receive(std::span<const iovec> buffer) override;
  [[nodiscard]] bool rx_pending() const override { return !ring_.empty(); }
  [[nodiscard]] std::size_t next_frame_bound() const override { return ring_.front_length(); }
  [[nodiscard]] std::string_view name() const override { return "loopback"; }

  [[nodiscard]] std::size_t queued() const noexcept { return ring_.size(); }
  [[nodiscard]] const LoopbackCounters& counters() const noexcept { return counters_; }

 private:
  FrameRing ring_;
  LoopbackCounters counters_;
};

}  // namespace vnk::backend
