// IPv6 in usernet, so far: addresses, the header and extension-header chain
// with every reason to refuse one, ICMPv6 checksums, and Neighbor Discovery
// (Router and Neighbor Solicitations in, advertisements out) driven through
// UserNet with crafted frames, each answer parsed back and each drop counted.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <vector>

#include "base/byte_order.hpp"
#include "counter_delta.hpp"
#include "packet/icmpv6.hpp"
#include "packet/ipv6.hpp"
#include "usernet/usernet.hpp"

namespace vnk::usernet {
namespace {

using namespace packet;

const MacAddress kGuestMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
const Ipv6Address kGuestLinkLocal = Ipv6Address::link_local_from(kGuestMac);

Ipv6Address addr(const char* text) { return *Ipv6Address::parse(text); }
MacAddress kCfgGatewayMac() { return UsernetConfig{}.gateway_mac; }

TEST(Ipv6Address, TextClassesAndDerivedAddresses) {
  EXPECT_EQ(addr("fd00::2").to_string(), "fd00::2");
  EXPECT_FALSE(Ipv6Address::parse("fd00::2%eth0"));
  EXPECT_FALSE(Ipv6Address::parse("10.0.2.2"));
  EXPECT_FALSE(Ipv6Address::parse(""));
  EXPECT_TRUE(addr("::1").is_loopback());
  EXPECT_TRUE(addr("::").is_unspecified());
  EXPECT_TRUE(addr("fe80::1").is_link_local());
  EXPECT_TRUE(addr("febf::1").is_link_local());
  EXPECT_FALSE(addr("fec0::1").is_link_local());
  EXPECT_TRUE(addr("ff02::1").is_multicast());
  EXPECT_TRUE(addr("fd00::1234").in_prefix(addr("fd00::"), 64));
  EXPECT_FALSE(addr("fd00:0:0:1::1").in_prefix(addr("fd00::"), 64));
  EXPECT_TRUE(addr("fd00:0:0:1::1").in_prefix(addr("fd00::"), 63));
  EXPECT_EQ(addr("fd00::12:3456").solicited_node(), addr("ff02::1:ff12:3456"));
  EXPECT_EQ(addr("ff02::1:ff12:3456").multicast_mac().to_string(), "33:33:ff:12:34:56");
  // RFC 4291 appendix A: the universal/local bit flips.
  EXPECT_EQ(Ipv6Address::link_local_from(*MacAddress::parse("52:55:0a:00:02:02")), addr("fe80::5055:aff:fe00:202"));
}

// A packet: the fixed header (next header `first_next`), `ext` (extension
// headers, each naming the next), and `payload` zero bytes.
std::vector<std::byte> packet(std::uint8_t first_next, std::vector<std::uint8_t> ext, std::size_t payload = 8) {
  std::vector<std::byte> p(kIpv6HeaderSize + ext.size() + payload);
  write_ipv6(p, Ipv6Fields{addr("fe80::1"), addr("fd00::2"), first_next,
                           static_cast<std::uint16_t>(ext.size() + payload), 64, 0});
  for (std::size_t i = 0; i < ext.size(); ++i) p[kIpv6HeaderSize + i] = std::byte{ext[i]};
  return p;
}

TEST(Ipv6Header, WalksTheExtensionChainToTheUpperLayer) {
  // Hop-by-hop (Router Alert, PadN) then destination options (Pad1s), then UDP.
  auto p = packet(ip_proto::kHopByHop,
                  {ip_proto::kDestOptions, 0, 5, 2, 0, 0, 1, 0,  // HbH: Router Alert, PadN(0)
                   ip_proto::kUdp, 0, 0, 0, 0, 0, 0, 0});        // Dest: six Pad1
  auto ip = parse_ipv6(p);
  ASSERT_TRUE(ip) << to_string(ip.error());
  EXPECT_EQ(ip->protocol, ip_proto::kUdp);
  EXPECT_EQ(ip->header_len, kIpv6HeaderSize + 16);
  EXPECT_EQ(ip->payload_len, 8);
  EXPECT_EQ(ip->src, addr("fe80::1"));
  EXPECT_EQ(ip->hop_limit, 64);
  // Ethernet padding after the packet is not payload.
  p.resize(p.size() + 10);
  ip = parse_ipv6(p);
  ASSERT_TRUE(ip);
  EXPECT_EQ(ip->payload.size(), 8u);
}

TEST(Ipv6Header, EveryReasonToRefuseIsItsOwnError) {
  auto err = [](const std::vector<std::byte>& p) { return parse_ipv6(p).error(); };
  EXPECT_EQ(err(std::vector<std::byte>(39)), ParseError::truncated);
  auto v4 = packet(ip_proto::kUdp, {});
  v4[0] = std::byte{0x45};
  EXPECT_EQ(err(v4), ParseError::bad_version);
  // A payload length beyond the frame.
  auto longer = packet(ip_proto::kUdp, {});
  store_be<std::uint16_t>(longer.data() + 4, 9);
  EXPECT_EQ(err(longer), ParseError::bad_length);
  // A fragment header.
  EXPECT_EQ(err(packet(ip_proto::kFragment, {ip_proto::kUdp, 0, 0, 1, 0, 0, 0, 1})), ParseError::fragment);
  // A jumbogram: payload length 0 with a hop-by-hop header.
  auto jumbo = packet(ip_proto::kHopByHop, {ip_proto::kUdp, 0, 0xc2, 4, 0, 1, 0, 0});
  store_be<std::uint16_t>(jumbo.data() + 4, 0);
  EXPECT_EQ(err(jumbo), ParseError::unsupported);
  // A routing header with segments left: we would be asked to route on.
  EXPECT_EQ(err(packet(ip_proto::kRouting, {ip_proto::kUdp, 0, 0, 1, 0, 0, 0, 0})), ParseError::unsupported);
  EXPECT_TRUE(parse_ipv6(packet(ip_proto::kRouting, {ip_proto::kUdp, 0, 0, 0, 0, 0, 0, 0})));
  // Hop-by-hop anywhere but first.
  EXPECT_EQ(err(packet(ip_proto::kDestOptions, {ip_proto::kHopByHop, 0, 1, 4, 0, 0, 0, 0,  //
                                                ip_proto::kUdp, 0, 1, 4, 0, 0, 0, 0})),
            ParseError::unsupported);
  // An unknown option whose type says "discard" (high bits 01), and one that says "skip" (00).
  EXPECT_EQ(err(packet(ip_proto::kDestOptions, {ip_proto::kUdp, 0, 0x42, 4, 0, 0, 0, 0})),
            ParseError::unsupported);
  EXPECT_TRUE(parse_ipv6(packet(ip_proto::kDestOptions, {ip_proto::kUdp, 0, 0x1e, 4, 0, 0, 0, 0})));
  // An option running past its header.
  EXPECT_EQ(err(packet(ip_proto::kDestOptions, {ip_proto::kUdp, 0, 1, 9, 0, 0, 0, 0})),
            ParseError::unsupported);
  // An extension header past the packet's end.
  EXPECT_EQ(err(packet(ip_proto::kDestOptions, {ip_proto::kUdp, 1, 1, 4, 0, 0, 0, 0}, 0)),
            ParseError::bad_length);
  // "No next header", and a chain longer than the bound.
  EXPECT_EQ(err(packet(ip_proto::kNoNextHeader, {})), ParseError::unsupported);
  std::vector<std::uint8_t> chain;
  for (unsigned i = 0; i <= kMaxExtensionHeaders; ++i)
    for (std::uint8_t b : {i == kMaxExtensionHeaders ? ip_proto::kUdp : ip_proto::kDestOptions, std::uint8_t{0}, std::uint8_t{1},
                           std::uint8_t{4}, std::uint8_t{0}, std::uint8_t{0}, std::uint8_t{0}, std::uint8_t{0}})
      chain.push_back(b);
  EXPECT_EQ(err(packet(ip_proto::kDestOptions, chain)), ParseError::unsupported);
}

// --- Neighbor Discovery through UserNet ------------------------------------

class NdpTest : public ::testing::Test {
 protected:
  static UsernetConfig config(bool enabled) {
    UsernetConfig c;
    c.ipv6.enabled = enabled;
    c.domain = "example.internal";
    c.mtu = 1500;
    return *validate(c);
  }

