// usernet driven by a small test "guest" that speaks Ethernet: crafted frames
// in through transmit(), replies out through receive(), every reply parsed
// back with the packet layer and every counter checked.
#include "usernet/usernet.hpp"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "base/byte_order.hpp"
#include "counter_delta.hpp"
#include "packet/dhcp.hpp"
#include "packet/headers.hpp"

namespace vnk::usernet {
namespace {

using namespace packet;
const MacAddress kGuestMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
const UsernetConfig kCfg = *validate(UsernetConfig{});

class UsernetTest : public ::testing::Test {
 protected:
  net::TxResult send(std::vector<std::byte> frame) {
    const iovec iov{frame.data(), frame.size()};
    const net::NetHeader hdr{};
    const net::TxResult r =
        net.transmit(net::TxFrame{hdr, std::span(&iov, 1), frame.size(), std::span(frame).first(std::min(frame.size(), net::kTxHeadBytes))});
    net.flush_tx();  // as the TX engine does at the end of a drain
    return r;
  }
  // The next frame for the guest, or an empty vector.
  std::vector<std::byte> take() {
    std::vector<std::byte> buf(4096);
    const iovec iov{buf.data(), buf.size()};
    auto r = net.receive(std::span(&iov, 1));
    if (r.status != net::RxStatus::frame) return {};
    buf.resize(r.written);
    return buf;
  }

  std::vector<std::byte> arp_request(Ipv4Address target) {
    std::vector<std::byte> f(kEthernetHeaderSize + kArpSize);
    write_ethernet(f, MacAddress::broadcast(), kGuestMac, ethertype::kArp);
    write_arp(std::span(f).subspan(kEthernetHeaderSize),
              Arp{arp_op::kRequest, kGuestMac, Ipv4Address::of(10, 0, 2, 15), MacAddress{}, target});
    return f;
  }

  // A DHCP client message inside UDP/IPv4/Ethernet, broadcast.
  std::vector<std::byte> dhcp(std::uint8_t type, std::vector<std::uint8_t> options = {}, Ipv4Address ciaddr = {}) {
    std::vector<std::byte> d(kDhcpFixedSize);
    d[0] = std::byte{1};
    d[1] = std::byte{1};
    d[2] = std::byte{6};
    store_be<std::uint32_t>(d.data() + 4, 0x12345678);
    store_be<std::uint32_t>(d.data() + 12, ciaddr.value);
    for (std::size_t i = 0; i < 6; ++i) d[28 + i] = static_cast<std::byte>(kGuestMac.octets[i]);
    store_be<std::uint32_t>(d.data() + 236, 0x63825363);
    for (std::uint8_t x : std::vector<std::uint8_t>{53, 1, type}) d.push_back(std::byte{x});
    for (std::uint8_t x : options) d.push_back(std::byte{x});
    d.push_back(std::byte{255});
    std::vector<std::byte> f(kUdpFrameOverhead + d.size());
    std::copy(d.begin(), d.end(), f.begin() + kUdpFrameOverhead);
    write_udp_frame(f, UdpEndpoints{MacAddress::broadcast(), kGuestMac, kIpv4Any, 68, kIpv4Broadcast, 67},
                    static_cast<std::uint16_t>(d.size()));
    return f;
  }

  struct DhcpReply {
    Ethernet eth;
    Ipv4 ip;
    DhcpMessage msg;
    std::map<std::uint8_t, std::vector<std::byte>> options;
  };
  // Parses a reply frame all the way down, checking every checksum.
  DhcpReply parse_reply(const std::vector<std::byte>& f) {
    DhcpReply r;
    auto eth = parse_ethernet(f);
    EXPECT_TRUE(eth);
    r.eth = *eth;
    auto ip = parse_ipv4(eth->payload);
    EXPECT_TRUE(ip) << to_string(ip.error());
    r.ip = *ip;
    auto udp = parse_udp(*ip);
    EXPECT_TRUE(udp);
    EXPECT_EQ(udp->src_port, 67);
    EXPECT_EQ(udp->dst_port, 68);
    auto m = parse_dhcp(udp->payload);
    EXPECT_TRUE(m);
    r.msg = *m;
    for (std::size_t i = kDhcpFixedSize; i < udp->payload.size();) {
      const auto code = static_cast<std::uint8_t>(udp->payload[i]);
      if (code == 255) break;
      if (code == 0) {
        ++i;
        continue;
      }
      const auto len = static_cast<std::size_t>(udp->payload[i + 1]);
      auto v = udp->payload.subspan(i + 2, len);
      r.options[code].assign(v.begin(), v.end());
      i += 2 + len;
    }
    return r;
  }
  static std::uint32_t u32(const std::vector<std::byte>& v) { return load_be<std::uint32_t>(v.data()); }

