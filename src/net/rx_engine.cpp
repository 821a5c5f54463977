#include "net/rx_engine.hpp"

#include <algorithm>

#include "memory/iovec_ops.hpp"
#include "net/net_features.hpp"
#include "net/queue_drain.hpp"
#include "virtio/chain_iovecs.hpp"
#include "virtio/features.hpp"

namespace vnk::net {

namespace {

void note_gather_error(NetCounters& c, virtio::GatherError e) {
  switch (e) {
    case virtio::GatherError::wrong_direction:
      note(c.rx_drop_wrong_direction, "RX chain with a device-readable descriptor");
      break;
    case virtio::GatherError::unmapped: note(c.rx_drop_unmapped, "RX descriptor outside guest memory"); break;
    case virtio::GatherError::malformed:
    case virtio::GatherError::too_large: note(c.rx_drop_malformed_chain, "malformed RX descriptor chain"); break;
  }
}

}  // namespace

void RxEngine::gather_more(const EngineContext& ctx, QueueDrain& drain, std::size_t want) {
  while (posted_bytes_ < want && buffer_count_ < buffers_.size() && iov_count_ < chain_iov_.size()) {
    auto chain = drain.next();
    if (!chain) return;
    auto gathered = virtio::gather_chain(*ctx.memory, *chain, virtio::Direction::device_writes,
                                         std::span(chain_iov_).subspan(iov_count_), UINT32_MAX);
    // §5.1.6.3.1: with MRG_RXBUF every buffer holds at least a header.
    if (!gathered || gathered->bytes < kNetHeaderSize) {
      queue_.undo_pops();
      return;
    }
    buffers_[buffer_count_++] = Buffer{chain->head(), static_cast<std::uint32_t>(gathered->bytes)};
    iov_count_ += gathered->iov.size();
    posted_bytes_ += gathered->bytes;
  }
}

std::uint16_t RxEngine::complete_used(QueueDrain& drain, std::size_t used) {
  std::uint16_t n = 0;
  do {  // the first buffer always, with length 0 when nothing landed
    const auto len = static_cast<std::uint32_t>(std::min<std::size_t>(used, buffers_[n].bytes));
    drain.complete(buffers_[n].head, len);
    used -= len;
    ++n;
  } while (n < buffer_count_ && used > 0);
  queue_.undo_pops(static_cast<std::uint16_t>(buffer_count_ - n));
  return n;
}

RxEngine::Fill RxEngine::fill_frame(const EngineContext& ctx, QueueDrain& drain, virtio::DescriptorChain& first) {
  NetCounters& c = *ctx.counters;
  auto gathered = virtio::gather_chain(*ctx.memory, first, virtio::Direction::device_writes, chain_iov_, UINT32_MAX);
  if (!gathered) {
    note_gather_error(c, gathered.error());
    drain.complete(first.head(), 0);
    return Fill::consumed;
  }
  if (gathered->bytes < kNetHeaderSize) {
    note(c.rx_drop_short_buffer, "RX buffer smaller than the virtio-net header");
    drain.complete(first.head(), 0);
    return Fill::consumed;
  }
  buffers_[0] = Buffer{first.head(), static_cast<std::uint32_t>(gathered->bytes)};
  buffer_count_ = 1;
  iov_count_ = gathered->iov.size();
  posted_bytes_ = gathered->bytes;
  const bool merge = (ctx.features & virtio::bit(kFeatureMrgRxbuf)) != 0;
  if (merge) gather_more(ctx, drain, kNetHeaderSize + std::min(ctx.next_frame_bound(), kMaxFrameSize));

  const std::span<const iovec> all(chain_iov_.data(), iov_count_);
  const std::size_t n = iov_tail(all, kNetHeaderSize, payload_iov_);
  const std::span<const iovec> payload(payload_iov_.data(), n);

  const RxResult r = receive_through(*ctx.backend, ctx.interceptor, payload);

  switch (r.status) {
    case RxStatus::empty:
      queue_.undo_pops(buffer_count_);  // keep the buffers for the next frame
      return Fill::nothing;
    case RxStatus::error: {
      // Nothing claims a frame: clear whatever sits where the header goes.
      static constexpr std::array<std::byte, kNetHeaderSize> kZero{};
      iov_write(all, 0, kZero);
      c.rx_drop_backend_error.add();
      complete_used(drain, 0);
      return Fill::consumed;
    }
    case RxStatus::frame: break;
  }
  NetHeader header = r.header;
  header.num_buffers = complete_used(drain, kNetHeaderSize + r.written);  // written fits the buffers
  iov_write(all, 0, header.serialize());
  if (r.written < r.frame_len) c.rx_truncated.add();
  if (header.num_buffers > 1) c.rx_merged_buffers.add(header.num_buffers - 1u);
  c.rx_packets.add();
  c.rx_bytes.add(r.written);
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
    if (fill_frame(ctx, drain, *chain) == Fill::nothing) break;
  }
  drain.finish();
  return more;
}

}  // namespace vnk::net