  void send(const std::vector<std::byte>& frame) {
    const iovec iov{const_cast<std::byte*>(frame.data()), frame.size()};
    net.transmit(net::TxFrame{net::NetHeader{}, std::span(&iov, 1), frame.size(),
                              std::span(frame).first(std::min(frame.size(), net::kTxHeadBytes))});
    net.flush_tx();
  }
  std::vector<std::byte> take() {
    std::vector<std::byte> buf(4096);
    const iovec iov{buf.data(), buf.size()};
    auto r = net.receive(std::span(&iov, 1));
    if (r.status != net::RxStatus::frame) return {};
    buf.resize(r.written);
    return buf;
  }
  // An ICMPv6 message `body` (type first) from `src` to `dst`, hop limit 255.
  static std::vector<std::byte> icmpv6(const Ipv6Address& src, const Ipv6Address& dst, MacAddress dst_mac,
                                       std::vector<std::uint8_t> body, std::uint8_t hop_limit = 255) {
    std::vector<std::byte> f(kEthernetHeaderSize + kIpv6HeaderSize + body.size());
    for (std::size_t i = 0; i < body.size(); ++i) f[kEthernetHeaderSize + kIpv6HeaderSize + i] = std::byte{body[i]};
    write_icmpv6_frame(f, dst_mac, kGuestMac, src, dst, hop_limit, body.size());
    return f;
  }
  static std::vector<std::uint8_t> slla_option() {
    std::vector<std::uint8_t> o{1, 1};
    o.insert(o.end(), kGuestMac.octets.begin(), kGuestMac.octets.end());
    return o;
  }
  static std::vector<std::byte> router_solicitation(const Ipv6Address& src, bool with_slla = true,
                                                    std::uint8_t hop_limit = 255) {
    std::vector<std::uint8_t> body{133, 0, 0, 0, 0, 0, 0, 0};
    if (with_slla) {
      auto o = slla_option();
      body.insert(body.end(), o.begin(), o.end());
    }
    return icmpv6(src, kIpv6AllRouters, kIpv6AllRouters.multicast_mac(), body, hop_limit);
  }
  static std::vector<std::byte> neighbor_solicitation(const Ipv6Address& src, const Ipv6Address& target,
                                                      bool with_slla = true) {
    std::vector<std::uint8_t> body{135, 0, 0, 0, 0, 0, 0, 0};
    body.insert(body.end(), target.bytes.begin(), target.bytes.end());
    if (with_slla) {
      auto o = slla_option();
      body.insert(body.end(), o.begin(), o.end());
    }
    const Ipv6Address dst = target.solicited_node();
    return icmpv6(src, dst, dst.multicast_mac(), body);
  }
  struct Answer {
    Ethernet eth;
    Ipv6 ip;
    Icmpv6 msg;
  };
  // The next frame, parsed down to its ICMPv6 message (checksum checked).
  std::optional<Answer> answer() {
    frame_ = take();
    if (frame_.empty()) return std::nullopt;
    auto eth = parse_ethernet(frame_);
    EXPECT_TRUE(eth && eth->type == ethertype::kIpv6);
    auto ip = parse_ipv6(eth->payload);
    EXPECT_TRUE(ip);
    auto msg = parse_icmpv6(*ip);
    EXPECT_TRUE(msg) << to_string(msg.error());
    if (!eth || !ip || !msg) return std::nullopt;
    return Answer{*eth, *ip, *msg};
  }

