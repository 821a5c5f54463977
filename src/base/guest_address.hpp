// A guest-physical address: its own type so it cannot be mixed up with a host
// pointer, a length or a frontend virtual address.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>

namespace vnk {

struct GuestAddress {
  std::uint64_t value = 0;

  // Overflow-checked offset: an address near 2^64 never wraps to a low one.
  [[nodiscard]] constexpr std::optional<GuestAddress> checked_add(std::uint64_t n) const noexcept {
    std::uint64_t out = 0;
    if (__builtin_add_overflow(value, n, &out)) return std::nullopt;
    return GuestAddress{out};
  }
  [[nodiscard]] constexpr bool is_aligned(std::uint64_t alignment) const noexcept {
    return (value & (alignment - 1)) == 0;
  }
  friend constexpr auto operator<=>(GuestAddress, GuestAddress) = default;
};

}  // namespace vnk
