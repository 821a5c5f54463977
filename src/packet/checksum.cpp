#include "packet/checksum.hpp"

#include <bit>
#include <cstring>

namespace vnk::packet {

namespace {

// Ones'-complement sum of `n` bytes (a multiple of 16) as native-endian
// 32-bit words, folded to 16 bits; nonzero input never folds to 0.
std::uint64_t sum_native_words(const std::byte* p, std::size_t n) noexcept {
  // Four independent 64-bit accumulators of 32-bit words: no carry is lost
  // below 2^32 words, and the additions pipeline.
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  for (std::size_t i = 0; i < n; i += 16) {
    std::uint32_t w[4];
    std::memcpy(w, p + i, sizeof w);
    a += w[0];
    b += w[1];
    c += w[2];
    d += w[3];
  }
  std::uint64_t s = (a & 0xffffffff) + (a >> 32) + (b & 0xffffffff) + (b >> 32) + (c & 0xffffffff) + (c >> 32) +
                    (d & 0xffffffff) + (d >> 32);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s;
}

}  // namespace

void Checksum::add(std::span<const std::byte> bytes) noexcept {
  std::size_t i = 0;
  if (odd_ && !bytes.empty()) {
    sum_ += static_cast<std::uint8_t>(bytes[0]);  // low byte of the pending word
    odd_ = false;
    i = 1;
  }
  // The bulk as native words: the ones'-complement sum does not depend on
  // byte order except for a final swap (RFC 1071 §2(B)).
  if (const std::size_t bulk = (bytes.size() - i) & ~std::size_t{15}; bulk != 0) {
    const std::uint64_t s = sum_native_words(bytes.data() + i, bulk);
    sum_ += std::endian::native == std::endian::big ? s : ((s & 0xff) << 8) | (s >> 8);
    i += bulk;
  }
  for (; i + 1 < bytes.size(); i += 2)
    sum_ += (std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << 8) | static_cast<std::uint8_t>(bytes[i + 1]);
  if (i < bytes.size()) {
    sum_ += std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << 8;
    odd_ = true;
  }
}

std::uint16_t Checksum::finish() const noexcept {
  std::uint64_t s = sum_;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(~s & 0xffff);
}

std::uint16_t internet_checksum(std::span<const std::byte> bytes) noexcept {
  Checksum c;
  c.add(bytes);
  return c.finish();
}

void add_ipv4_pseudo_header(Checksum& c, std::uint32_t src, std::uint32_t dst, std::uint8_t protocol,
                            std::uint16_t length) noexcept {
  c.add_u32(src);
  c.add_u32(dst);
  c.add_u16(protocol);
  c.add_u16(length);
}

}  // namespace vnk::packet
