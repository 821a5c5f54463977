// An IPv6 address (RFC 4291), sixteen bytes in network order as on the wire,
// with the classes usernet's policy and NDP need.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/mac_address.hpp"

namespace vnk::packet {

struct Ipv6Address {
  std::array<std::uint8_t, 16> bytes{};

  // RFC 4291 §2.2 text ("fd00::2", "fe80::1%eth0" is refused); nullopt on
  // anything else.
  static std::optional<Ipv6Address> parse(std::string_view text);
  // RFC 5952 text.
  [[nodiscard]] std::string to_string() const;
  // The sixteen bytes at `p`, as on the wire.
  static Ipv6Address load(const std::byte* p) noexcept {
    Ipv6Address a;
    for (std::size_t i = 0; i < 16; ++i) a.bytes[i] = static_cast<std::uint8_t>(p[i]);
    return a;
  }
  void store(std::byte* p) const noexcept {
    for (std::size_t i = 0; i < 16; ++i) p[i] = static_cast<std::byte>(bytes[i]);
  }

  [[nodiscard]] constexpr bool is_unspecified() const noexcept { return *this == Ipv6Address{}; }
  [[nodiscard]] constexpr bool is_loopback() const noexcept {
    Ipv6Address one;
    one.bytes[15] = 1;
    return *this == one;
  }
  [[nodiscard]] constexpr bool is_multicast() const noexcept { return bytes[0] == 0xff; }
  // fe80::/10
  [[nodiscard]] constexpr bool is_link_local() const noexcept { return bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80; }
  [[nodiscard]] bool in_prefix(const Ipv6Address& prefix, unsigned length) const noexcept;

  // ff02::1:ffXX:XXXX, where a Neighbor Solicitation for this address goes (RFC 4291 §2.7.1).
  [[nodiscard]] Ipv6Address solicited_node() const noexcept;
  // The Ethernet address of a multicast group: 33:33 and its last four bytes (RFC 2464 §7).
  [[nodiscard]] MacAddress multicast_mac() const noexcept;
  // fe80::/64 with the modified EUI-64 interface identifier of `mac` (RFC 4291 appendix A).
  static Ipv6Address link_local_from(const MacAddress& mac) noexcept;

  friend constexpr bool operator==(const Ipv6Address&, const Ipv6Address&) = default;
};

// ff02::1 (all nodes) and ff02::2 (all routers).
inline constexpr Ipv6Address kIpv6AllNodes{{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}};
inline constexpr Ipv6Address kIpv6AllRouters{{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}};

}  // namespace vnk::packet
