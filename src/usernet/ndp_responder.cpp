#include "usernet/ndp_responder.hpp"

#include <algorithm>

namespace vnk::usernet {

using namespace packet;

namespace {

constexpr std::uint8_t kNdHopLimit = 255;  // RFC 4861: every ND message, so a receiver knows it stayed on the link
constexpr std::size_t kIcmpv6Offset = kEthernetHeaderSize + kIpv6HeaderSize;

}  // namespace

NdpResponder::NdpResponder(const UsernetConfig& cfg, UsernetCounters& counters)
    : cfg_(cfg), counters_(counters), link_local_(Ipv6Address::link_local_from(cfg.gateway_mac)) {}

bool NdpResponder::owns(const Ipv6Address& a) const noexcept {
  return a == cfg_.ipv6.gateway || a == cfg_.ipv6.dns || a == link_local_;
}

void NdpResponder::learn(const Ipv6Address& a) noexcept {
  if (a.is_unspecified() || a.is_multicast() || a.is_loopback() || owns(a)) return;
  auto* end = guest_addresses_.begin() + static_cast<std::ptrdiff_t>(guest_address_count_);
  auto* it = std::find(guest_addresses_.begin(), end, a);
  if (it != end) {
    std::rotate(it, it + 1, end);  // most recent last
    return;
  }
  if (guest_address_count_ == kMaxGuestAddresses) {
    std::rotate(guest_addresses_.begin(), guest_addresses_.begin() + 1, end);  // forget the oldest
    --guest_address_count_;
  }
  guest_addresses_[guest_address_count_++] = a;
}

std::size_t NdpResponder::handle(const Ipv6& ip, const Icmpv6& msg, const MacAddress& guest_mac,
                                 std::span<std::byte> out) {
  switch (msg.type) {
    case icmpv6_type::kRouterSolicitation: return router_advert(ip, msg, guest_mac, out);
    case icmpv6_type::kNeighborSolicitation: return neighbor_advert(ip, msg, guest_mac, out);
    default: counters_.ndp_ignored.add(); return 0;  // advertisements, redirects: we are the only router
  }
}

std::size_t NdpResponder::router_advert(const Ipv6& ip, const Icmpv6& msg, const MacAddress& guest_mac,
                                        std::span<std::byte> out) {
  auto rs = parse_router_solicitation(ip, msg);
  if (!rs) {
    counters_.ndp_malformed.add();
    return 0;
  }
  learn(ip.src);
  RouterAdvert ra;
  ra.router_mac = cfg_.gateway_mac;
  ra.prefix = cfg_.ipv6.prefix;  // a /64, as SLAAC needs
  ra.mtu = cfg_.mtu >= 1280 ? cfg_.mtu : 0;  // IPv6's minimum link MTU
  ra.dns = {cfg_.ipv6.dns};
  ra.managed = cfg_.ipv6.dhcp_address;  // DHCPv6 answers either way (usernet/dhcpv6_server)
  ra.other_config = true;
  if (!cfg_.domain.empty()) ra.search = {cfg_.domain};
  const std::size_t len = write_router_advert(out.subspan(kIcmpv6Offset), ra);
  if (len == 0) return 0;
  counters_.ndp_router_solicitations.add();
  counters_.ndp_advertisements_sent.add();
  // To the soliciting address, or to all nodes when it has none yet (§6.2.6).
  const Ipv6Address dst = ip.src.is_unspecified() ? kIpv6AllNodes : ip.src;
  const MacAddress dst_mac = ip.src.is_unspecified() ? kIpv6AllNodes.multicast_mac() : rs->source_mac.value_or(guest_mac);
  return write_icmpv6_frame(out, dst_mac, cfg_.gateway_mac, link_local_, dst, kNdHopLimit, len);
}

std::size_t NdpResponder::neighbor_advert(const Ipv6& ip, const Icmpv6& msg, const MacAddress& guest_mac,
                                          std::span<std::byte> out) {
  auto ns = parse_neighbor_solicitation(ip, msg);
  if (!ns) {
    counters_.ndp_malformed.add();
    return 0;
  }
  learn(ip.src);
  if (!owns(ns->target)) {
    counters_.ndp_ignored.add();  // the guest's own DAD, or a neighbour that is not there
    return 0;
  }
  const std::size_t len = write_neighbor_advert(out.subspan(kIcmpv6Offset), ns->target, cfg_.gateway_mac,
                                                !ip.src.is_unspecified());
  if (len == 0) return 0;
  counters_.ndp_neighbor_solicitations.add();
  counters_.ndp_advertisements_sent.add();
  // A DAD probe for one of our addresses is answered to all nodes (§7.2.4).
  const bool dad = ip.src.is_unspecified();
  const Ipv6Address dst = dad ? kIpv6AllNodes : ip.src;
  const MacAddress dst_mac = dad ? kIpv6AllNodes.multicast_mac() : ns->source_mac.value_or(guest_mac);
  const Ipv6Address& src = ns->target;  // answered from the address asked about
  return write_icmpv6_frame(out, dst_mac, cfg_.gateway_mac, src, dst, kNdHopLimit, len);
}

}  // namespace vnk::usernet
