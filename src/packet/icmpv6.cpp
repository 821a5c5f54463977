#include "packet/icmpv6.hpp"

#include <algorithm>

#include "base/byte_order.hpp"
#include "packet/dns_name.hpp"

namespace vnk::packet {

namespace {

constexpr std::uint8_t kOptSourceLinkAddr = 1;
constexpr std::uint8_t kOptTargetLinkAddr = 2;
constexpr std::uint8_t kOptPrefixInfo = 3;
constexpr std::uint8_t kOptMtu = 5;
constexpr std::uint8_t kOptRdnss = 25;
constexpr std::uint8_t kOptDnssl = 31;

// Walks NDP options (RFC 4861 §4.6): every one has a non-zero length in
// units of 8 bytes and lies within the message. Returns the source
// link-layer address option if there is one (the first, 6-byte Ethernet
// form), or nullopt; an error for a malformed option list.
std::expected<std::optional<MacAddress>, ParseError> source_mac_option(std::span<const std::byte> opts) {
  std::optional<MacAddress> mac;
  while (!opts.empty()) {
    if (opts.size() < 2) return std::unexpected(ParseError::truncated);
    const std::size_t len = std::size_t{static_cast<std::uint8_t>(opts[1])} * 8;
    if (len == 0) return std::unexpected(ParseError::bad_length);
    if (len > opts.size()) return std::unexpected(ParseError::truncated);
    if (static_cast<std::uint8_t>(opts[0]) == kOptSourceLinkAddr && len == 8 && !mac) mac = MacAddress::load(opts.data() + 2);
    opts = opts.subspan(len);
  }
  return mac;
}

bool common_nd_checks(const Ipv6& ip, const Icmpv6& m) { return ip.hop_limit == 255 && m.code == 0; }

}  // namespace

std::expected<Icmpv6, ParseError> parse_icmpv6(const Ipv6& ip) {
  const auto b = ip.payload;
  if (ip.protocol != ip_proto::kIcmpv6) return std::unexpected(ParseError::unsupported);
  if (ip.payload_len < kIcmpv6HeaderSize + 4 || b.size() < ip.payload_len) return std::unexpected(ParseError::truncated);
  Checksum c;
  add_ipv6_pseudo_header(c, ip.src, ip.dst, ip_proto::kIcmpv6, ip.payload_len);
  c.add(b.first(ip.payload_len));
  if (c.finish() != 0) return std::unexpected(ParseError::bad_checksum);
  return Icmpv6{static_cast<std::uint8_t>(b[0]), static_cast<std::uint8_t>(b[1]),
                b.subspan(kIcmpv6HeaderSize, ip.payload_len - kIcmpv6HeaderSize)};
}

std::expected<Icmpv6Echo, ParseError> parse_icmpv6_echo(const Icmpv6& m) {
  if (m.body.size() < 4) return std::unexpected(ParseError::truncated);
  return Icmpv6Echo{load_be<std::uint16_t>(m.body.data()), load_be<std::uint16_t>(m.body.data() + 2)};
}

std::size_t write_icmpv6_unreachable(std::span<std::byte> out, std::uint8_t code, std::span<const std::byte> original) {
  const std::size_t quote = std::min(original.size(), kIcmpv6ErrorMax - 8);
  const std::size_t len = 8 + quote;
  if (out.size() < len) return 0;
  std::fill_n(out.begin(), 8, std::byte{0});  // checksum and the 4 unused bytes
  out[0] = std::byte{icmpv6_type::kDestUnreachable};
  out[1] = std::byte{code};
  std::copy_n(original.begin(), quote, out.begin() + 8);
  return len;
}

std::expected<RouterSolicitation, ParseError> parse_router_solicitation(const Ipv6& ip, const Icmpv6& m) {
  if (m.type != icmpv6_type::kRouterSolicitation) return std::unexpected(ParseError::unsupported);
  if (!common_nd_checks(ip, m)) return std::unexpected(ParseError::bad_version);
  if (m.body.size() < 4) return std::unexpected(ParseError::truncated);  // reserved
  auto mac = source_mac_option(m.body.subspan(4));
  if (!mac) return std::unexpected(mac.error());
  if (ip.src.is_unspecified() && *mac) return std::unexpected(ParseError::bad_version);
  return RouterSolicitation{*mac};
}

std::expected<NeighborSolicitation, ParseError> parse_neighbor_solicitation(const Ipv6& ip, const Icmpv6& m) {
  if (m.type != icmpv6_type::kNeighborSolicitation) return std::unexpected(ParseError::unsupported);
  if (!common_nd_checks(ip, m)) return std::unexpected(ParseError::bad_version);
  if (m.body.size() < 20) return std::unexpected(ParseError::truncated);  // reserved + target
  NeighborSolicitation ns;
  ns.target = Ipv6Address::load(m.body.data() + 4);
  if (ns.target.is_multicast()) return std::unexpected(ParseError::bad_version);
  auto mac = source_mac_option(m.body.subspan(20));
  if (!mac) return std::unexpected(mac.error());
  if (ip.src.is_unspecified() && (*mac || ip.dst != ns.target.solicited_node()))
    return std::unexpected(ParseError::bad_version);
  ns.source_mac = *mac;
  return ns;
}

std::size_t write_router_advert(std::span<std::byte> out, const RouterAdvert& ra) {
  std::size_t need = 16 + 8 + 32 + (ra.mtu ? 8 : 0) + (ra.dns.empty() ? 0 : 8 + 16 * ra.dns.size());
  if (out.size() < need) return 0;
  std::fill_n(out.begin(), need, std::byte{0});
  out[0] = std::byte{icmpv6_type::kRouterAdvertisement};
  out[4] = std::byte{64};  // cur hop limit
  out[5] = static_cast<std::byte>((ra.managed ? 0x80 : 0) | (ra.other_config ? 0x40 : 0));
  store_be<std::uint16_t>(out.data() + 6, ra.router_lifetime_s);
  std::size_t n = 16;  // reachable time and retrans timer stay 0: unspecified
  out[n] = std::byte{kOptSourceLinkAddr};
  out[n + 1] = std::byte{1};
  ra.router_mac.store(out.data() + n + 2);
  n += 8;
  out[n] = std::byte{kOptPrefixInfo};
  out[n + 1] = std::byte{4};
  out[n + 2] = static_cast<std::byte>(ra.prefix_len);
  out[n + 3] = std::byte{0xc0};  // L (on-link) and A (autonomous address configuration)
  store_be<std::uint32_t>(out.data() + n + 4, ra.valid_lifetime_s);
  store_be<std::uint32_t>(out.data() + n + 8, ra.preferred_lifetime_s);
  ra.prefix.store(out.data() + n + 16);
  n += 32;
  if (ra.mtu) {
    out[n] = std::byte{kOptMtu};
    out[n + 1] = std::byte{1};
    store_be<std::uint32_t>(out.data() + n + 4, ra.mtu);
    n += 8;
  }
  if (!ra.dns.empty()) {
    out[n] = std::byte{kOptRdnss};
    out[n + 1] = static_cast<std::byte>(1 + 2 * ra.dns.size());
    store_be<std::uint32_t>(out.data() + n + 4, ra.dns_lifetime_s);
    for (std::size_t i = 0; i < ra.dns.size(); ++i) ra.dns[i].store(out.data() + n + 8 + 16 * i);
    n += 8 + 16 * ra.dns.size();
  }
  if (!ra.search.empty()) {
    if (out.size() < n + 8) return 0;
    std::size_t names = 0;
    for (const std::string& d : ra.search) {
      const std::size_t w = write_dns_name(out.subspan(n + 8 + names), d);
      if (w == 0) return 0;
      names += w;
    }
    const std::size_t len = (8 + names + 7) / 8 * 8;  // padded with zeros to 8 bytes
    if (len / 8 > 255 || out.size() < n + len) return 0;
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(n + 8 + names), out.begin() + static_cast<std::ptrdiff_t>(n + len),
              std::byte{0});
    out[n] = std::byte{kOptDnssl};
    out[n + 1] = static_cast<std::byte>(len / 8);
    out[n + 2] = out[n + 3] = std::byte{0};
    store_be<std::uint32_t>(out.data() + n + 4, ra.dns_lifetime_s);
    n += len;
  }
  return n;
}

