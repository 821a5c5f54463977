// The packet layer's parsers against well-formed, truncated and lying
// headers, and its writers round-tripping through the parsers.
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "base/byte_order.hpp"
#include "packet/checksum.hpp"
#include "packet/dhcp.hpp"
#include "packet/headers.hpp"

namespace vnk::packet {
namespace {

std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> b;
  for (int x : v) b.push_back(static_cast<std::byte>(x));
  return b;
}

TEST(Checksum, MatchesRfc1071ExampleAndIsSplitInvariant) {
  // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2 -> checksum 0x220d.
  const auto b = bytes({0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7});
  EXPECT_EQ(internet_checksum(b), 0x220d);
  Checksum c;
  c.add(std::span(b).first(3));  // odd split
  c.add(std::span(b).subspan(3));
  EXPECT_EQ(c.finish(), 0x220d);
}

TEST(Checksum, TheWordAtATimeSumEqualsTheByteSumForAnyLengthSplitAndContent) {
  // RFC 1071's definition, one big-endian 16-bit word at a time.
  auto reference = [](std::span<const std::byte> b) {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < b.size(); i += 2) {
      sum += std::uint32_t{static_cast<std::uint8_t>(b[i])} << 8;
      if (i + 1 < b.size()) sum += static_cast<std::uint8_t>(b[i + 1]);
    }
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<std::uint16_t>(~sum & 0xffff);
  };
  std::uint32_t seed = 12345;
  auto next = [&seed] { return seed = seed * 1103515245 + 12345; };
  for (std::size_t len : {0u, 1u, 15u, 16u, 17u, 31u, 33u, 64u, 1499u, 1500u, 9001u, 65535u}) {
    for (int fill = 0; fill < 3; ++fill) {
      std::vector<std::byte> b(len);
      for (auto& x : b) x = std::byte(fill == 0 ? 0xff : fill == 1 ? 0x00 : (next() >> 16) & 0xff);
      const std::uint16_t want = reference(b);
      EXPECT_EQ(internet_checksum(b), want) << len << " " << fill;
      for (std::size_t cut : {std::size_t{1}, std::size_t{3}, len / 2, len > 0 ? len - 1 : 0}) {
        if (cut > len) continue;
        Checksum c;
        c.add(std::span(b).first(cut));
        c.add(std::span(b).subspan(cut));
        EXPECT_EQ(c.finish(), want) << len << " cut " << cut;
      }
    }
  }
}

TEST(Ipv4AddressTest, ParsesDottedQuadsOnly) {
  EXPECT_EQ(Ipv4Address::parse("10.0.2.15")->value, 0x0a00020fu);
  EXPECT_EQ(Ipv4Address::parse("10.0.2.15")->to_string(), "10.0.2.15");
  for (const char* bad : {"", "10.0.2", "10.0.2.256", "10.0.2.15.1", "a.b.c.d", "10..2.15", "10.0.2.15 ", "-1.0.0.0"})
    EXPECT_FALSE(Ipv4Address::parse(bad)) << bad;
  EXPECT_TRUE(Ipv4Address::of(10, 0, 2, 99).in_subnet(Ipv4Address::of(10, 0, 2, 0), 24));
  EXPECT_FALSE(Ipv4Address::of(10, 0, 3, 1).in_subnet(Ipv4Address::of(10, 0, 2, 0), 24));
}

TEST(Ethernet, RefusesRuntsAndReadsFields) {
  std::array<std::byte, 14> f{};
  EXPECT_EQ(parse_ethernet(std::span(f).first(13)).error(), ParseError::truncated);
  write_ethernet(f, MacAddress::broadcast(), MacAddress{{2, 0, 0, 0, 0, 1}}, ethertype::kArp);
  auto e = parse_ethernet(f);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->dst.is_broadcast());
  EXPECT_EQ(e->src, (MacAddress{{2, 0, 0, 0, 0, 1}}));
  EXPECT_EQ(e->type, ethertype::kArp);
  EXPECT_TRUE(e->payload.empty());
}

