// RX (backend -> guest) for one queue: pop a posted buffer, let the
// interceptor or backend write a frame straight into it, then write the
// virtio-net header (num_buffers = 1) in front and complete the chain.
//
// The header is written last, after the frame landed, so a failure never
// leaves a header that claims a frame; if the backend fails mid-write the
// header bytes are cleared before the chain is completed with length 0.
// A buffer smaller than the frame gets the frame truncated to fit (counted in
// rx_truncated); without MRG_RXBUF one frame never spans two chains.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>

#include "net/engine_context.hpp"
#include "virtio/virtqueue.hpp"

namespace vnk::net {

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
  enum class Fill { delivered, consumed, nothing };
  Fill fill_chain(const EngineContext& ctx, virtio::DescriptorChain& chain, std::uint32_t& used_len);

  virtio::Virtqueue queue_;
  std::uint16_t index_;
  bool starved_ = false;
  std::array<iovec, kMaxChainIovecs> chain_iov_{};
  std::array<iovec, kMaxChainIovecs> payload_iov_{};
};

}  // namespace vnk::net
