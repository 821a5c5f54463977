#include "backend/loopback_backend.hpp"

#include "memory/iovec_ops.hpp"

namespace vnk::backend {

LoopbackBackend::LoopbackBackend(std::size_t capacity) : slots_(capacity == 0 ? 1 : capacity) {
  for (Slot& s : slots_) s.bytes = std::make_unique_for_overwrite<std::byte[]>(net::kMaxFrameSize);
}

net::TxResult LoopbackBackend::transmit(const net::TxFrame& frame) {
  if (count_ == slots_.size() || frame.length > net::kMaxFrameSize) {
    counters_.drops_ring_full.add();
    return net::TxResult::dropped;
  }
  Slot& s = slots_[(head_ + count_) % slots_.size()];
  s.length = iov_read(frame.data, 0, std::span(s.bytes.get(), frame.length));
  ++count_;
  counters_.frames_queued.add();
  return net::TxResult::sent;
}

net::RxResult LoopbackBackend::receive(std::span<const iovec> buffer) {
  if (count_ == 0) return {};
  Slot& s = slots_[head_];
  net::RxResult r;
  r.status = net::RxStatus::frame;
  r.frame_len = s.length;
  r.written = iov_write(buffer, 0, std::span(s.bytes.get(), s.length));
  head_ = (head_ + 1) % slots_.size();
  --count_;
  counters_.frames_delivered.add();
  return r;
}

}  // namespace vnk::backend
