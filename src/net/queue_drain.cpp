#include "net/queue_drain.hpp"

#include "base/log.hpp"

namespace vnk::net {

std::optional<virtio::DescriptorChain> QueueDrain::next() {
  const GuestMemory& mem = *ctx.memory;
  for (;;) {
    auto popped = queue.pop(mem);
    if (!popped) {
      if (queue.poison()) {
        poisoned.add();
        log::warn("virtio-net: {} queue {} poisoned ({}); silent until the driver resets the device", name, index,
                  to_string(popped.error()));
        ctx.interrupts->needs_reset();
      }
      return std::nullopt;
    }
    if (*popped) return std::move(*popped);
    if (ctx.busy_polling) queue.disable_notification(mem);
    // Ask for the next kick, then look once more: a chain posted between our
    // last pop and that request would otherwise wait for ever. A busy-poll
    // asks for none (it will look again anyway).
    if (ctx.busy_polling || !queue.enable_notification(mem)) return std::nullopt;
  }
}

void QueueDrain::complete(std::uint16_t head, std::uint32_t len) {
  if (queue.add_used(*ctx.memory, head, len)) {
    used_any = true;
  } else if (add_used_failures.add() == 0) {
    log::warn("virtio-net: {} used ring of queue {} not writable", name, index);
  }
}

void QueueDrain::finish() {
  if (!used_any) return;
  if (!queue.publish_used(*ctx.memory)) {
    if (add_used_failures.add() == 0) log::warn("virtio-net: {} used ring of queue {} not writable", name, index);
    return;
  }
  if (queue.needs_interrupt(*ctx.memory)) {
    interrupts.add();
    ctx.interrupts->queue_used(index);
  }
}

}  // namespace vnk::net
