#include "packet/checksum.hpp"

namespace vnk::packet {

void Checksum::add(std::span<const std::byte> bytes) noexcept {
  std::size_t i = 0;
  if (odd_ && !bytes.empty()) {
    sum_ += static_cast<std::uint8_t>(bytes[0]);  // low byte of the pending word
    odd_ = false;
    i = 1;
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
