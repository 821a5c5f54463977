// An address of either family in sixteen bytes: IPv6 as on the wire, IPv4
// IPv4-mapped (::ffff:a.b.c.d, RFC 4291 §2.5.5.2). Flow keys, host routes
// and the frame writers that serve both families take this one type, so
// IPv4 and IPv6 share every path but the IP header itself.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "packet/ipv4_address.hpp"
#include "packet/ipv6_address.hpp"

namespace vnk::packet {

struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};

  constexpr IpAddress() noexcept = default;
  // Implicit: either family's address is an IpAddress without loss.
  constexpr IpAddress(Ipv4Address a) noexcept {  // NOLINT(google-explicit-constructor)
    bytes[10] = bytes[11] = 0xff;
    bytes[12] = static_cast<std::uint8_t>(a.value >> 24);
    bytes[13] = static_cast<std::uint8_t>(a.value >> 16);
    bytes[14] = static_cast<std::uint8_t>(a.value >> 8);
    bytes[15] = static_cast<std::uint8_t>(a.value);
  }
  constexpr IpAddress(const Ipv6Address& a) noexcept : bytes(a.bytes) {}  // NOLINT(google-explicit-constructor)
  static constexpr IpAddress v4(Ipv4Address a) noexcept { return IpAddress(a); }

  // Dotted quad or RFC 4291 text ("::ffff:a.b.c.d" is taken as IPv4);
  // brackets around IPv6 text are accepted. nullopt on anything else.
  static std::optional<IpAddress> parse(std::string_view text);

  [[nodiscard]] constexpr bool is_v4() const noexcept {
    for (std::size_t i = 0; i < 10; ++i)
      if (bytes[i] != 0) return false;
    return bytes[10] == 0xff && bytes[11] == 0xff;
  }
  // The IPv4 address of an IPv4-mapped one (meaningless otherwise).
  [[nodiscard]] constexpr Ipv4Address ipv4() const noexcept {
    return {std::uint32_t{bytes[12]} << 24 | std::uint32_t{bytes[13]} << 16 | std::uint32_t{bytes[14]} << 8 | bytes[15]};
  }
  [[nodiscard]] constexpr Ipv6Address ipv6() const noexcept { return Ipv6Address{bytes}; }
  // Dotted quad for IPv4, RFC 5952 text otherwise.
  [[nodiscard]] std::string to_string() const;
  // to_string(), with brackets around IPv6 for a following ":port".
  [[nodiscard]] std::string to_uri_host() const;
  friend constexpr bool operator==(const IpAddress&, const IpAddress&) = default;
};

}  // namespace vnk::packet
