#include "usernet/host_route.hpp"

#include "packet/headers.hpp"
#include "packet/ipv6.hpp"

namespace vnk::usernet {

namespace {

using packet::IpAddress;
using packet::Ipv6Address;

bool is_icmp(std::uint8_t protocol) noexcept {
  return protocol == packet::ip_proto::kIcmp || protocol == packet::ip_proto::kIcmpv6;
}

// 169.254/16: a cloud's metadata and credential services (169.254.169.254,
// ECS's 169.254.170.2) answer whoever asks from the host -- with the host's
// identity. A guest must not borrow it. (--mmds answers 169.254.169.254 in
// front of usernet, from our own document.)
bool is_ipv4_link_local(Ipv4Address a) noexcept { return a.in_subnet(Ipv4Address::of(169, 254, 0, 0), 16); }

std::expected<SocketAddress, RouteRefusal> ipv4_destination(const UsernetConfig& cfg, Ipv4Address dst,
                                                            std::uint16_t port) noexcept {
  const auto nowhere = std::unexpected(RouteRefusal::no_route);
  if (cfg.host_only) return nowhere;
  if (dst.in_subnet(cfg.network, cfg.prefix)) return nowhere;  // no other hosts on the guest's network
  const std::uint8_t first = static_cast<std::uint8_t>(dst.value >> 24);
  // 0/8 "this network", 127/8 the guest's own loopback, 224/4 multicast and
  // 240/4 reserved (with broadcast) never leave through a host socket.
  if (first == 0 || first == 127 || first >= 224) return nowhere;
  if (is_ipv4_link_local(dst) && !cfg.allow_link_local) return std::unexpected(RouteRefusal::link_local);
  return SocketAddress(dst, port);
}

std::expected<SocketAddress, RouteRefusal> ipv6_destination(const UsernetConfig& cfg, const Ipv6Address& dst,
                                                            std::uint16_t port) noexcept {
  const auto nowhere = std::unexpected(RouteRefusal::no_route);
  const auto refused = std::unexpected(RouteRefusal::link_local);
  if (cfg.host_only) return nowhere;
  if (dst.in_prefix(cfg.ipv6.prefix, 64)) return nowhere;  // no other hosts on the guest's link
  // ::/96 holds the unspecified, loopback and IPv4-compatible addresses;
  // multicast is the link's. (An IPv4-mapped address is an IPv4 one in an
  // IpAddress and took the IPv4 rules; usernet drops IPv6 packets that
  // carry one before they get here.)
  if (dst.in_prefix(Ipv6Address{}, 96) || dst.is_multicast()) return nowhere;
  if (cfg.allow_link_local) return SocketAddress(dst, port);
  const Ipv6Address aws_metadata{{0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}};  // fd00:ec2::254
  const Ipv6Address nat64{{0x00, 0x64, 0xff, 0x9b}};  // 64:ff9b::/96 (RFC 6052)
  if (dst.is_link_local() || dst == aws_metadata) return refused;
  if (dst.in_prefix(nat64, 96) && is_ipv4_link_local(IpAddress(dst).ipv4())) return refused;
  return SocketAddress(dst, port);
}

}  // namespace

std::expected<SocketAddress, RouteRefusal> host_destination(const UsernetConfig& cfg, std::uint8_t protocol,
                                                            const IpAddress& dst, std::uint16_t port) noexcept {
  const bool v4 = dst.is_v4();
  const IpAddress loopback = v4 ? IpAddress(Ipv4Address::of(127, 0, 0, 1)) : IpAddress(Ipv6Address{{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}});
  const auto nowhere = std::unexpected(RouteRefusal::no_route);
  if (dst == (v4 ? IpAddress(cfg.gateway) : IpAddress(cfg.ipv6.gateway))) {
    if (!cfg.map_gateway_to_loopback) return nowhere;
    return SocketAddress(loopback, port);
  }
  if (dst == (v4 ? IpAddress(cfg.dns) : IpAddress(cfg.ipv6.dns))) {
    if (is_icmp(protocol)) return SocketAddress(loopback, 0);  // the DNS address answers ping
    if (port != 53 || cfg.dns_upstreams.empty()) return nowhere;
    return SocketAddress(cfg.dns_upstreams.front().address, cfg.dns_upstreams.front().port);
  }
  return v4 ? ipv4_destination(cfg, dst.ipv4(), port) : ipv6_destination(cfg, dst.ipv6(), port);
}

}  // namespace vnk::usernet
