// Several guests on one usernet (serve --guests): DHCP leases one address
// per client MAC from a bounded pool, the neighbour table sends each flow's
// frames to the MAC behind its guest address, and the configuration refuses
// a pool that runs into the gateway, the DNS address or past the network.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <vector>

#include "base/byte_order.hpp"
#include "packet/dhcp.hpp"
#include "packet/headers.hpp"
#include "usernet/guest_neighbors.hpp"
#include "usernet/usernet.hpp"

namespace vnk::usernet {
namespace {

using namespace packet;
using Bytes = std::vector<std::byte>;

const MacAddress kA{{0x52, 0x54, 0, 0, 0, 0x0a}};
const MacAddress kB{{0x52, 0x54, 0, 0, 0, 0x0b}};
const MacAddress kC{{0x52, 0x54, 0, 0, 0, 0x0c}};

UsernetConfig config(unsigned guests) {
  UsernetConfig c;
  c.guests = guests;
  c.dns_upstreams.clear();
  return *validate(c);
}

class UsernetGuestsTest : public ::testing::Test {
 protected:
  void start(unsigned guests) { net = std::make_unique<UserNet>(config(guests)); }
  void send(const Bytes& f) {
    const iovec v{const_cast<std::byte*>(f.data()), f.size()};
    net->transmit(net::TxFrame{net::NetHeader{}, std::span(&v, 1), f.size(),
                               std::span(f).first(std::min(f.size(), net::kTxHeadBytes))});
    net->flush_tx();
  }
  Bytes take() {
    Bytes buf(4096);
    const iovec v{buf.data(), buf.size()};
    const auto r = net->receive(std::span(&v, 1));
    if (r.status != net::RxStatus::frame) return {};
    buf.resize(r.written);
    return buf;
  }
  // A DHCP message from `mac`, with option 50 when `wanted` is set.
  static Bytes dhcp(const MacAddress& mac, std::uint8_t type, std::optional<Ipv4Address> wanted = {}) {
    Bytes d(kDhcpFixedSize);
    d[0] = d[1] = std::byte{1};
    d[2] = std::byte{6};
    store_be<std::uint32_t>(d.data() + 4, 0xabcd0000u | mac.octets[5]);
    mac.store(d.data() + 28);
    store_be<std::uint32_t>(d.data() + 236, 0x63825363);
    for (std::uint8_t x : {std::uint8_t{53}, std::uint8_t{1}, type}) d.push_back(std::byte{x});
    if (wanted) {
      for (std::uint8_t x : {std::uint8_t{50}, std::uint8_t{4}}) d.push_back(std::byte{x});
      for (int s = 24; s >= 0; s -= 8) d.push_back(std::byte(static_cast<std::uint8_t>(wanted->value >> s)));
    }
    d.push_back(std::byte{255});
    Bytes f(kUdpFrameOverhead + d.size());
    std::copy(d.begin(), d.end(), f.begin() + kUdpFrameOverhead);
    write_udp_frame(f, UdpEndpoints{MacAddress::broadcast(), mac, kIpv4Any, 68, kIpv4Broadcast, 67},
                    static_cast<std::uint16_t>(d.size()));
    return f;
  }
  // The reply's message type and yiaddr, or type 0 when there is none.
  std::pair<std::uint8_t, Ipv4Address> reply() {
    const Bytes f = take();
    if (f.empty()) return {0, {}};
    auto eth = parse_ethernet(f);
    auto ip = parse_ipv4(eth->payload);
    auto udp = parse_udp(*ip);
    auto m = parse_dhcp(udp->payload);
    EXPECT_TRUE(m);
    return {m->message_type, m->yiaddr};
  }
  // A lease for `mac`: DISCOVER, then REQUEST for what was offered.
  Ipv4Address lease(const MacAddress& mac) {
    send(dhcp(mac, dhcp_type::kDiscover));
    auto [type, offered] = reply();
    EXPECT_EQ(type, dhcp_type::kOffer);
    send(dhcp(mac, dhcp_type::kRequest, offered));
    auto [ack, bound] = reply();
    EXPECT_EQ(ack, dhcp_type::kAck);
    return bound;
  }
  std::unique_ptr<UserNet> net;
};

TEST_F(UsernetGuestsTest, EachMacGetsItsOwnLeaseUntilThePoolIsFull) {
  start(2);
  EXPECT_EQ(lease(kA), Ipv4Address::of(10, 0, 2, 15));
  EXPECT_EQ(lease(kB), Ipv4Address::of(10, 0, 2, 16));
  EXPECT_EQ(lease(kA), Ipv4Address::of(10, 0, 2, 15));  // renewing keeps it
  // B asking for A's address is refused.
  send(dhcp(kB, dhcp_type::kRequest, Ipv4Address::of(10, 0, 2, 15)));
  EXPECT_EQ(reply().first, dhcp_type::kNak);
  // A third guest finds no address and hears nothing.
  send(dhcp(kC, dhcp_type::kDiscover));
  EXPECT_EQ(reply().first, 0);
  EXPECT_EQ(net->counters().dhcp_pool_exhausted.get(), 1u);
  // A releases: its address goes to the newcomer.
  send(dhcp(kA, dhcp_type::kRelease));
  EXPECT_EQ(lease(kC), Ipv4Address::of(10, 0, 2, 15));
}

TEST_F(UsernetGuestsTest, ANewMacGetsTheFreeAddressItAsksFor) {
  start(4);
  send(dhcp(kA, dhcp_type::kRequest, Ipv4Address::of(10, 0, 2, 17)));  // INIT-REBOOT after a restart
  EXPECT_EQ(reply(), std::make_pair(dhcp_type::kAck, Ipv4Address::of(10, 0, 2, 17)));
  EXPECT_EQ(lease(kB), Ipv4Address::of(10, 0, 2, 15));
  send(dhcp(kC, dhcp_type::kRequest, Ipv4Address::of(10, 0, 2, 99)));  // outside the pool
  EXPECT_EQ(reply().first, dhcp_type::kNak);
}

TEST_F(UsernetGuestsTest, WithOneGuestAnyMacGetsTheGuestAddress) {
  start(1);
  EXPECT_EQ(lease(kA), Ipv4Address::of(10, 0, 2, 15));
  EXPECT_EQ(lease(kB), Ipv4Address::of(10, 0, 2, 15));
  EXPECT_EQ(net->counters().dhcp_pool_exhausted.get(), 0u);
}

TEST_F(UsernetGuestsTest, ReplyFramesGoToTheMacBehindTheFlowsGuestAddress) {
  start(2);
  UniqueFd echo(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(echo.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ::getsockname(echo.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  const std::uint16_t port = ntohs(sa.sin_port);
  const struct {
    MacAddress mac;
    Ipv4Address ip;
  } guests[] = {{kA, Ipv4Address::of(10, 0, 2, 15)}, {kB, Ipv4Address::of(10, 0, 2, 16)}};
  for (const auto& g : guests) {
    Bytes f(kUdpFrameOverhead + 4);
    write_udp_frame(f, UdpEndpoints{UsernetConfig{}.gateway_mac, g.mac, g.ip, 4000, UsernetConfig{}.gateway, port}, 4);
    send(f);
  }
  // The host answers each datagram; the answers come back in any order.
  for (int i = 0; i < 2; ++i) {
    pollfd p{echo.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 2000), 1);
    char buf[16];
    sockaddr_in from{};
    socklen_t fl = sizeof from;
    const ssize_t n = ::recvfrom(echo.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
    ASSERT_EQ(::sendto(echo.get(), buf, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), fl), n);
  }
  int seen = 0;
  for (int tries = 0; tries < 200 && seen < 2; ++tries) {
    pollfd p{net->rx_fd(), POLLIN, 0};
    ::poll(&p, 1, 10);
    const Bytes f = take();
    if (f.empty()) continue;
    auto eth = parse_ethernet(f);
    auto ip = parse_ipv4(eth->payload);
    ASSERT_TRUE(ip);
    for (const auto& g : guests)
      if (ip->dst == g.ip) {
        EXPECT_EQ(eth->dst, g.mac) << g.ip.to_string();
        ++seen;
      }
  }
  EXPECT_EQ(seen, 2);
}

TEST(GuestNeighbors, OneGuestAnswersForEveryAddressSeveralOnlyForTheirOwn) {
  GuestNeighbors n;
  EXPECT_FALSE(n.known());
  n.saw(kA);
  EXPECT_EQ(n.mac_for(Ipv4Address::of(10, 0, 2, 15)), kA);  // one guest: all is its
  n.learn(Ipv4Address::of(10, 0, 2, 16), kB);
  n.learn(Ipv4Address::of(10, 0, 2, 15), kA);
  EXPECT_EQ(n.mac_for(Ipv4Address::of(10, 0, 2, 16)), kB);
  EXPECT_EQ(n.mac_for(Ipv4Address::of(10, 0, 2, 15)), kA);
  EXPECT_EQ(n.mac_for(Ipv4Address::of(10, 0, 2, 99)), GuestNeighbors::kUnknown);  // never guess among several
}

TEST(GuestNeighbors, TheTableIsBoundedAndForgetsTheLeastRecent) {
  GuestNeighbors n;
  n.learn(Ipv4Address::of(10, 0, 2, 15), kA);
  for (std::uint32_t i = 0; i < 2 * GuestNeighbors::kMaxEntries; ++i) {
    n.learn(Ipv4Address{0x0a010000u + i}, kB);
    if (i % 16 == 0) n.learn(Ipv4Address::of(10, 0, 2, 15), kA);  // A keeps speaking
  }
  EXPECT_EQ(n.size(), GuestNeighbors::kMaxEntries);
  EXPECT_EQ(n.mac_for(Ipv4Address::of(10, 0, 2, 15)), kA);
  EXPECT_EQ(n.mac_for(Ipv4Address{0x0a010000u}), GuestNeighbors::kUnknown);
}

TEST(UsernetGuestsConfig, ThePoolMustFitTheNetwork) {
  UsernetConfig c;
  c.guests = 0;
  EXPECT_FALSE(validate(c));
  c.guests = UsernetConfig::kMaxGuests + 1;
  EXPECT_FALSE(validate(c));
  c.guests = 10;
  c.guest = Ipv4Address::of(10, 0, 2, 250);  // .250 .. .259 runs past the broadcast address
  EXPECT_FALSE(validate(c));
  c.guest = Ipv4Address::of(10, 0, 2, 1);  // .1, then the gateway
  c.guests = 2;
  EXPECT_FALSE(validate(c));
  c.guest = Ipv4Address::of(10, 0, 2, 15);
  c.guests = UsernetConfig::kMaxGuests;
  EXPECT_TRUE(validate(c));
}

}  // namespace
}  // namespace vnk::usernet
