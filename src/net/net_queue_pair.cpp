#include "net/net_queue_pair.hpp"

namespace vnk::net {

NetQueuePair::NetQueuePair(std::shared_ptr<const GuestMemory> memory, EngineContext ctx, virtio::Virtqueue rx,
                           virtio::Virtqueue tx, std::uint16_t rx_index)
    : memory_(std::move(memory)),
      ctx_(ctx),
      rx_(std::move(rx), rx_index),
      tx_(std::move(tx), static_cast<std::uint16_t>(rx_index + 1)) {
  ctx_.memory = memory_.get();
}

bool NetQueuePair::on_tx_kick() {
  const bool tx_more = tx_.process(ctx_);
  const bool rx_more = ctx_.rx_pending() && rx_.process(ctx_);
  return tx_more || rx_more;
}

bool NetQueuePair::poll() {
  ctx_.busy_polling = true;
  const bool more = on_tx_kick();
  ctx_.busy_polling = false;
  return more;
}

bool NetQueuePair::on_rx_ready() { return rx_.process(ctx_); }

bool NetQueuePair::resume() {
  const bool tx_more = tx_.process(ctx_);
  const bool rx_more = rx_.process(ctx_);
  return tx_more || rx_more;
}

void NetQueuePair::set_memory(std::shared_ptr<const GuestMemory> memory) {
  memory_ = std::move(memory);
  ctx_.memory = memory_.get();
}

}  // namespace vnk::net
