#include "usernet/usernet_config.hpp"

#include <fmt/format.h>

namespace vnk::usernet {

std::expected<UsernetConfig, std::string> validate(UsernetConfig cfg) {
  if (cfg.prefix < 8 || cfg.prefix > 30)
    return std::unexpected(fmt::format("network prefix /{} must be between /8 and /30", cfg.prefix));
  cfg.network = Ipv4Address{cfg.network.value & cfg.netmask().value};
  const struct {
    const char* name;
    Ipv4Address ip;
  } hosts[] = {{"gateway", cfg.gateway}, {"DNS", cfg.dns}, {"guest", cfg.guest}};
  for (const auto& h : hosts) {
    if (!h.ip.in_subnet(cfg.network, cfg.prefix))
      return std::unexpected(fmt::format("{} address {} is outside {}/{}", h.name, h.ip.to_string(),
                                         cfg.network.to_string(), cfg.prefix));
    if (h.ip == cfg.network || h.ip == cfg.broadcast())
      return std::unexpected(fmt::format("{} address {} is the network's own or broadcast address", h.name,
                                         h.ip.to_string()));
  }
  if (cfg.gateway == cfg.guest || cfg.dns == cfg.guest)
    return std::unexpected(fmt::format("the guest address {} must differ from the gateway and DNS addresses",
                                       cfg.guest.to_string()));
  if (cfg.mtu < 576 || cfg.mtu > 65520)
    return std::unexpected(fmt::format("MTU {} must be between 576 and 65520", cfg.mtu));
  if (!cfg.gateway_mac.is_unicast()) return std::unexpected("the gateway MAC must be unicast");
  return cfg;
}

}  // namespace vnk::usernet
