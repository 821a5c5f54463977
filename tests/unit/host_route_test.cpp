// The reachability policy, row by row as the README's table has it: where
// each kind of destination a guest names goes on the host, and which option
// changes it.
#include <arpa/inet.h>

#include <gtest/gtest.h>

#include "packet/headers.hpp"
#include "packet/ipv6.hpp"
#include "usernet/host_route.hpp"

namespace vnk::usernet {
namespace {

using packet::ip_proto::kIcmp;
using packet::ip_proto::kTcp;
using packet::ip_proto::kUdp;

UsernetConfig config() {
  UsernetConfig c;
  c.dns_upstreams = {{Ipv4Address::of(192, 0, 2, 53), 5353}};
  return c;
}

std::string where(const UsernetConfig& cfg, std::uint8_t proto, const packet::IpAddress& dst, std::uint16_t port) {
  auto r = host_destination(cfg, proto, dst, port);
  if (!r) return r.error() == RouteRefusal::link_local ? "refused:link-local" : "nowhere";
  return r->to_string();
}

TEST(HostRouteTest, TheGatewayIsTheHostsLoopbackUnlessNoMapGw) {
  UsernetConfig c = config();
  EXPECT_EQ(where(c, kTcp, c.gateway, 8080), "127.0.0.1:8080");
  EXPECT_EQ(where(c, kIcmp, c.gateway, 0), "127.0.0.1:0");
  c.map_gateway_to_loopback = false;
  EXPECT_EQ(where(c, kTcp, c.gateway, 8080), "nowhere");
}

TEST(HostRouteTest, TheDnsAddressIsTheResolverOnPort53AndAnswersPing) {
  UsernetConfig c = config();
  EXPECT_EQ(where(c, kUdp, c.dns, 53), "192.0.2.53:5353");
  EXPECT_EQ(where(c, kTcp, c.dns, 53), "192.0.2.53:5353");
  EXPECT_EQ(where(c, kUdp, c.dns, 54), "nowhere");
  EXPECT_EQ(where(c, kIcmp, c.dns, 0), "127.0.0.1:0");
  c.dns_upstreams.clear();
  EXPECT_EQ(where(c, kUdp, c.dns, 53), "nowhere");
}

TEST(HostRouteTest, TheGuestsOwnNetworkLoopbackMulticastAndReservedGoNowhere) {
  const UsernetConfig c = config();
  EXPECT_EQ(where(c, kTcp, Ipv4Address::of(10, 0, 2, 99), 80), "nowhere");
  EXPECT_EQ(where(c, kUdp, Ipv4Address::of(0, 1, 2, 3), 80), "nowhere");
  EXPECT_EQ(where(c, kTcp, Ipv4Address::of(127, 0, 0, 1), 80), "nowhere");
  EXPECT_EQ(where(c, kUdp, Ipv4Address::of(224, 0, 0, 251), 5353), "nowhere");
  EXPECT_EQ(where(c, kUdp, Ipv4Address::of(240, 0, 0, 1), 80), "nowhere");
  EXPECT_EQ(where(c, kUdp, Ipv4Address::of(255, 255, 255, 255), 67), "nowhere");
}

TEST(HostRouteTest, LinkLocalIsRefusedUnlessAllowed) {
  UsernetConfig c = config();
  EXPECT_EQ(where(c, kTcp, Ipv4Address::of(169, 254, 169, 254), 80), "refused:link-local");  // EC2, GCP, Azure
  EXPECT_EQ(where(c, kTcp, Ipv4Address::of(169, 254, 170, 2), 80), "refused:link-local");    // ECS credentials
  EXPECT_EQ(where(c, kIcmp, Ipv4Address::of(169, 254, 0, 1), 0), "refused:link-local");
  c.allow_link_local = true;
  EXPECT_EQ(where(c, kTcp, Ipv4Address::of(169, 254, 169, 254), 80), "169.254.169.254:80");
}

TEST(HostRouteTest, OtherAddressesAreThemselvesUnlessHostOnly) {
  UsernetConfig c = config();
  EXPECT_EQ(where(c, kTcp, Ipv4Address::of(198, 51, 100, 7), 443), "198.51.100.7:443");
  EXPECT_EQ(where(c, kUdp, Ipv4Address::of(10, 0, 3, 1), 53), "10.0.3.1:53");  // outside the guest's /24
  c.host_only = true;
  EXPECT_EQ(where(c, kTcp, Ipv4Address::of(198, 51, 100, 7), 443), "nowhere");
  EXPECT_EQ(where(c, kTcp, c.gateway, 22), "127.0.0.1:22");
  EXPECT_EQ(where(c, kUdp, c.dns, 53), "192.0.2.53:5353");
}

// The IPv6 rows: the same table, with the gateway's and DNS address's IPv6
// counterparts and the addresses only IPv6 has.
packet::IpAddress v6(const char* text) { return *packet::IpAddress::parse(text); }
using packet::ip_proto::kIcmpv6;

TEST(HostRouteTest, TheIpv6GatewayIsTheHostsIpv6LoopbackAndTheDnsAddressTheResolver) {
  UsernetConfig c = config();
  EXPECT_EQ(where(c, kTcp, v6("fd00::2"), 8080), "[::1]:8080");
  EXPECT_EQ(where(c, kIcmpv6, v6("fd00::2"), 0), "[::1]:0");
  EXPECT_EQ(where(c, kUdp, v6("fd00::3"), 53), "192.0.2.53:5353") << "the resolver's family";
  EXPECT_EQ(where(c, kIcmpv6, v6("fd00::3"), 0), "[::1]:0");
  EXPECT_EQ(where(c, kUdp, v6("fd00::3"), 54), "nowhere");
  c.dns_upstreams = {{v6("2001:db8::53"), 53}};
  EXPECT_EQ(where(c, kUdp, Ipv4Address::of(10, 0, 2, 3), 53), "[2001:db8::53]:53");
  c.map_gateway_to_loopback = false;
  EXPECT_EQ(where(c, kTcp, v6("fd00::2"), 8080), "nowhere");
}

TEST(HostRouteTest, Ipv6AddressesThatMustNotLeaveGoNowhere) {
  const UsernetConfig c = config();
  for (const char* a : {"fd00::99", "::", "::1", "::10.0.0.1", "ff02::1", "ff05::1:3", "::ffff:127.0.0.1"})
    EXPECT_EQ(where(c, kUdp, v6(a), 53), "nowhere") << a;
  // IPv4-mapped is IPv4 in an IpAddress: the IPv4 rules hold.
  EXPECT_EQ(where(c, kUdp, v6("::ffff:169.254.169.254"), 80), "refused:link-local");
}

TEST(HostRouteTest, Ipv6LinkLocalAndMetadataAreRefusedUnlessAllowed) {
  UsernetConfig c = config();
  EXPECT_EQ(where(c, kTcp, v6("fe80::1"), 80), "refused:link-local");
  EXPECT_EQ(where(c, kTcp, v6("fd00:ec2::254"), 80), "refused:link-local");     // EC2's IPv6 metadata service
  EXPECT_EQ(where(c, kTcp, v6("64:ff9b::a9fe:a9fe"), 80), "refused:link-local");  // 169.254.169.254 through NAT64
  EXPECT_EQ(where(c, kTcp, v6("64:ff9b::c633:6407"), 80), "[64:ff9b::c633:6407]:80");
  EXPECT_EQ(where(c, kTcp, v6("2001:db8::7"), 443), "[2001:db8::7]:443");
  c.allow_link_local = true;
  EXPECT_EQ(where(c, kTcp, v6("fd00:ec2::254"), 80), "[fd00:ec2::254]:80");
  c.host_only = true;
  EXPECT_EQ(where(c, kTcp, v6("2001:db8::7"), 443), "nowhere");
  EXPECT_EQ(where(c, kTcp, v6("fd00::2"), 22), "[::1]:22");
}

}  // namespace
}  // namespace vnk::usernet
