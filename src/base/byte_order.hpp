// Explicit little/big-endian loads and stores on unaligned bytes.
//
// virtio structures are little-endian (virtio 1.2 §1.4); network headers are
// big-endian. Every wire field is read through these helpers at an explicit
// offset: never by casting a pointer onto a packet or into guest memory.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vnk {

template <std::unsigned_integral T>
[[nodiscard]] inline T load_le(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  return v;
}

template <std::unsigned_integral T>
inline void store_le(std::byte* p, T v) noexcept {
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  std::memcpy(p, &v, sizeof v);
}

template <std::unsigned_integral T>
[[nodiscard]] inline T load_be(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::little) v = std::byteswap(v);
  return v;
}

template <std::unsigned_integral T>
inline void store_be(std::byte* p, T v) noexcept {
  if constexpr (std::endian::native == std::endian::little) v = std::byteswap(v);
  std::memcpy(p, &v, sizeof v);
}

}  // namespace vnk
