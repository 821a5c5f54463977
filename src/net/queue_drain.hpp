// The parts of a drain that TX and RX share: popping the next chain (and
// poisoning the queue once on a structural error), completing a chain, and
// the single interrupt at the end of a drain.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "net/engine_context.hpp"
#include "virtio/virtqueue.hpp"

namespace vnk::net {

struct QueueDrain {
  virtio::Virtqueue& queue;
  const EngineContext& ctx;
  std::uint16_t index;
  std::string_view name;  // "TX" / "RX", for the log
  Counter& poisoned;
  Counter& add_used_failures;
  Counter& interrupts;
  bool used_any = false;

  // The next chain, or nullopt when the queue is empty (after re-arming
  // notifications and looking once more, so a chain posted in between is
  // not missed) or has just been poisoned.
  std::optional<virtio::DescriptorChain> next();
  // Writes {head, len} to the used ring; failures are counted, not fatal.
  void complete(std::uint16_t head, std::uint32_t len);
  // Publishes what complete() wrote (one used->idx store for the whole
  // drain) and raises one interrupt, if the driver wants to hear of it.
  void finish();
};

}  // namespace vnk::net