std::size_t write_neighbor_advert(std::span<std::byte> out, const Ipv6Address& target, const MacAddress& mac,
                                  bool solicited) {
  if (out.size() < kNeighborAdvertSize) return 0;
  std::fill_n(out.begin(), kNeighborAdvertSize, std::byte{0});
  out[0] = std::byte{icmpv6_type::kNeighborAdvertisement};
  // R (router), S (solicited), O (override).
  out[4] = static_cast<std::byte>(0x80 | (solicited ? 0x40 : 0) | 0x20);
  target.store(out.data() + 8);
  out[24] = std::byte{kOptTargetLinkAddr};
  out[25] = std::byte{1};
  mac.store(out.data() + 26);
  return kNeighborAdvertSize;
}

std::size_t write_icmpv6_frame(std::span<std::byte> out, MacAddress dst_mac, MacAddress src_mac,
                               const Ipv6Address& src, const Ipv6Address& dst, std::uint8_t hop_limit,
                               std::size_t message_len) {
  constexpr std::size_t l3 = kEthernetHeaderSize, l4 = l3 + kIpv6HeaderSize;
  write_ethernet(out, dst_mac, src_mac, ethertype::kIpv6);
  write_ipv6(out.subspan(l3), Ipv6Fields{src, dst, ip_proto::kIcmpv6, static_cast<std::uint16_t>(message_len),
                                         hop_limit, 0});
  const auto msg = out.subspan(l4, message_len);
  store_be<std::uint16_t>(msg.data() + 2, 0);
  Checksum c;
  add_ipv6_pseudo_header(c, src, dst, ip_proto::kIcmpv6, static_cast<std::uint32_t>(message_len));
  c.add(msg);
  store_be<std::uint16_t>(msg.data() + 2, c.finish());
  return l4 + message_len;
}

}  // namespace vnk::packet
