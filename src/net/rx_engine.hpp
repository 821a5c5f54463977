// RX (backend -> guest) for one queue: pop posted buffers, let the
// interceptor or backend write a frame straight into them, then write the
// virtio-net header in front and complete the buffers.
//
// Without MRG_RXBUF a frame fills one chain (truncated to fit, counted in
// rx_truncated). With MRG_RXBUF (virtio 1.2 §5.1.6.3.1) the engine first
// gathers as many posted buffers as the next frame may need -- the backend
// gives a bound -- presents them to the backend as one buffer, then completes
// only those the frame reached, with num_buffers in the header saying how
// many, and gives the rest back to the ring. Linux posts buffers of one or
// two pages in that mode, so a 64 KiB GSO frame spans a dozen or more.
//
// The header is written last, after the frame landed, so a failure never
// leaves a header that claims a frame; if the backend fails mid-write the
// header bytes are cleared before the chain is completed with length 0.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>

#include "net/engine_context.hpp"
#include "virtio/virtqueue.hpp"

namespace vnk::net {

struct QueueDrain;

class RxEngine {
 public:
  RxEngine(virtio::Virtqueue queue, std::uint16_t index) : queue_(std::move(queue)), index_(index) {}

  // Delivers up to kDrainBudget frames. Returns true when more may be waiting.
  bool process(const EngineContext& ctx);

  [[nodiscard]] virtio::Virtqueue& queue() noexcept { return queue_; }
  // True when the last process() stopped because the guest had no buffer
  // posted: an fd-driven backend should not be polled until the guest kicks.
  [[nodiscard]] bool starved() const noexcept { return starved_; }

 private:
  // One posted buffer taken for the frame being built.
  struct Buffer {
    std::uint16_t head = 0;
    std::uint32_t bytes = 0;
  };
  enum class Fill { delivered, consumed, nothing };
  // Builds one frame in `first` (and, merging, the buffers after it).
  Fill fill_frame(const EngineContext& ctx, QueueDrain& drain, virtio::DescriptorChain& first);
  // Appends the buffers after the first until `want` bytes are posted, the
  // ring is empty, or a limit is reached. A buffer that cannot be used is
  // given back: it leads the next frame, which completes and counts it.
  void gather_more(const EngineContext& ctx, QueueDrain& drain, std::size_t want);
  // Completes the buffers that hold `used` bytes (header included) and gives
  // back the rest; returns how many were completed.
  std::uint16_t complete_used(QueueDrain& drain, std::size_t used);

  virtio::Virtqueue queue_;
  std::uint16_t index_;
  bool starved_ = false;
  // The buffers of the frame being built and their iovecs, in order.
  std::array<Buffer, kMaxChainIovecs> buffers_{};
  std::uint16_t buffer_count_ = 0;
  std::size_t iov_count_ = 0;
  std::size_t posted_bytes_ = 0;
  std::array<iovec, kMaxChainIovecs> chain_iov_{};
  std::array<iovec, kMaxChainIovecs> payload_iov_{};
};

}  // namespace vnk::net