  UserNet net{kCfg};
};

TEST_F(UsernetTest, AnswersArpForTheGatewayAndDnsOnly) {
  test::CounterDelta d(net.counters());
  for (Ipv4Address target : {kCfg.gateway, kCfg.dns}) {
    EXPECT_EQ(send(arp_request(target)), net::TxResult::sent);
    auto f = take();
    ASSERT_EQ(f.size(), 60u);
    auto eth = parse_ethernet(f);
    EXPECT_EQ(eth->dst, kGuestMac);
    EXPECT_EQ(eth->src, kCfg.gateway_mac);
    auto arp = parse_arp(eth->payload);
    ASSERT_TRUE(arp);
    EXPECT_EQ(arp->op, arp_op::kReply);
    EXPECT_EQ(arp->sender_mac, kCfg.gateway_mac);
    EXPECT_EQ(arp->sender_ip, target);
    EXPECT_EQ(arp->target_mac, kGuestMac);
    EXPECT_EQ(arp->target_ip, Ipv4Address::of(10, 0, 2, 15));
  }
  send(arp_request(Ipv4Address::of(10, 0, 2, 77)));
  EXPECT_TRUE(take().empty());
  EXPECT_EQ(net.guest_mac(), kGuestMac);
  EXPECT_TRUE(d.moved(net.counters(), {{"frames_from_guest", 3},
                                       {"frames_to_guest", 2},
                                       {"arp_requests", 2},
                                       {"arp_replies_sent", 2},
                                       {"arp_ignored", 1}}));
}

TEST_F(UsernetTest, DiscoverGetsAnOfferWithEveryOption) {
  send(dhcp(dhcp_type::kDiscover));
  auto r = parse_reply(take());
  EXPECT_EQ(r.msg.message_type, dhcp_type::kOffer);
  EXPECT_EQ(r.msg.xid, 0x12345678u);
  EXPECT_EQ(r.msg.yiaddr, kCfg.guest);
  EXPECT_EQ(r.msg.chaddr, kGuestMac);
  EXPECT_EQ(r.ip.src, kCfg.gateway);
  EXPECT_EQ(r.eth.src, kCfg.gateway_mac);
  EXPECT_EQ(u32(r.options[dhcp_option::kServerId]), kCfg.gateway.value);
  EXPECT_EQ(u32(r.options[dhcp_option::kSubnetMask]), 0xffffff00u);
  EXPECT_EQ(u32(r.options[dhcp_option::kRouter]), kCfg.gateway.value);
  EXPECT_EQ(u32(r.options[dhcp_option::kDns]), kCfg.dns.value);
  EXPECT_EQ(u32(r.options[dhcp_option::kLeaseTime]), 86400u);
  EXPECT_EQ(u32(r.options[dhcp_option::kRenewalTime]), 43200u);
  EXPECT_EQ(u32(r.options[dhcp_option::kRebindingTime]), 75600u);
  EXPECT_EQ(load_be<std::uint16_t>(r.options[dhcp_option::kInterfaceMtu].data()), 65520);
  EXPECT_FALSE(net.leased());
}

TEST_F(UsernetTest, RequestForTheGuestAddressIsAckedAndAnotherIsNaked) {
  send(dhcp(dhcp_type::kRequest, {50, 4, 10, 0, 2, 15, 54, 4, 10, 0, 2, 2}));
  auto ack = parse_reply(take());
  EXPECT_EQ(ack.msg.message_type, dhcp_type::kAck);
  EXPECT_EQ(ack.msg.yiaddr, kCfg.guest);
  EXPECT_TRUE(net.leased());

  send(dhcp(dhcp_type::kRequest, {50, 4, 10, 0, 2, 99}));
  auto nak = parse_reply(take());
  EXPECT_EQ(nak.msg.message_type, dhcp_type::kNak);
  EXPECT_EQ(nak.msg.yiaddr, kIpv4Any);
  EXPECT_EQ(nak.ip.dst, kIpv4Broadcast);
  EXPECT_TRUE(nak.eth.dst.is_broadcast());

  // Renewing: the address is in ciaddr and the reply is unicast to it.
  send(dhcp(dhcp_type::kRequest, {}, kCfg.guest));
  auto renew = parse_reply(take());
  EXPECT_EQ(renew.msg.message_type, dhcp_type::kAck);
  EXPECT_EQ(renew.ip.dst, kCfg.guest);
  EXPECT_EQ(renew.eth.dst, kGuestMac);
}

TEST_F(UsernetTest, RequestForAnotherServerReleaseAndInform) {
  test::CounterDelta d(net.counters());
  send(dhcp(dhcp_type::kRequest, {50, 4, 10, 0, 2, 15, 54, 4, 192, 168, 1, 1}));
  EXPECT_TRUE(take().empty());
  send(dhcp(dhcp_type::kRelease, {54, 4, 10, 0, 2, 2}, kCfg.guest));
  EXPECT_TRUE(take().empty());
  send(dhcp(dhcp_type::kInform, {}, kCfg.guest));
  auto inform = parse_reply(take());
  EXPECT_EQ(inform.msg.message_type, dhcp_type::kAck);
  EXPECT_EQ(inform.msg.yiaddr, kIpv4Any);
  EXPECT_EQ(inform.options.count(dhcp_option::kLeaseTime), 0u) << "INFORM gets no lease";
  EXPECT_EQ(u32(inform.options[dhcp_option::kDns]), kCfg.dns.value);
  EXPECT_TRUE(d.moved(net.counters(), {{"frames_from_guest", 3},
                                       {"frames_to_guest", 1},
                                       {"dhcp_requests", 1},
                                       {"dhcp_ignored", 1},
                                       {"dhcp_releases", 1},
                                       {"dhcp_informs", 1},
                                       {"dhcp_acks", 1}}));
}

TEST_F(UsernetTest, DropsAreCountedByReason) {
  test::CounterDelta d(net.counters());
  auto ipv6 = arp_request(kCfg.gateway);
  store_be<std::uint16_t>(ipv6.data() + 12, ethertype::kIpv6);
  send(ipv6);  // IPv6 is off by default
  auto lldp = arp_request(kCfg.gateway);
  store_be<std::uint16_t>(lldp.data() + 12, 0x88cc);
  send(lldp);
  auto other = arp_request(kCfg.gateway);
  other[0] = std::byte{0x02};  // unicast to a MAC that is not the gateway's
  send(other);
  send(std::vector<std::byte>(10));  // runt
  auto bad_ip = dhcp(dhcp_type::kDiscover);
  bad_ip[kEthernetHeaderSize + 10] ^= std::byte{1};  // IPv4 header checksum
  send(bad_ip);
  auto bad_dhcp = dhcp(dhcp_type::kDiscover);
  bad_dhcp[kUdpFrameOverhead + 236] = std::byte{0};  // magic cookie; UDP checksum now wrong too
  send(bad_dhcp);
  send(std::vector<std::byte>(65535 + kEthernetHeaderSize + 1));
  EXPECT_TRUE(take().empty());
  EXPECT_TRUE(d.moved(net.counters(), {{"frames_from_guest", 7},
                                       {"ipv6_disabled", 1},
                                       {"drop_ethertype", 1},
                                       {"drop_not_for_us", 1},
                                       {"drop_malformed", 3},
                                       {"drop_oversize", 1}}));
}

TEST_F(UsernetTest, AFullReplyQueueDropsAndCounts) {
  for (std::size_t i = 0; i < UserNet::kReplyQueueFrames + 3; ++i) send(arp_request(kCfg.gateway));
  EXPECT_EQ(net.counters().drop_queue_full.get(), 3u);
  std::size_t n = 0;
  while (!take().empty()) ++n;
  EXPECT_EQ(n, UserNet::kReplyQueueFrames);
}

TEST(UsernetConfigTest, RefusesAddressesThatDoNotFit) {
  UsernetConfig c;
  c.guest = Ipv4Address::of(10, 0, 3, 15);
  EXPECT_NE(validate(c).error().find("outside"), std::string::npos);
  c = {};
  c.dns = c.guest;
  EXPECT_NE(validate(c).error().find("differ"), std::string::npos);
  c = {};
  c.gateway = Ipv4Address::of(10, 0, 2, 255);
  EXPECT_NE(validate(c).error().find("broadcast"), std::string::npos);
  c = {};
  c.prefix = 31;
  EXPECT_FALSE(validate(c));
  c = {};
  c.mtu = 100;
  EXPECT_FALSE(validate(c));
  EXPECT_TRUE(validate(UsernetConfig{}));
}

}  // namespace
}  // namespace vnk::usernet
