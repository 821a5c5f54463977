#include "usernet/usernet_config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <utility>

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
  if (cfg.guests < 1 || cfg.guests > UsernetConfig::kMaxGuests)
    return std::unexpected(fmt::format("{} guests: between 1 and {} may share a network", cfg.guests,
                                       UsernetConfig::kMaxGuests));
  for (unsigned i = 1; i < cfg.guests; ++i) {
    const Ipv4Address a{cfg.guest.value + i};
    if (!a.in_subnet(cfg.network, cfg.prefix) || a == cfg.broadcast() || a == cfg.gateway || a == cfg.dns)
      return std::unexpected(fmt::format("{} guests need the addresses {} to {}, but {} is {}", cfg.guests,
                                         cfg.guest.to_string(), Ipv4Address{cfg.guest.value + cfg.guests - 1}.to_string(),
                                         a.to_string(),
                                         a == cfg.gateway ? "the gateway's"
                                         : a == cfg.dns   ? "the DNS address"
                                                          : "outside the network or its broadcast address"));
  }
  if (cfg.mtu < 576 || cfg.mtu > 65520)
    return std::unexpected(fmt::format("MTU {} must be between 576 and 65520", cfg.mtu));
  if (!cfg.gateway_mac.is_unicast()) return std::unexpected("the gateway MAC must be unicast");
  if (cfg.ipv6.enabled) {
    const auto& v6 = cfg.ipv6;
    packet::Ipv6Address network = v6.prefix;
    std::fill(network.bytes.begin() + 8, network.bytes.end(), 0);
    if (network != v6.prefix || v6.prefix.is_multicast() || v6.prefix.is_link_local() || v6.prefix.is_unspecified())
      return std::unexpected(fmt::format("IPv6 prefix {} must be a unicast, non-link-local /64 (its last 64 bits zero)",
                                         v6.prefix.to_string()));
    for (const auto* a : {&v6.gateway, &v6.dns, &v6.guest})
      if (!a->in_prefix(v6.prefix, 64) || *a == v6.prefix)
        return std::unexpected(fmt::format("IPv6 address {} must lie inside {}/64 and not be its first address",
                                           a->to_string(), v6.prefix.to_string()));
    if (v6.gateway == v6.dns || v6.guest == v6.gateway || v6.guest == v6.dns)
      return std::unexpected("the IPv6 gateway, DNS and guest addresses must differ");
    // Each guest's stateful DHCPv6 address is ipv6.guest + its pool index.
    for (unsigned i = 1; i < cfg.guests; ++i) {
      packet::Ipv6Address a = v6.guest;
      std::uint32_t low = std::uint32_t{a.bytes[12]} << 24 | std::uint32_t{a.bytes[13]} << 16 |
                          std::uint32_t{a.bytes[14]} << 8 | a.bytes[15];
      low += i;
      for (unsigned b = 0; b < 4; ++b) a.bytes[12 + b] = static_cast<std::uint8_t>(low >> (24 - 8 * b));
      if (a == v6.gateway || a == v6.dns || low < i)
        return std::unexpected(fmt::format("{} guests' DHCPv6 addresses from {} would reach {}", cfg.guests,
                                           v6.guest.to_string(), a == v6.gateway ? "the IPv6 gateway" : "the IPv6 DNS address"));
    }
    if (cfg.mtu < 1280) return std::unexpected(fmt::format("MTU {} is below IPv6's minimum of 1280", cfg.mtu));
  }
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

namespace {

// "ADDRESS:" in front of the rest: a dotted quad or a bracketed IPv6
// address. Returns the address and what follows the colon.
std::optional<std::pair<IpAddress, std::string_view>> leading_address(std::string_view text) {
  std::size_t end = 0;
  if (text.starts_with('[')) {
    end = text.find(']');
    if (end == std::string_view::npos || end + 1 >= text.size() || text[end + 1] != ':') return std::nullopt;
    ++end;
  } else {
    end = text.find(':');
    if (end == std::string_view::npos) return std::nullopt;
  }
  auto a = IpAddress::parse(text.substr(0, end));
  if (!a) return std::nullopt;
  return std::pair{*a, text.substr(end + 1)};
}

}  // namespace

std::optional<UsernetConfig::Forward> parse_forward(std::string_view text) {
  UsernetConfig::Forward f;
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view proto = text.substr(0, colon);
  if (proto == "tcp") f.protocol = 6;
  else if (proto == "udp") f.protocol = 17;
  else return std::nullopt;
  std::string_view rest = text.substr(colon + 1);
  // Two colons left: the host address comes first.
  if (rest.starts_with('[') || std::count(rest.begin(), rest.end(), ':') == 2) {
    auto lead = leading_address(rest);
    if (!lead) return std::nullopt;
    f.host_address = lead->first;
    rest = lead->second;
  }
  const auto mid = rest.find(':');
  if (mid == std::string_view::npos) return std::nullopt;
  auto hp = parse_port(rest.substr(0, mid));
  auto gp = parse_port(rest.substr(mid + 1));
  if (!hp || !gp) return std::nullopt;
  f.host_port = *hp;
  f.guest_port = *gp;
  return f;
}

std::optional<UsernetConfig::Upstream> parse_upstream(std::string_view text) {
  UsernetConfig::Upstream u;
  // "IP", "IP:PORT", "IPV6" or "[IPV6]:PORT".
  if (auto bare = IpAddress::parse(text)) {
    u.address = *bare;
    return u;
  }
  auto lead = leading_address(text);
  if (!lead) return std::nullopt;
  u.address = lead->first;
  auto port = parse_port(lead->second);
  if (!port) return std::nullopt;
  u.port = *port;
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
    // A bare address: "IP:PORT" is not resolv.conf syntax, and a scoped
    // link-local one ("fe80::1%eth0") is refused by the parser.
    auto ip = IpAddress::parse(line.substr(0, end));
    if (ip) out.push_back({*ip, 53});
  }
  // IPv4 resolvers first: the first is the one used, and a host's IPv4
  // resolver is the one most likely to be reachable.
  std::stable_partition(out.begin(), out.end(), [](const UsernetConfig::Upstream& u) { return u.address.is_v4(); });
  return out;
}

}  // namespace vnk::usernet
