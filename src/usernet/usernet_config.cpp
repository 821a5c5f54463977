#include "usernet/usernet_config.hpp"

#include <fmt/format.h>

#include <charconv>

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

namespace vnk::usernet {

namespace {

std::optional<std::uint16_t> parse_port(std::string_view p) {
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
  if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || port == 0 || port > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(port);
}

}  // namespace

std::optional<UsernetConfig::Forward> parse_forward(std::string_view text) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const auto colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  if (parts.size() != 3 && parts.size() != 4) return std::nullopt;
  UsernetConfig::Forward f;
  if (parts[0] == "tcp") f.protocol = 6;
  else if (parts[0] == "udp") f.protocol = 17;
  else return std::nullopt;
  std::size_t i = 1;
  if (parts.size() == 4) {
    auto a = Ipv4Address::parse(parts[1]);
    if (!a) return std::nullopt;
    f.host_address = *a;
    i = 2;
  }
  auto hp = parse_port(parts[i]);
  auto gp = parse_port(parts[i + 1]);
  if (!hp || !gp) return std::nullopt;
  f.host_port = *hp;
  f.guest_port = *gp;
  return f;
}

std::optional<UsernetConfig::Upstream> parse_upstream(std::string_view text) {
  UsernetConfig::Upstream u;
  const auto colon = text.find(':');
  auto ip = Ipv4Address::parse(text.substr(0, colon));
  if (!ip) return std::nullopt;
  u.address = *ip;
  if (colon != std::string_view::npos) {
    const std::string_view p = text.substr(colon + 1);
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || port == 0 || port > 65535)
      return std::nullopt;
    u.port = static_cast<std::uint16_t>(port);
  }
  return u;
}

std::vector<UsernetConfig::Upstream> parse_resolv_conf(std::string_view text) {
  std::vector<UsernetConfig::Upstream> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto skip_space = [](std::string_view s) {
      while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
      return s;
    };
    line = skip_space(line);
    if (!line.starts_with("nameserver")) continue;
    line = skip_space(line.substr(10));
    const auto end = line.find_first_of(" \t\r#;");
    // Only a bare IPv4 address: "IP:PORT" is not resolv.conf syntax.
    auto ip = Ipv4Address::parse(line.substr(0, end));
    if (ip) out.push_back({*ip, 53});
  }
  return out;
}

}  // namespace vnk::usernet