  UserNet net{config(true)};
  std::vector<std::byte> frame_;
};

TEST_F(NdpTest, RouterSolicitationGetsAnAdvertisementForSlaac) {
  test::CounterDelta d(net.counters());
  send(router_solicitation(kGuestLinkLocal));
  auto a = answer();
  ASSERT_TRUE(a);
  EXPECT_TRUE(d.moved(net.counters(), {{"frames_from_guest", 1}, {"frames_to_guest", 1}, {"ipv6_packets", 1},
                                       {"ndp_router_solicitations", 1}, {"ndp_advertisements_sent", 1}}));
  EXPECT_EQ(a->eth.dst, kGuestMac);
  EXPECT_EQ(a->ip.src, Ipv6Address::link_local_from(kCfgGatewayMac()));
  EXPECT_EQ(a->ip.dst, kGuestLinkLocal);
  EXPECT_EQ(a->ip.hop_limit, 255);
  EXPECT_EQ(a->msg.type, icmpv6_type::kRouterAdvertisement);
  const auto b = a->msg.body;
  EXPECT_EQ(load_be<std::uint16_t>(b.data() + 2), 1800) << "router lifetime: the gateway is the default router";
  // Options: source link-layer, prefix information, MTU, RDNSS, DNSSL.
  std::map<std::uint8_t, std::span<const std::byte>> opts;
  for (std::size_t i = 12; i + 2 <= b.size();) {
    const std::size_t len = std::size_t{static_cast<std::uint8_t>(b[i + 1])} * 8;
    ASSERT_GT(len, 0u);
    ASSERT_LE(i + len, b.size());
    opts[static_cast<std::uint8_t>(b[i])] = b.subspan(i, len);
    i += len;
  }
  ASSERT_EQ(opts.size(), 5u);
  EXPECT_EQ(static_cast<std::uint8_t>(opts[3][2]), 64);    // prefix length
  EXPECT_EQ(static_cast<std::uint8_t>(opts[3][3]), 0xc0);  // on-link, autonomous
  Ipv6Address prefix;
  for (std::size_t i = 0; i < 16; ++i) prefix.bytes[i] = static_cast<std::uint8_t>(opts[3][16 + i]);
  EXPECT_EQ(prefix, addr("fd00::"));
  EXPECT_EQ(load_be<std::uint32_t>(opts[5].data() + 4), 1500u);
  ASSERT_EQ(opts[25].size(), 24u);
  Ipv6Address dns;
  for (std::size_t i = 0; i < 16; ++i) dns.bytes[i] = static_cast<std::uint8_t>(opts[25][8 + i]);
  EXPECT_EQ(dns, addr("fd00::3"));
  const std::vector<std::uint8_t> want{7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 8, 'i', 'n', 't', 'e', 'r', 'n', 'a', 'l', 0};
  for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(static_cast<std::uint8_t>(opts[31][8 + i]), want[i]) << i;
  EXPECT_EQ(net.ipv6_guest_addresses().back(), kGuestLinkLocal);
}

TEST_F(NdpTest, SolicitationFromTheUnspecifiedAddressIsAnsweredToAllNodes) {
  send(router_solicitation(Ipv6Address{}, false));
  auto a = answer();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ip.dst, kIpv6AllNodes);
  EXPECT_EQ(a->eth.dst, kIpv6AllNodes.multicast_mac());
}

TEST_F(NdpTest, NeighborSolicitationForTheGatewayAndDnsIsAnsweredWithTheGatewaysMac) {
  for (const Ipv6Address& target : {addr("fd00::2"), addr("fd00::3"), Ipv6Address::link_local_from(kCfgGatewayMac())}) {
    send(neighbor_solicitation(kGuestLinkLocal, target));
    auto a = answer();
    ASSERT_TRUE(a) << target.to_string();
    EXPECT_EQ(a->msg.type, icmpv6_type::kNeighborAdvertisement);
    EXPECT_EQ(a->ip.src, target);
    EXPECT_EQ(a->ip.dst, kGuestLinkLocal);
    EXPECT_EQ(static_cast<std::uint8_t>(a->msg.body[0]), 0xe0);  // router, solicited, override
    Ipv6Address t;
    for (std::size_t i = 0; i < 16; ++i) t.bytes[i] = static_cast<std::uint8_t>(a->msg.body[4 + i]);
    EXPECT_EQ(t, target);
    EXPECT_EQ(static_cast<std::uint8_t>(a->msg.body[20]), 2);  // target link-layer address option
    MacAddress mac;
    for (std::size_t i = 0; i < 6; ++i) mac.octets[i] = static_cast<std::uint8_t>(a->msg.body[22 + i]);
    EXPECT_EQ(mac, kCfgGatewayMac());
  }
  EXPECT_EQ(net.counters().ndp_neighbor_solicitations.get(), 3u);
}

TEST_F(NdpTest, TheGuestsOwnDadIsLeftAloneAndADadProbeForOursIsDefended) {
  test::CounterDelta d(net.counters());
  send(neighbor_solicitation(Ipv6Address{}, addr("fd00::5054:ff:fe12:3456"), false));
  EXPECT_TRUE(take().empty());
  EXPECT_TRUE(d.moved(net.counters(), {{"frames_from_guest", 1}, {"ipv6_packets", 1}, {"ndp_ignored", 1}}));
  send(neighbor_solicitation(Ipv6Address{}, addr("fd00::2"), false));
  auto a = answer();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->ip.dst, kIpv6AllNodes);
  EXPECT_EQ(static_cast<std::uint8_t>(a->msg.body[0]) & 0x40, 0) << "not solicited";
}

