// A bounded FIFO of frames with their virtio-net headers, packed into one
// byte buffer: the switch's per-port queues, which hold 60-byte ACKs and
// 64 KiB TSO frames alike. Bounded twice -- by bytes (the buffer, allocated
// once; pages are touched only as frames fill them) and by frames
// (kMaxFrames) -- so a guest that stops receiving cannot make memory grow:
// when either is reached the producer is told and drops (and counts).
//
// Frames sit whole and contiguous: one that does not fit before the end of
// the buffer starts again at its beginning, if the oldest frame has moved on
// far enough.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "net/net_backend.hpp"

namespace vnk::backend {

class FrameQueue {
 public:
  static constexpr std::size_t kMaxFrames = 4096;

  explicit FrameQueue(std::size_t capacity_bytes);

  // Room for a frame of `length` bytes, or an empty span when full. Nothing
  // is queued until commit().
  [[nodiscard]] std::span<std::byte> reserve(std::size_t length) noexcept;
  // Queues the reserved room's first `length` bytes (at most what was
  // reserved) with the header the consumer gets.
  void commit(std::size_t length, const net::NetHeader& header) noexcept;
  // Writes the oldest frame into `buffer` (truncating if it is smaller),
  // with its header; RxStatus::empty when there is none.
  net::RxResult pop_into(std::span<const iovec> buffer);

  [[nodiscard]] std::size_t front_length() const noexcept { return count_ ? records_[first_].length : 0; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  struct Record {
    std::size_t offset = 0;
    std::size_t length = 0;
    net::NetHeader header{};
  };
  std::unique_ptr<std::byte[]> bytes_;
  std::size_t capacity_;
  std::vector<Record> records_;  // a ring of kMaxFrames
  std::size_t first_ = 0;        // the oldest record
  std::size_t count_ = 0;
  std::size_t tail_ = 0;         // where the newest frame ends
  std::size_t reserved_ = 0;     // offset of the room reserve() gave out
  std::size_t reserved_len_ = 0;
};

}  // namespace vnk::backend
