// An IPv4 address, held in host byte order so it compares and masks simply;
// packet code converts at the wire with load_be/store_be.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vnk::packet {

struct Ipv4Address {
  std::uint32_t value = 0;

  static constexpr Ipv4Address of(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) noexcept {
    return {(std::uint32_t{a} << 24) | (std::uint32_t{b} << 16) | (std::uint32_t{c} << 8) | d};
  }
  // Dotted quad, "10.0.2.15"; nullopt on anything else.
  static std::optional<Ipv4Address> parse(std::string_view text);
  [[nodiscard]] std::string to_string() const;
  // 224.0.0.0/4 (RFC 5771).
  [[nodiscard]] constexpr bool is_multicast() const noexcept { return (value >> 28) == 0xe; }
  [[nodiscard]] bool in_subnet(Ipv4Address net, unsigned prefix) const noexcept {
    const std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
    return (value & mask) == (net.value & mask);
  }
  friend constexpr bool operator==(Ipv4Address, Ipv4Address) = default;
  friend constexpr auto operator<=>(Ipv4Address, Ipv4Address) = default;
};

inline constexpr Ipv4Address kIpv4Any{0};
inline constexpr Ipv4Address kIpv4Broadcast{0xffffffff};

}  // namespace vnk::packet
