// A bounded FIFO of Ethernet frames waiting for the guest's RX queue.
//
// All storage is allocated once at construction (capacity × slot_size), so a
// guest that stops receiving cannot make memory grow: when the ring is full
// the producer is told and drops (and counts) the frame.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "net/net_backend.hpp"

namespace vnk::backend {

class FrameRing {
 public:
  FrameRing(std::size_t capacity, std::size_t slot_size);

  // The next free slot to build a frame in, or an empty span when full.
  // Nothing is queued until commit().
  [[nodiscard]] std::span<std::byte> reserve() noexcept;
  // Queues the reserved slot's first `length` bytes (<= slot_size).
  void commit(std::size_t length) noexcept;
  // Copies a TX frame: its head from the engine's host copy, the rest from
  // guest memory (each byte read once). False when full or too large.
  bool push(const net::TxFrame& frame);
  // Writes the oldest frame into `buffer` (truncating if it is smaller);
  // RxStatus::empty when there is none.
  net::RxResult pop_into(std::span<const iovec> buffer);

  // The oldest frame's length, 0 when there is none.
  [[nodiscard]] std::size_t front_length() const noexcept { return count_ ? slots_[head_].length : 0; }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] std::size_t slot_size() const noexcept { return slot_size_; }

 private:
  struct Slot {
    std::unique_ptr<std::byte[]> bytes;  // slot_size_, never zero-filled
    std::size_t length = 0;
  };
  std::vector<Slot> slots_;
  std::size_t slot_size_;
  std::size_t head_ = 0;   // oldest frame
  std::size_t count_ = 0;  // frames waiting
};

}  // namespace vnk::backend
