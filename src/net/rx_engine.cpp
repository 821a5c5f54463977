#include "net/rx_engine.hpp"

#include "memory/iovec_ops.hpp"
#include "net/queue_drain.hpp"
#include "virtio/chain_iovecs.hpp"

namespace vnk::net {

// delivered: a frame was written (used_len set); consumed: the chain was
// unusable and is completed with length 0; nothing: no frame was waiting.
RxEngine::Fill RxEngine::fill_chain(const EngineContext& ctx, virtio::DescriptorChain& chain, std::uint32_t& used_len) {
  NetCounters& c = *ctx.counters;
  used_len = 0;
  auto gathered = virtio::gather_chain(*ctx.memory, chain, virtio::Direction::device_writes, chain_iov_, UINT32_MAX);
  if (!gathered) {
    switch (gathered.error()) {
      case virtio::GatherError::wrong_direction:
        note(c.rx_drop_wrong_direction, "RX chain with a device-readable descriptor");
        break;
      case virtio::GatherError::unmapped: note(c.rx_drop_unmapped, "RX descriptor outside guest memory"); break;
      case virtio::GatherError::malformed:
      case virtio::GatherError::too_large: note(c.rx_drop_malformed_chain, "malformed RX descriptor chain"); break;
    }
    return Fill::consumed;
  }
  if (gathered->bytes < kNetHeaderSize) {
    note(c.rx_drop_short_buffer, "RX buffer smaller than the virtio-net header");
    return Fill::consumed;
  }
  const std::size_t n = iov_tail(gathered->iov, kNetHeaderSize, payload_iov_);
  const std::span<const iovec> payload(payload_iov_.data(), n);

  RxResult r;
  if (ctx.interceptor && ctx.interceptor->rx_pending()) r = ctx.interceptor->receive(payload);
  if (r.status == RxStatus::empty) r = ctx.backend->receive(payload);

  switch (r.status) {
    case RxStatus::empty: return Fill::nothing;
    case RxStatus::error: {
      // Nothing claims a frame: clear whatever sits where the header goes.
      static constexpr std::array<std::byte, kNetHeaderSize> kZero{};
      iov_write(gathered->iov, 0, kZero);
      c.rx_drop_backend_error.add();
      return Fill::consumed;
    }
    case RxStatus::frame: break;
  }
  NetHeader header = r.header;
  header.num_buffers = 1;
  iov_write(gathered->iov, 0, header.serialize());
  if (r.written < r.frame_len) c.rx_truncated.add();
  c.rx_packets.add();
  c.rx_bytes.add(r.written);
  used_len = static_cast<std::uint32_t>(kNetHeaderSize + r.written);  // <= gathered bytes <= 2^32-1
  return Fill::delivered;
}

bool RxEngine::process(const EngineContext& ctx) {
  if (queue_.poisoned()) return false;
  NetCounters& c = *ctx.counters;
  QueueDrain drain{queue_, ctx, index_, "RX", c.rx_poisoned, c.rx_add_used_failures, c.rx_interrupts};
  bool more = false;
  starved_ = false;
  for (unsigned budget = kDrainBudget;; --budget) {
    if (budget == 0) {
      more = true;
      break;
    }
    auto chain = drain.next();
    if (!chain) {
      starved_ = !queue_.poisoned();
      if (starved_ && ctx.rx_pending()) c.rx_no_buffer.add();
      break;
    }
    std::uint32_t used_len = 0;
    if (fill_chain(ctx, *chain, used_len) == Fill::nothing) {
      queue_.undo_pop();  // keep the buffer for the next frame
      break;
    }
    drain.complete(chain->head(), used_len);
  }
  drain.finish();
  return more;
}

}  // namespace vnk::net
