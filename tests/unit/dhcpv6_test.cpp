// DHCPv6: the message parser's bounds, and usernet's server answering
// crafted client messages -- stateless (Information-Request; Solicit gets
// NoAddrsAvail in its IA_NA) and stateful (--dhcpv6-address: Advertise,
// Request/Reply, Rapid Commit, Release), with every reply's UDP checksum
// checked over the IPv6 pseudo-header and messages for another server
// ignored.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <vector>

#include "base/byte_order.hpp"
#include "counter_delta.hpp"
#include "packet/dhcpv6.hpp"
#include "packet/icmpv6.hpp"
#include "packet/ipv6.hpp"
#include "usernet/usernet.hpp"

namespace vnk::usernet {
namespace {

using namespace packet;
using Bytes = std::vector<std::byte>;

const MacAddress kGuestMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x07}};
const Ipv6Address kClient = Ipv6Address::link_local_from(kGuestMac);
const Bytes kClientDuid{std::byte{0}, std::byte{3}, std::byte{0}, std::byte{1}, std::byte{2}, std::byte{0},
                        std::byte{0}, std::byte{0}, std::byte{0}, std::byte{7}};

Bytes option(std::uint16_t code, const Bytes& value) {
  Bytes o(4 + value.size());
  store_be<std::uint16_t>(o.data(), code);
  store_be<std::uint16_t>(o.data() + 2, static_cast<std::uint16_t>(value.size()));
  std::copy(value.begin(), value.end(), o.begin() + 4);
  return o;
}
Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
Bytes header(std::uint8_t type, std::uint32_t xid) {
  Bytes h(4);
  store_be<std::uint32_t>(h.data(), std::uint32_t{type} << 24 | xid);
  return h;
}
Bytes ia_na(std::uint32_t iaid) {
  Bytes v(12);
  store_be<std::uint32_t>(v.data(), iaid);
  return option(dhcpv6_option::kIaNa, v);
}

TEST(Dhcpv6Parse, ReadsTheFieldsAServerNeedsAndRefusesBadLengths) {
  const Bytes solicit = header(dhcpv6_type::kSolicit, 0xabcdef) + option(dhcpv6_option::kClientId, kClientDuid) +
                        option(8, {std::byte{0}, std::byte{0}}) + ia_na(0x01020304) +
                        option(dhcpv6_option::kRapidCommit, {});
  auto m = parse_dhcpv6(solicit);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, dhcpv6_type::kSolicit);
  EXPECT_EQ(m->transaction, 0xabcdefu);
  ASSERT_TRUE(m->client_id);
  EXPECT_TRUE(std::ranges::equal(*m->client_id, kClientDuid));
  EXPECT_FALSE(m->server_id);
  EXPECT_EQ(m->ia_na, 0x01020304u);
  EXPECT_TRUE(m->rapid_commit);

  EXPECT_EQ(parse_dhcpv6(Bytes(3)).error(), ParseError::truncated);
  Bytes past_end = header(1, 1) + option(dhcpv6_option::kClientId, kClientDuid);
  store_be<std::uint16_t>(past_end.data() + 6, 200);
  EXPECT_EQ(parse_dhcpv6(past_end).error(), ParseError::bad_length);
  EXPECT_EQ(parse_dhcpv6(header(1, 1) + option(dhcpv6_option::kClientId, {})).error(), ParseError::bad_length);
  EXPECT_EQ(parse_dhcpv6(header(1, 1) + option(dhcpv6_option::kClientId, Bytes(129))).error(), ParseError::bad_length);
  EXPECT_EQ(parse_dhcpv6(header(1, 1) + option(dhcpv6_option::kIaNa, Bytes(8))).error(), ParseError::bad_length);
  EXPECT_EQ(parse_dhcpv6(header(1, 1) + Bytes(3)).error(), ParseError::truncated);
}

class Dhcpv6ServerTest : public ::testing::Test {
 protected:
  void start(bool stateful) {
    UsernetConfig c;
    c.ipv6.enabled = true;
    c.ipv6.dhcp_address = stateful;
    c.domain = "example.internal";
    net = std::make_unique<UserNet>(*validate(c));
  }

