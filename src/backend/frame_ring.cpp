#include "backend/frame_ring.hpp"

#include <cstring>

#include "memory/iovec_ops.hpp"

namespace vnk::backend {

FrameRing::FrameRing(std::size_t capacity, std::size_t slot_size)
    : slots_(capacity == 0 ? 1 : capacity), slot_size_(slot_size) {
  for (Slot& s : slots_) s.bytes = std::make_unique_for_overwrite<std::byte[]>(slot_size_);
}

std::span<std::byte> FrameRing::reserve() noexcept {
  if (count_ == slots_.size()) return {};
  return {slots_[(head_ + count_) % slots_.size()].bytes.get(), slot_size_};
}

void FrameRing::commit(std::size_t length) noexcept {
  if (count_ == slots_.size() || length > slot_size_) return;
  slots_[(head_ + count_) % slots_.size()].length = length;
  ++count_;
}

bool FrameRing::push(const net::TxFrame& frame) {
  if (frame.length > slot_size_) return false;
  auto slot = reserve();
  if (slot.empty()) return false;
  if (!frame.head.empty()) std::memcpy(slot.data(), frame.head.data(), frame.head.size());
  const std::size_t rest = iov_read(frame.data, frame.head.size(), slot.subspan(frame.head.size(), frame.length - frame.head.size()));
  commit(frame.head.size() + rest);
  return true;
}

net::RxResult FrameRing::pop_into(std::span<const iovec> buffer) {
  if (count_ == 0) return {};
  Slot& s = slots_[head_];
  net::RxResult r;
  r.status = net::RxStatus::frame;
  r.frame_len = s.length;
  r.written = iov_write(buffer, 0, std::span(s.bytes.get(), s.length));
  head_ = (head_ + 1) % slots_.size();
  --count_;
  return r;
}

}  // namespace vnk::backend
