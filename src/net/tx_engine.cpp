#include "net/tx_engine.hpp"

#include "memory/iovec_ops.hpp"
#include "net/queue_drain.hpp"
#include "virtio/chain_iovecs.hpp"

namespace vnk::net {

void TxEngine::handle_chain(const EngineContext& ctx, virtio::DescriptorChain& chain) {
  NetCounters& c = *ctx.counters;
  auto gathered = virtio::gather_chain(*ctx.memory, chain, virtio::Direction::device_reads, chain_iov_,
                                       kNetHeaderSize + kMaxFrameSize);
  if (!gathered) {
    switch (gathered.error()) {
      case virtio::GatherError::wrong_direction:
        note(c.tx_drop_wrong_direction, "TX chain with a device-writable descriptor");
        return;
      case virtio::GatherError::unmapped: note(c.tx_drop_unmapped, "TX descriptor outside guest memory"); return;
      case virtio::GatherError::malformed: note(c.tx_drop_malformed_chain, "malformed TX descriptor chain"); return;
      case virtio::GatherError::too_large: note(c.tx_drop_oversize, "TX frame over 65557 bytes dropped"); return;
    }
  }
  if (gathered->bytes < kNetHeaderSize) {
    note(c.tx_drop_short_header, "TX chain shorter than the virtio-net header");
    return;
  }
  // The header may be split across descriptors (§5.1.6.5 lets the driver lay
  // the chain out freely), so peel it from the iovec list, not a descriptor.
  std::array<std::byte, kNetHeaderSize> raw{};
  iov_read(gathered->iov, 0, raw);
  const NetHeader header = NetHeader::parse(raw);
  const std::size_t frame_len = gathered->bytes - kNetHeaderSize;
  switch (check_tx_header(header, ctx.features, frame_len)) {
    case TxHeaderCheck::ok: break;
    case TxHeaderCheck::not_negotiated:
      note(c.tx_drop_bad_header, "TX header asks for an offload that was not negotiated");
      return;
    case TxHeaderCheck::bad_checksum:
      note(c.tx_drop_bad_csum_offload, "TX header's checksum offload points outside the frame");
      return;
    case TxHeaderCheck::bad_gso:
      note(c.tx_drop_bad_gso, "TX header's segmentation offload does not fit the frame or what was negotiated");
      return;
  }
  if (frame_len < kEthernetHeaderSize) {
    note(c.tx_drop_runt, "TX frame shorter than an Ethernet header");
    return;
  }
  // The headers every consumer parses are read from guest memory here, once.
  const std::size_t head_len = iov_read(gathered->iov, kNetHeaderSize, std::span(head_).first(std::min(frame_len, head_.size())));
  frame_iov_[0] = iovec{head_.data(), head_len};
  const std::size_t n = 1 + iov_tail(gathered->iov, kNetHeaderSize + head_len, std::span(frame_iov_).subspan(1));
  const TxFrame frame{header, std::span<const iovec>(frame_iov_.data(), n), frame_len, std::span(head_).first(head_len)};

  switch (transmit_through(*ctx.backend, ctx.interceptor, frame)) {
    case TxPath::intercepted: c.tx_intercepted.add(); return;
    case TxPath::dropped: c.tx_drop_backend.add(); return;
    case TxPath::sent: break;
  }
  c.tx_packets.add();
  c.tx_bytes.add(frame_len);
}

bool TxEngine::process(const EngineContext& ctx) {
  if (queue_.poisoned()) return false;
  NetCounters& c = *ctx.counters;
  QueueDrain drain{queue_, ctx, index_, "TX", c.tx_poisoned, c.tx_add_used_failures, c.tx_interrupts};
  bool more = false;
  for (unsigned budget = kDrainBudget;; --budget) {
    if (budget == 0) {
      more = true;
      break;
    }
    auto chain = drain.next();
    if (!chain) break;
    handle_chain(ctx, *chain);
    // TX completions carry no data: len 0 (§5.1.6.2).
    drain.complete(chain->head(), 0);
  }
  ctx.backend->flush_tx();
  drain.finish();
  return more;
}

}  // namespace vnk::net
