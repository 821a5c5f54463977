#include "usernet/host_route.hpp"

#include <arpa/inet.h>

#include "packet/headers.hpp"

namespace vnk::usernet {

namespace {

sockaddr_in make_sockaddr(Ipv4Address a, std::uint16_t port) noexcept {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(a.value);
  sa.sin_port = htons(port);
  return sa;
}

}  // namespace

std::expected<sockaddr_in, RouteRefusal> host_destination(const UsernetConfig& cfg, std::uint8_t protocol,
                                                          Ipv4Address dst, std::uint16_t port) noexcept {
  constexpr Ipv4Address kLoopback = Ipv4Address::of(127, 0, 0, 1);
  const auto nowhere = std::unexpected(RouteRefusal::no_route);
  if (dst == cfg.gateway) {
    if (!cfg.map_gateway_to_loopback) return nowhere;
    return make_sockaddr(kLoopback, port);
  }
  if (dst == cfg.dns) {
    if (protocol == packet::ip_proto::kIcmp) return make_sockaddr(kLoopback, 0);  // the DNS address answers ping
    if (port != 53 || cfg.dns_upstreams.empty()) return nowhere;
    return make_sockaddr(cfg.dns_upstreams.front().address, cfg.dns_upstreams.front().port);
  }
  if (cfg.host_only) return nowhere;
  if (dst.in_subnet(cfg.network, cfg.prefix)) return nowhere;  // no other hosts on the guest's network
  const std::uint8_t first = static_cast<std::uint8_t>(dst.value >> 24);
  // 0/8 "this network", 127/8 the guest's own loopback, 224/4 multicast and
  // 240/4 reserved (with broadcast) never leave through a host socket.
  if (first == 0 || first == 127 || first >= 224) return nowhere;
  // 169.254/16: a cloud's metadata and credential services (169.254.169.254,
  // ECS's 169.254.170.2) answer whoever asks from the host -- with the host's
  // identity. A guest must not borrow it. (--mmds answers 169.254.169.254 in
  // front of usernet, from our own document.)
  if (dst.in_subnet(Ipv4Address::of(169, 254, 0, 0), 16) && !cfg.allow_link_local)
    return std::unexpected(RouteRefusal::link_local);
  return make_sockaddr(dst, port);
}

}  // namespace vnk::usernet