  void send(const Bytes& message) {
    Bytes f(kEthernetHeaderSize + kIpv6HeaderSize + kUdpHeaderSize + message.size());
    std::copy(message.begin(), message.end(), f.end() - static_cast<std::ptrdiff_t>(message.size()));
    write_udp_frame(f, UdpEndpoints{kDhcpv6Servers.multicast_mac(), kGuestMac, kClient, kDhcpv6ClientPort,
                                    kDhcpv6Servers, kDhcpv6ServerPort},
                    static_cast<std::uint16_t>(message.size()));
    const iovec iov{f.data(), f.size()};
    net->transmit(net::TxFrame{net::NetHeader{}, std::span(&iov, 1), f.size(),
                               std::span(f).first(std::min(f.size(), net::kTxHeadBytes))});
    net->flush_tx();
  }

  struct Reply {
    std::uint8_t type = 0;
    std::uint32_t xid = 0;
    std::map<std::uint16_t, Bytes> options;
  };
  // The next frame: a DHCPv6 message from the gateway's link-local address
  // to the client's port 546, its UDP checksum intact.
  std::optional<Reply> reply() {
    Bytes buf(4096);
    const iovec iov{buf.data(), buf.size()};
    auto r = net->receive(std::span(&iov, 1));
    if (r.status != net::RxStatus::frame) return std::nullopt;
    buf.resize(r.written);
    auto eth = parse_ethernet(buf);
    EXPECT_TRUE(eth && eth->dst == kGuestMac);
    auto ip = parse_ipv6(eth->payload);
    EXPECT_TRUE(ip);
    if (!ip) return std::nullopt;
    EXPECT_EQ(ip->src, Ipv6Address::link_local_from(UsernetConfig{}.gateway_mac));
    EXPECT_EQ(ip->dst, kClient);
    auto udp = parse_udp(ip_packet(*ip));
    EXPECT_TRUE(udp) << "UDP checksum";
    if (!udp) return std::nullopt;
    EXPECT_EQ(udp->src_port, kDhcpv6ServerPort);
    EXPECT_EQ(udp->dst_port, kDhcpv6ClientPort);
    Reply rep;
    const auto b = udp->payload;
    rep.type = static_cast<std::uint8_t>(b[0]);
    rep.xid = load_be<std::uint32_t>(b.data()) & 0xffffff;
    for (std::size_t i = 4; i + 4 <= b.size();) {
      const std::size_t len = load_be<std::uint16_t>(b.data() + i + 2);
      rep.options[load_be<std::uint16_t>(b.data() + i)] = Bytes(b.begin() + i + 4, b.begin() + i + 4 + len);
      i += 4 + len;
    }
    return rep;
  }
  // The sub-options of an IA_NA value (after IAID, T1, T2).
  static std::map<std::uint16_t, Bytes> inner(const Bytes& ia) {
    std::map<std::uint16_t, Bytes> out;
    for (std::size_t i = 12; i + 4 <= ia.size();) {
      const std::size_t len = load_be<std::uint16_t>(ia.data() + i + 2);
      out[load_be<std::uint16_t>(ia.data() + i)] = Bytes(ia.begin() + i + 4, ia.begin() + i + 4 + len);
      i += 4 + len;
    }
    return out;
  }
  static Ipv6Address address_at(const Bytes& b, std::size_t at) { return Ipv6Address::load(b.data() + at); }

  std::unique_ptr<UserNet> net;
};