TEST_F(NdpTest, InvalidNdpAndIpv6AreCountedAndNeverAnswered) {
  test::CounterDelta d(net.counters());
  send(router_solicitation(kGuestLinkLocal, true, 64));  // hop limit must be 255
  send(router_solicitation(Ipv6Address{}, true));        // unspecified source with an address option
  auto dad_with_slla = neighbor_solicitation(Ipv6Address{}, addr("fd00::2"), true);
  send(dad_with_slla);
  std::vector<std::uint8_t> zero_len_option{133, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  send(icmpv6(kGuestLinkLocal, kIpv6AllRouters, kIpv6AllRouters.multicast_mac(), zero_len_option));
  auto rs = router_solicitation(kGuestLinkLocal);
  rs.back() ^= std::byte{1};  // the ICMPv6 checksum no longer holds
  send(rs);
  std::vector<std::uint8_t> private_type{200, 0, 0, 0, 0, 1, 0, 1};  // RFC 4443 private experimentation
  send(icmpv6(kGuestLinkLocal, addr("fd00::2"), kCfgGatewayMac(), private_type));
  auto fragment = icmpv6(kGuestLinkLocal, addr("fd00::2"), kCfgGatewayMac(), private_type);
  fragment[kEthernetHeaderSize + 6] = std::byte{ip_proto::kFragment};
  send(fragment);
  EXPECT_TRUE(take().empty());
  EXPECT_TRUE(d.moved(net.counters(), {{"frames_from_guest", 7}, {"ipv6_packets", 6}, {"ndp_malformed", 4},
                                       {"ipv6_malformed", 1}, {"ipv6_unsupported", 1}, {"ip_fragments", 1}}));
}

TEST(Ipv6Off, FramesAreCountedAndDropped) {
  UserNet net{*validate(UsernetConfig{})};
  std::vector<std::byte> f(kEthernetHeaderSize + kIpv6HeaderSize + 8);
  write_ethernet(f, kIpv6AllRouters.multicast_mac(), kGuestMac, ethertype::kIpv6);
  write_ipv6(std::span(f).subspan(kEthernetHeaderSize), Ipv6Fields{kGuestLinkLocal, kIpv6AllRouters, ip_proto::kIcmpv6, 8, 255, 0});
  const iovec iov{f.data(), f.size()};
  net.transmit(net::TxFrame{net::NetHeader{}, std::span(&iov, 1), f.size(), std::span(f).first(net::kTxHeadBytes)});
  EXPECT_EQ(net.counters().ipv6_disabled.get(), 1u);
}

}  // namespace
}  // namespace vnk::usernet
