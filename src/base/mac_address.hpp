// An Ethernet (IEEE 802) MAC address.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vnk {

struct MacAddress {
  std::array<std::uint8_t, 6> octets{};

  // "02:00:00:00:00:01" (also '-' separated); nullopt on anything else.
  static std::optional<MacAddress> parse(std::string_view text);
  [[nodiscard]] std::string to_string() const;
  // IEEE 802: bit 0 of the first octet is group (multicast), bit 1 is
  // "locally administered".
  [[nodiscard]] bool is_unicast() const noexcept { return (octets[0] & 0x01) == 0; }
  [[nodiscard]] bool is_locally_administered() const noexcept { return (octets[0] & 0x02) != 0; }
  [[nodiscard]] bool is_broadcast() const noexcept { return *this == broadcast(); }
  static constexpr MacAddress broadcast() noexcept { return {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
  // The six bytes at `p`, as on the wire.
  static MacAddress load(const std::byte* p) noexcept {
    MacAddress m;
    for (std::size_t i = 0; i < 6; ++i) m.octets[i] = static_cast<std::uint8_t>(p[i]);
    return m;
  }
  void store(std::byte* p) const noexcept {
    for (std::size_t i = 0; i < 6; ++i) p[i] = static_cast<std::byte>(octets[i]);
  }
  friend bool operator==(const MacAddress&, const MacAddress&) = default;
};

}  // namespace vnk
