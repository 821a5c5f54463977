#include "cli/usernet_options.hpp"

#include <charconv>
#include <fmt/format.h>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "base/host_features.hpp"
#include "base/log.hpp"

namespace vnk::cli {

void add_usernet_options(CLI::App& group, UsernetArgs& args, const std::string& peer, const std::string& mtu_option) {
  group.add_option("--network", args.network, fmt::format("The {}'s network, ADDRESS/PREFIX", peer))->capture_default_str();
  group.add_option("--gateway", args.gateway,
                   peer == "guest" ? "Gateway address (answers ARP, serves DHCP)" : "Gateway address (the default route)")
      ->capture_default_str();
  group.add_option("--dns", args.dns,
                   peer == "guest" ? "DNS address handed out by DHCP" : "DNS address (the command's resolv.conf names it)")
      ->capture_default_str();
  group.add_option("--guest-ip", args.guest, fmt::format("The {}'s address", peer))->capture_default_str();
  group.add_option(mtu_option, args.user_mtu, fmt::format("The {}'s MTU (576..65520)", peer))->capture_default_str();
  group.add_option("--hostname", args.hostname, "Host name handed out by DHCP");
  group.add_option("--domain", args.domain, "Domain name handed out by DHCP");
  group.add_option("--dns-upstream", args.dns_upstreams,
                   "Resolver for queries to the DNS addresses, IP[:PORT] or [IPV6]:PORT (repeatable; the first is used; "
                   "default: nameservers in --resolv-conf, IPv4 ones first)");
  group.add_option("--resolv-conf", args.resolv_conf, "Where to find the host's resolvers")->capture_default_str();
  group.add_option("--forward", args.forwards,
                   fmt::format("Inbound port forward tcp|udp:[ADDRESS:]HOSTPORT:{}PORT (ADDRESS defaults to 127.0.0.1; "
                               "[::1] or [::] for IPv6; the {} side is IPv4; repeatable)",
                               peer == "guest" ? "GUEST" : "NS", peer));
  group.add_option("--pcap", args.pcap, "Write every frame, both ways, to this pcap file (tcpdump -r FILE)");
  group.add_flag("--host-only", args.host_only,
                 fmt::format("The {} reaches only the host's loopback (via the gateway) and DNS, nothing beyond", peer));
  group.add_flag("--no-map-gw", args.no_map_gw,
                 "Do not map the gateway address to the host's 127.0.0.1 (it then answers ARP and DHCP only)");
  group.add_flag("--allow-link-local", args.allow_link_local,
                 fmt::format("Let the {} reach link-local 169.254.0.0/16 (and IPv6 fe80::/10, fd00:ec2::254) through "
                             "host sockets; by default they are refused, as clouds serve the host's metadata and "
                             "credentials there",
                             peer));
  group.add_flag("--ipv6,!--no-ipv6", args.ipv6,
                 fmt::format("IPv6 on the link (the default; --no-ipv6 drops it): the {} configures an address in "
                             "--ipv6-prefix by SLAAC or DHCPv6; PREFIX::2 is the gateway (the host's ::1 unless "
                             "--no-map-gw), PREFIX::3 the DNS address; TCP, UDP and ping go through host sockets",
                             peer));
  group.add_option("--ipv6-prefix", args.ipv6_prefix, "The IPv6 /64 of the link (a ULA by default)")->capture_default_str();
  group.add_flag("--dhcpv6-address", args.dhcpv6_address,
                 fmt::format("DHCPv6 also hands the {} an address, PREFIX::15 (stateful); without it DHCPv6 answers "
                             "with the DNS servers only and addresses come from SLAAC",
                             peer));
}

std::expected<usernet::UsernetConfig, std::string> to_usernet_config(const UsernetArgs& a) {
  usernet::UsernetConfig cfg;
  const auto slash = a.network.find('/');
  auto net = usernet::Ipv4Address::parse(a.network.substr(0, slash));
  unsigned prefix = 0;
  const std::string p = slash == std::string::npos ? "" : a.network.substr(slash + 1);
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (!net || p.empty() || ec != std::errc{} || end != p.data() + p.size())
    return std::unexpected(fmt::format("--network '{}': expected ADDRESS/PREFIX, like 10.0.2.0/24", a.network));
  cfg.network = *net;
  cfg.prefix = prefix;
  const struct {
    const char* option;
    const std::string& text;
    usernet::Ipv4Address& out;
  } addrs[] = {{"--gateway", a.gateway, cfg.gateway}, {"--dns", a.dns, cfg.dns}, {"--guest-ip", a.guest, cfg.guest}};
  for (const auto& x : addrs) {
    auto ip = usernet::Ipv4Address::parse(x.text);
    if (!ip) return std::unexpected(fmt::format("{} '{}' is not an IPv4 address", x.option, x.text));
    x.out = *ip;
  }
  cfg.mtu = a.user_mtu;
  cfg.hostname = a.hostname;
  cfg.domain = a.domain;
  cfg.map_gateway_to_loopback = !a.no_map_gw;
  cfg.pcap_path = a.pcap;
  cfg.host_only = a.host_only;
  cfg.allow_link_local = a.allow_link_local;
  cfg.ipv6.enabled = a.ipv6;
  cfg.ipv6.dhcp_address = a.dhcpv6_address;
  {
    const auto slash6 = a.ipv6_prefix.find('/');
    auto prefix6 = packet::Ipv6Address::parse(a.ipv6_prefix.substr(0, slash6));
    if (!prefix6 || slash6 == std::string::npos || a.ipv6_prefix.substr(slash6 + 1) != "64")
      return std::unexpected(fmt::format("--ipv6-prefix '{}': expected an IPv6 /64, like fd00::/64", a.ipv6_prefix));
    // The gateway, DNS and DHCPv6 addresses are ::2, ::3 and ::15 of it.
    cfg.ipv6.prefix = cfg.ipv6.gateway = cfg.ipv6.dns = cfg.ipv6.guest = *prefix6;
    cfg.ipv6.gateway.bytes[15] = 2;
    cfg.ipv6.dns.bytes[15] = 3;
    cfg.ipv6.guest.bytes[15] = 0x15;
  }
  for (const auto& text : a.dns_upstreams) {
    auto u = usernet::parse_upstream(text);
    if (!u)
      return std::unexpected(
          fmt::format("--dns-upstream '{}': expected IP, IP:PORT or [IPV6]:PORT, like 127.0.0.1:5353", text));
    cfg.dns_upstreams.push_back(*u);
  }
  for (const auto& text : a.forwards) {
    auto f = usernet::parse_forward(text);
    if (!f)
      return std::unexpected(fmt::format(
          "--forward '{}': expected tcp|udp:[ADDRESS:]HOSTPORT:GUESTPORT, like tcp:8080:80 or tcp:[::1]:8080:80",
          text));
    cfg.forwards.push_back(*f);
  }
  if (cfg.dns_upstreams.empty() && !a.resolv_conf.empty()) {
    std::ifstream in(a.resolv_conf);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    cfg.dns_upstreams = usernet::parse_resolv_conf(text);
  }
  cfg.guests = a.guests;
  return usernet::validate(cfg);
}

std::expected<std::unique_ptr<usernet::UserNet>, std::string> start_usernet(const usernet::UsernetConfig& cfg) {
  log::info("{}", describe(host_features()));
  try {
    return std::make_unique<usernet::UserNet>(cfg);
  } catch (const std::runtime_error& e) {
    return std::unexpected(e.what());
  }
}

}  // namespace vnk::cli