TEST(Arp, RoundTripsAndRefusesOtherHardware) {
  std::array<std::byte, kArpSize> b{};
  const Arp a{arp_op::kRequest, MacAddress{{2, 0, 0, 0, 0, 1}}, Ipv4Address::of(10, 0, 2, 15), MacAddress{},
              Ipv4Address::of(10, 0, 2, 2)};
  write_arp(b, a);
  auto p = parse_arp(b);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->op, arp_op::kRequest);
  EXPECT_EQ(p->sender_ip, a.sender_ip);
  EXPECT_EQ(p->target_ip, a.target_ip);
  EXPECT_EQ(parse_arp(std::span(b).first(27)).error(), ParseError::truncated);
  b[5] = std::byte{16};  // IPv6-sized protocol address
  EXPECT_EQ(parse_arp(b).error(), ParseError::bad_version);
}

class Ipv4Test : public ::testing::Test {
 protected:
  Ipv4Test() {
    write_ipv4(buf, Ipv4Fields{Ipv4Address::of(10, 0, 2, 15), Ipv4Address::of(10, 0, 2, 2), ip_proto::kUdp, 12});
    write_udp(std::span(buf).subspan(kIpv4HeaderSize), Ipv4Address::of(10, 0, 2, 15), Ipv4Address::of(10, 0, 2, 2),
              68, 67, 4);
  }
  void fix_checksum() {
    store_be<std::uint16_t>(buf.data() + 10, 0);
    store_be<std::uint16_t>(buf.data() + 10, internet_checksum(std::span(buf).first(20)));
  }
  std::array<std::byte, 20 + 12 + 6> buf{};  // 6 bytes of Ethernet padding after the datagram
};

TEST_F(Ipv4Test, RoundTripsAndCutsEthernetPadding) {
  auto ip = parse_ipv4(buf);
  ASSERT_TRUE(ip) << to_string(ip.error());
  EXPECT_EQ(ip->protocol, ip_proto::kUdp);
  EXPECT_EQ(ip->payload.size(), 12u);
  EXPECT_TRUE(ip->dont_fragment);
  auto udp = parse_udp(*ip);
  ASSERT_TRUE(udp) << to_string(udp.error());
  EXPECT_EQ(udp->src_port, 68);
  EXPECT_EQ(udp->dst_port, 67);
  EXPECT_EQ(udp->payload.size(), 4u);
}

TEST_F(Ipv4Test, RefusesEveryLie) {
  EXPECT_EQ(parse_ipv4(std::span(buf).first(19)).error(), ParseError::truncated);
  auto b = buf;
  b[0] = std::byte{0x65};
  EXPECT_EQ(parse_ipv4(b).error(), ParseError::bad_version);
  b = buf;
  b[0] = std::byte{0x44};  // IHL 4: shorter than the fixed header
  EXPECT_EQ(parse_ipv4(b).error(), ParseError::bad_length);
  b = buf;
  b[10] ^= std::byte{1};
  EXPECT_EQ(parse_ipv4(b).error(), ParseError::bad_checksum);
  store_be<std::uint16_t>(buf.data() + 2, 200);  // total length beyond the bytes
  fix_checksum();
  EXPECT_EQ(parse_ipv4(buf).error(), ParseError::bad_length);
  store_be<std::uint16_t>(buf.data() + 2, 32);
  store_be<std::uint16_t>(buf.data() + 6, 0x2000);  // more fragments
  fix_checksum();
  EXPECT_EQ(parse_ipv4(buf).error(), ParseError::fragment);
  store_be<std::uint16_t>(buf.data() + 6, 0x0001);  // non-zero offset
  fix_checksum();
  EXPECT_EQ(parse_ipv4(buf).error(), ParseError::fragment);
}

TEST_F(Ipv4Test, UdpChecksumAndLengthAreChecked) {
  auto b = buf;
  b[20 + 8] ^= std::byte{0xff};  // payload byte changed under the checksum
  EXPECT_EQ(parse_udp(*parse_ipv4(b)).error(), ParseError::bad_checksum);
  b = buf;
  store_be<std::uint16_t>(b.data() + 20 + 6, 0);  // no checksum: accepted
  EXPECT_TRUE(parse_udp(*parse_ipv4(b)));
  store_be<std::uint16_t>(b.data() + 20 + 4, 13);  // longer than the IP payload
  EXPECT_EQ(parse_udp(*parse_ipv4(b)).error(), ParseError::bad_length);
  store_be<std::uint16_t>(b.data() + 20 + 4, 7);  // shorter than its own header
  EXPECT_EQ(parse_udp(*parse_ipv4(b)).error(), ParseError::bad_length);
}