TEST_F(Dhcpv6ServerTest, InformationRequestGetsTheDnsServerAndSearchList) {
  start(false);
  test::CounterDelta d(net->counters());
  send(header(dhcpv6_type::kInformationRequest, 0x123456) + option(dhcpv6_option::kClientId, kClientDuid));
  auto r = reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, dhcpv6_type::kReply);
  EXPECT_EQ(r->xid, 0x123456u);
  EXPECT_EQ(r->options[dhcpv6_option::kClientId], kClientDuid);
  const Bytes& server = r->options[dhcpv6_option::kServerId];
  ASSERT_EQ(server.size(), 10u);
  EXPECT_EQ(load_be<std::uint16_t>(server.data()), 3) << "DUID-LL";
  EXPECT_EQ(MacAddress::load(server.data() + 4), UsernetConfig{}.gateway_mac);
  ASSERT_EQ(r->options[dhcpv6_option::kDnsServers].size(), 16u);
  EXPECT_EQ(address_at(r->options[dhcpv6_option::kDnsServers], 0), *Ipv6Address::parse("fd00::3"));
  const Bytes want{std::byte{7}, std::byte{'e'}, std::byte{'x'}, std::byte{'a'}, std::byte{'m'}, std::byte{'p'},
                   std::byte{'l'}, std::byte{'e'}, std::byte{8}, std::byte{'i'}, std::byte{'n'}, std::byte{'t'},
                   std::byte{'e'}, std::byte{'r'}, std::byte{'n'}, std::byte{'a'}, std::byte{'l'}, std::byte{0}};
  EXPECT_EQ(r->options[dhcpv6_option::kDomainList], want);
  EXPECT_TRUE(r->options.contains(dhcpv6_option::kInformationRefreshTime));
  EXPECT_FALSE(r->options.contains(dhcpv6_option::kIaNa));
  EXPECT_TRUE(d.moved(net->counters(), {{"frames_from_guest", 1}, {"frames_to_guest", 1}, {"ipv6_packets", 1},
                                        {"dhcpv6_information_requests", 1}, {"dhcpv6_replies", 1}}));
}

TEST_F(Dhcpv6ServerTest, WithoutStatefulAddressesASolicitIsToldNoAddrsAvail) {
  start(false);
  send(header(dhcpv6_type::kSolicit, 7) + option(dhcpv6_option::kClientId, kClientDuid) + ia_na(42));
  auto r = reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, dhcpv6_type::kAdvertise);
  const Bytes& ia = r->options[dhcpv6_option::kIaNa];
  ASSERT_GE(ia.size(), 12u);
  EXPECT_EQ(load_be<std::uint32_t>(ia.data()), 42u);
  auto sub = inner(ia);
  ASSERT_TRUE(sub.contains(dhcpv6_option::kStatusCode));
  EXPECT_EQ(load_be<std::uint16_t>(sub[dhcpv6_option::kStatusCode].data()), dhcpv6_status::kNoAddrsAvail);
  EXPECT_FALSE(sub.contains(dhcpv6_option::kIaAddr));
}

