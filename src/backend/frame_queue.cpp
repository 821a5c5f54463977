#include "backend/frame_queue.hpp"

#include "memory/iovec_ops.hpp"

namespace vnk::backend {

FrameQueue::FrameQueue(std::size_t capacity_bytes)
    : bytes_(std::make_unique_for_overwrite<std::byte[]>(capacity_bytes == 0 ? 1 : capacity_bytes)),
      capacity_(capacity_bytes == 0 ? 1 : capacity_bytes),
      records_(kMaxFrames) {}

std::span<std::byte> FrameQueue::reserve(std::size_t length) noexcept {
  reserved_len_ = 0;
  if (length == 0 || length > capacity_ || count_ == kMaxFrames) return {};
  std::size_t at = 0;
  if (count_ != 0) {
    const std::size_t head = records_[first_].offset;
    // Not wrapped: data in [head, tail_). Wrapped: in [head, end) and
    // [0, tail_). tail_ never reaches head while frames are queued, so the
    // two cases stay told apart.
    if (tail_ > head) {
      if (capacity_ - tail_ >= length)
        at = tail_;
      else if (length < head)
        at = 0;
      else
        return {};
    } else {
      if (head - tail_ > length)
        at = tail_;
      else
        return {};
    }
  }
  reserved_ = at;
  reserved_len_ = length;
  return {bytes_.get() + at, length};
}

void FrameQueue::commit(std::size_t length, const net::NetHeader& header) noexcept {
  if (reserved_len_ == 0 || length == 0 || length > reserved_len_) return;
  records_[(first_ + count_) % kMaxFrames] = Record{reserved_, length, header};
  ++count_;
  tail_ = reserved_ + length;
  reserved_len_ = 0;
}

net::RxResult FrameQueue::pop_into(std::span<const iovec> buffer) {
  if (count_ == 0) return {};
  const Record& r = records_[first_];
  net::RxResult out;
  out.status = net::RxStatus::frame;
  out.frame_len = r.length;
  out.header = r.header;
  out.written = iov_write(buffer, 0, std::span(bytes_.get() + r.offset, r.length));
  first_ = (first_ + 1) % kMaxFrames;
  if (--count_ == 0) tail_ = 0;
  return out;
}

}  // namespace vnk::backend