std::vector<std::byte> dhcp_client(std::uint8_t type, std::vector<std::byte> extra_options = {}) {
  std::vector<std::byte> b(kDhcpFixedSize);
  b[0] = std::byte{1};
  b[1] = std::byte{1};
  b[2] = std::byte{6};
  store_be<std::uint32_t>(b.data() + 4, 0xdeadbeef);
  b[28] = std::byte{2};
  store_be<std::uint32_t>(b.data() + 236, 0x63825363);
  for (auto x : bytes({53, 1, type})) b.push_back(x);
  b.insert(b.end(), extra_options.begin(), extra_options.end());
  b.push_back(std::byte{255});
  return b;
}

TEST(Dhcp, ParsesTypeRequestedIpAndServerId) {
  auto b = dhcp_client(dhcp_type::kRequest, bytes({0, 0, 50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2, 12, 3, 'v', 'm', '1'}));
  auto m = parse_dhcp(b);
  ASSERT_TRUE(m) << to_string(m.error());
  EXPECT_EQ(m->message_type, dhcp_type::kRequest);
  EXPECT_EQ(m->xid, 0xdeadbeefu);
  EXPECT_EQ(m->requested_ip, Ipv4Address::of(10, 0, 2, 15));
  EXPECT_EQ(m->server_id, Ipv4Address::of(10, 0, 2, 2));
  EXPECT_EQ(m->chaddr.octets[0], 2);
}

TEST(Dhcp, RefusesBrokenMessages) {
  auto b = dhcp_client(dhcp_type::kDiscover);
  EXPECT_EQ(parse_dhcp(std::span(b).first(239)).error(), ParseError::truncated);
  auto c = b;
  c[236] = std::byte{0};
  EXPECT_EQ(parse_dhcp(c).error(), ParseError::bad_version);
  c = b;
  c[1] = std::byte{6};  // not Ethernet
  EXPECT_EQ(parse_dhcp(c).error(), ParseError::unsupported);
  // An option whose length runs past the end.
  c = dhcp_client(dhcp_type::kDiscover);
  c.pop_back();
  for (auto x : bytes({50, 200, 1, 2})) c.push_back(x);
  EXPECT_EQ(parse_dhcp(c).error(), ParseError::bad_length);
  // A length byte missing.
  c = dhcp_client(dhcp_type::kDiscover);
  c.back() = std::byte{50};
  EXPECT_EQ(parse_dhcp(c).error(), ParseError::truncated);
  // Message type of the wrong size.
  c = dhcp_client(dhcp_type::kDiscover);
  c[240 + 1] = std::byte{2};
  c.insert(c.begin() + 243, std::byte{0});
  EXPECT_EQ(parse_dhcp(c).error(), ParseError::bad_length);
}

TEST(Dhcp, WriterReportsOverflowInsteadOfTruncating) {
  const auto req = *parse_dhcp(dhcp_client(dhcp_type::kDiscover));
  std::vector<std::byte> out(kDhcpFixedSize + 10);
  DhcpWriter w(out, req, dhcp_type::kOffer, Ipv4Address::of(10, 0, 2, 15), Ipv4Address::of(10, 0, 2, 2));
  w.option_u32(dhcp_option::kLeaseTime, 1);  // 6 bytes: fits
  w.option_u32(dhcp_option::kServerId, 1);   // does not fit with END
  EXPECT_EQ(w.finish(), 0u);
  std::vector<std::byte> big(400);
  DhcpWriter ok(big, req, dhcp_type::kOffer, Ipv4Address::of(10, 0, 2, 15), Ipv4Address::of(10, 0, 2, 2));
  const std::size_t n = ok.finish();
  ASSERT_EQ(n, 300u);  // padded to BOOTP's minimum
  auto back = parse_dhcp(std::span(big).first(n));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->op, 2);
  EXPECT_EQ(back->message_type, dhcp_type::kOffer);
  EXPECT_EQ(back->yiaddr, Ipv4Address::of(10, 0, 2, 15));
}

}  // namespace
}  // namespace vnk::packet
