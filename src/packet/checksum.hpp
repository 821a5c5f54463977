// The internet checksum (RFC 1071): a 16-bit ones'-complement sum, built up
// over any number of byte ranges, plus the IPv4 pseudo-header for UDP/TCP.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace vnk::packet {

class Checksum {
 public:
  // Adds bytes; ranges of odd length may be added one after another.
  void add(std::span<const std::byte> bytes) noexcept;
  void add_u16(std::uint16_t v) noexcept { sum_ += v; }
  void add_u32(std::uint32_t v) noexcept { sum_ += (v >> 16) + (v & 0xffff); }
  // Adds the sum of bytes that follow those added so far, summed on their
  // own from their first byte. Only valid while an even number of bytes has
  // been added (as after any header), since `tail` started on a word.
  void append(const Checksum& tail) noexcept {
    sum_ += tail.sum_;
    odd_ = tail.odd_;
  }
  // The value to store in the header (already complemented).
  [[nodiscard]] std::uint16_t finish() const noexcept;

 private:
  std::uint64_t sum_ = 0;
  bool odd_ = false;  // the previous range ended mid-word
};

// Checksum of one contiguous range; 0 when a header that includes its own
// checksum field is intact.
[[nodiscard]] std::uint16_t internet_checksum(std::span<const std::byte> bytes) noexcept;

// Pseudo-header for UDP/TCP over IPv4 (RFC 768 / RFC 9293), addresses in
// host order.
void add_ipv4_pseudo_header(Checksum& c, std::uint32_t src, std::uint32_t dst, std::uint8_t protocol,
                            std::uint16_t length) noexcept;

}  // namespace vnk::packet
