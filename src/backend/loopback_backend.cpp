#include "backend/loopback_backend.hpp"

namespace vnk::backend {

LoopbackBackend::LoopbackBackend(std::size_t capacity) : ring_(capacity, net::kMaxFrameSize) {}

net::TxResult LoopbackBackend::transmit(const net::TxFrame& frame) {
  if (!ring_.push(frame)) {
    counters_.drops_ring_full.add();
    return net::TxResult::dropped;
  }
  counters_.frames_queued.add();
  return net::TxResult::sent;
}

net::RxResult LoopbackBackend::receive(std::span<const iovec> buffer) {
  net::RxResult r = ring_.pop_into(buffer);
  if (r.status == net::RxStatus::frame) counters_.frames_delivered.add();
  return r;
}

}  // namespace vnk::backend
