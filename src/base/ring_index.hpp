// A free-running 16-bit virtqueue index (avail/used idx, virtio 1.2 §2.7.6).
// Indices wrap at 2^16, not at the queue size; the slot is index % size.
// Arithmetic is explicit so no one compares two wrapping indices with `<`.
#pragma once

#include <compare>
#include <cstdint>

namespace vnk {

class RingIndex {
 public:
  constexpr RingIndex() = default;
  constexpr explicit RingIndex(std::uint16_t v) : v_(v) {}

  [[nodiscard]] constexpr std::uint16_t value() const noexcept { return v_; }
  // Slot in a ring of `size` entries (size is a power of two).
  [[nodiscard]] constexpr std::uint16_t slot(std::uint16_t size) const noexcept {
    return static_cast<std::uint16_t>(v_ & (size - 1));
  }
  // How far `later` is ahead of this index, modulo 2^16.
  [[nodiscard]] constexpr std::uint16_t distance_to(RingIndex later) const noexcept {
    return static_cast<std::uint16_t>(later.v_ - v_);
  }
  constexpr RingIndex& operator++() noexcept {
    ++v_;
    return *this;
  }
  constexpr RingIndex& operator--() noexcept {
    --v_;
    return *this;
  }
  [[nodiscard]] constexpr RingIndex operator+(std::uint16_t n) const noexcept {
    return RingIndex(static_cast<std::uint16_t>(v_ + n));
  }
  friend constexpr bool operator==(RingIndex, RingIndex) = default;

 private:
  std::uint16_t v_ = 0;
};

}  // namespace vnk
