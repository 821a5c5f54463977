// The reachability policy, row by row as the README's table has it: where
// each kind of destination a guest names goes on the host, and which option
// changes it.
#include <arpa/inet.h>

#include <gtest/gtest.h>

#include "packet/headers.hpp"
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

std::string where(const UsernetConfig& cfg, std::uint8_t proto, Ipv4Address dst, std::uint16_t port) {
  auto r = host_destination(cfg, proto, dst, port);
  if (!r) return r.error() == RouteRefusal::link_local ? "refused:link-local" : "nowhere";
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &r->sin_addr, text, sizeof text);
  return std::string(text) + ":" + std::to_string(ntohs(r->sin_port));
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

}  // namespace
}  // namespace vnk::usernet
