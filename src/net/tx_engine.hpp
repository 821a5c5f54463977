// TX (guest -> backend) for one queue: pop chains, strip and check the
// virtio-net header, copy the frame's first kTxHeadBytes into host memory
// once, hand the frame to the interceptor or backend as that copy plus the
// payload's spans of guest memory, complete the chain with length 0,
// interrupt once per drain.
//
// Every popped chain is completed, valid or not, so a hostile or buggy guest
// never waits forever on a descriptor; a frame is dropped whole, never
// truncated. A structural ring error poisons the queue (NEEDS_RESET, one
// config interrupt) and the queue stays silent until a reset.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>

#include "net/engine_context.hpp"
#include "virtio/virtqueue.hpp"

namespace vnk::net {

class TxEngine {
 public:
  TxEngine(virtio::Virtqueue queue, std::uint16_t index) : queue_(std::move(queue)), index_(index) {}

  // Drains up to kDrainBudget chains. Returns true when more may be waiting.
  bool process(const EngineContext& ctx);

  [[nodiscard]] virtio::Virtqueue& queue() noexcept { return queue_; }

 private:
  // Handles one chain and bumps exactly one outcome counter.
  void handle_chain(const EngineContext& ctx, virtio::DescriptorChain& chain);

  virtio::Virtqueue queue_;
  std::uint16_t index_;
  std::array<iovec, kMaxChainIovecs> chain_iov_{};
  std::array<iovec, kMaxChainIovecs + 1> frame_iov_{};  // [head_] + the payload in guest memory
  std::array<std::byte, kTxHeadBytes> head_{};
};

}  // namespace vnk::net
