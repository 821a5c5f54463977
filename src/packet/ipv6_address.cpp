#include "packet/ipv6_address.hpp"

#include <arpa/inet.h>

namespace vnk::packet {

std::optional<Ipv6Address> Ipv6Address::parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  const std::string s(text);
  Ipv6Address a;
  if (::inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
  return a;
}

std::string Ipv6Address::to_string() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

bool Ipv6Address::in_prefix(const Ipv6Address& prefix, unsigned length) const noexcept {
  if (length > 128) length = 128;
  const unsigned whole = length / 8, rest = length % 8;
  for (unsigned i = 0; i < whole; ++i)
    if (bytes[i] != prefix.bytes[i]) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (bytes[whole] & mask) == (prefix.bytes[whole] & mask);
}

Ipv6Address Ipv6Address::solicited_node() const noexcept {
  Ipv6Address m{{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0}};
  m.bytes[13] = bytes[13];
  m.bytes[14] = bytes[14];
  m.bytes[15] = bytes[15];
  return m;
}

MacAddress Ipv6Address::multicast_mac() const noexcept {
  return MacAddress{{0x33, 0x33, bytes[12], bytes[13], bytes[14], bytes[15]}};
}

Ipv6Address Ipv6Address::link_local_from(const MacAddress& mac) noexcept {
  const auto& o = mac.octets;
  return Ipv6Address{{0xfe, 0x80, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(o[0] ^ 0x02), o[1], o[2], 0xff, 0xfe,
                      o[3], o[4], o[5]}};
}

}  // namespace vnk::packet