TEST_F(Dhcpv6ServerTest, StatefulSolicitRequestAndRapidCommitGiveTheGuestItsAddress) {
  start(true);
  send(header(dhcpv6_type::kSolicit, 1) + option(dhcpv6_option::kClientId, kClientDuid) + ia_na(9));
  auto adv = reply();
  ASSERT_TRUE(adv);
  EXPECT_EQ(adv->type, dhcpv6_type::kAdvertise);
  auto sub = inner(adv->options[dhcpv6_option::kIaNa]);
  ASSERT_EQ(sub[dhcpv6_option::kIaAddr].size(), 24u);
  EXPECT_EQ(address_at(sub[dhcpv6_option::kIaAddr], 0), *Ipv6Address::parse("fd00::15"));
  const Bytes server = adv->options[dhcpv6_option::kServerId];

  test::CounterDelta d(net->counters());
  // A Request to another server is not ours to answer.
  Bytes other = server;
  other.back() ^= std::byte{1};
  send(header(dhcpv6_type::kRequest, 2) + option(dhcpv6_option::kClientId, kClientDuid) +
       option(dhcpv6_option::kServerId, other) + ia_na(9));
  EXPECT_FALSE(reply());
  // One without a client identifier neither.
  send(header(dhcpv6_type::kRequest, 2) + option(dhcpv6_option::kServerId, server) + ia_na(9));
  EXPECT_FALSE(reply());
  send(header(dhcpv6_type::kRequest, 3) + option(dhcpv6_option::kClientId, kClientDuid) +
       option(dhcpv6_option::kServerId, server) + ia_na(9));
  auto rep = reply();
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->type, dhcpv6_type::kReply);
  EXPECT_EQ(rep->xid, 3u);
  const Bytes& ia = rep->options[dhcpv6_option::kIaNa];
  EXPECT_EQ(load_be<std::uint32_t>(ia.data() + 4), Dhcpv6Server::kPreferredSeconds / 2) << "T1";
  sub = inner(ia);
  EXPECT_EQ(address_at(sub[dhcpv6_option::kIaAddr], 0), *Ipv6Address::parse("fd00::15"));
  EXPECT_EQ(load_be<std::uint32_t>(sub[dhcpv6_option::kIaAddr].data() + 20), Dhcpv6Server::kValidSeconds);
  EXPECT_TRUE(d.moved(net->counters(), {{"frames_from_guest", 3}, {"frames_to_guest", 1}, {"ipv6_packets", 3},
                                        {"dhcpv6_requests", 3}, {"dhcpv6_ignored", 2}, {"dhcpv6_replies", 1},
                                        {"dhcpv6_addresses", 1}}));

  // Rapid Commit: Solicit answered with a Reply at once.
  send(header(dhcpv6_type::kSolicit, 4) + option(dhcpv6_option::kClientId, kClientDuid) + ia_na(9) +
       option(dhcpv6_option::kRapidCommit, {}));
  auto rapid = reply();
  ASSERT_TRUE(rapid);
  EXPECT_EQ(rapid->type, dhcpv6_type::kReply);
  EXPECT_TRUE(rapid->options.contains(dhcpv6_option::kRapidCommit));

  // Release: Success.
  send(header(dhcpv6_type::kRelease, 5) + option(dhcpv6_option::kClientId, kClientDuid) +
       option(dhcpv6_option::kServerId, server) + ia_na(9));
  auto rel = reply();
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->type, dhcpv6_type::kReply);
  EXPECT_EQ(load_be<std::uint16_t>(rel->options[dhcpv6_option::kStatusCode].data()), dhcpv6_status::kSuccess);
}

TEST_F(Dhcpv6ServerTest, ServerMessagesAndMalformedOnesAreNotAnswered) {
  start(true);
  test::CounterDelta d(net->counters());
  send(header(dhcpv6_type::kAdvertise, 1) + option(dhcpv6_option::kClientId, kClientDuid));
  send(header(dhcpv6_type::kSolicit, 1));  // no client identifier
  send(header(dhcpv6_type::kSolicit, 1) + option(dhcpv6_option::kClientId, {}));
  EXPECT_FALSE(reply());
  EXPECT_TRUE(d.moved(net->counters(), {{"frames_from_guest", 3}, {"ipv6_packets", 3}, {"dhcpv6_solicits", 1},
                                        {"dhcpv6_ignored", 2}, {"drop_malformed", 1}}));
}

// The Router Advertisement's M flag says whether DHCPv6 gives addresses, its
// O flag that it gives other configuration (it always does).
TEST_F(Dhcpv6ServerTest, TheRouterAdvertisementSaysWhatDhcpv6Offers) {
  for (bool stateful : {false, true}) {
    start(stateful);
    Bytes rs(kEthernetHeaderSize + kIpv6HeaderSize + 8);
    rs[kEthernetHeaderSize + kIpv6HeaderSize] = std::byte{icmpv6_type::kRouterSolicitation};
    write_icmpv6_frame(rs, kIpv6AllRouters.multicast_mac(), kGuestMac, kClient, kIpv6AllRouters, 255, 8);
    const iovec iov{rs.data(), rs.size()};
    net->transmit(net::TxFrame{net::NetHeader{}, std::span(&iov, 1), rs.size(), std::span(rs)});
    Bytes buf(4096);
    const iovec out{buf.data(), buf.size()};
    auto r = net->receive(std::span(&out, 1));
    ASSERT_EQ(r.status, net::RxStatus::frame);
    const std::byte* ra = buf.data() + kEthernetHeaderSize + kIpv6HeaderSize;
    ASSERT_EQ(static_cast<std::uint8_t>(ra[0]), icmpv6_type::kRouterAdvertisement);
    EXPECT_EQ(static_cast<std::uint8_t>(ra[5]), stateful ? 0xc0 : 0x40) << "M and O";
  }
}

}  // namespace
}  // namespace vnk::usernet
