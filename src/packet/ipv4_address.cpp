#include "packet/ipv4_address.hpp"

#include <fmt/format.h>

#include <charconv>

namespace vnk::packet {

std::optional<Ipv4Address> Ipv4Address::parse(std::string_view text) {
  std::uint32_t v = 0;
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 4; ++i) {
    if (i > 0) {
      if (p == end || *p != '.') return std::nullopt;
      ++p;
    }
    if (p == end || *p < '0' || *p > '9') return std::nullopt;
    unsigned octet = 0;
    auto [q, ec] = std::from_chars(p, end, octet);
    if (ec != std::errc{} || octet > 255 || q - p > 3) return std::nullopt;
    v = (v << 8) | octet;
    p = q;
  }
  if (p != end) return std::nullopt;
  return Ipv4Address{v};
}

std::string Ipv4Address::to_string() const {
  return fmt::format("{}.{}.{}.{}", value >> 24, (value >> 16) & 0xff, (value >> 8) & 0xff, value & 0xff);
}

}  // namespace vnk::packet
