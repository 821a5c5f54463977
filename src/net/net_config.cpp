#include "net/net_config.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace vnk::net {

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
