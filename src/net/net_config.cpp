#include "net/net_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace vnk::net {

std::optional<MacAddress> MacAddress::parse(std::string_view text) {
  MacAddress mac;
  if (text.size() != 17) return std::nullopt;
  for (std::size_t i = 0; i < 6; ++i) {
    const std::size_t at = i * 3;
    if (i > 0 && text[at - 1] != ':' && text[at - 1] != '-') return std::nullopt;
    std::uint8_t v = 0;
    auto [p, ec] = std::from_chars(text.data() + at, text.data() + at + 2, v, 16);
    if (ec != std::errc{} || p != text.data() + at + 2) return std::nullopt;
    mac.octets[i] = v;
  }
  return mac;
}

std::string MacAddress::to_string() const {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", octets[0], octets[1], octets[2], octets[3], octets[4],
                     octets[5]);
}

std::expected<NetConfig, std::string> normalize(NetConfig cfg) {
  if (!cfg.mac.is_unicast())
    return std::unexpected(
        fmt::format("MAC {} is a multicast address; a NIC needs a unicast one", cfg.mac.to_string()));
  if (cfg.mtu && *cfg.mtu < kMinMtu)
    return std::unexpected(fmt::format("MTU {} is below the minimum of {}", *cfg.mtu, kMinMtu));
  cfg.queue_pairs = std::clamp(cfg.queue_pairs, kMinQueuePairs, kMaxQueuePairs);
  return cfg;
}

}  // namespace vnk::net
