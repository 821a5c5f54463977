// TCP sequence-number arithmetic: RFC 9293 comparisons modulo 2^32.
#pragma once

#include <cstdint>

namespace vnk::usernet {

[[nodiscard]] constexpr bool seq_lt(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<std::int32_t>(a - b) < 0;
}
[[nodiscard]] constexpr bool seq_le(std::uint32_t a, std::uint32_t b) noexcept {
  return static_cast<std::int32_t>(a - b) <= 0;
}

}  // namespace vnk::usernet
