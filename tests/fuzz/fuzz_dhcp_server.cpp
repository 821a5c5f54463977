// libFuzzer target: the DHCP server against crafted client messages. Each
// input is one DHCP payload (the UDP datagram's data): it is parsed, the
// server answers into a buffer whose size the first byte picks (so a reply
// that does not fit is exercised), and every reply must parse back as an
// Ethernet/IPv4/UDP frame carrying a DHCP message. The message goes to a
// one-guest server and to a four-guest one (the lease pool), then again
// from other client MACs and later in time, so offers, leases, expiry and a
// full pool are reached; a yiaddr outside the pool is a bug.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/log.hpp"
#include "packet/dhcp.hpp"
#include "packet/headers.hpp"
#include "usernet/dhcp_server.hpp"
#include "usernet/usernet_config.hpp"
#include "usernet/usernet_counters.hpp"

using namespace vnk;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  log::set_level(log::Level::error);
  static const usernet::UsernetConfig cfg = [] {
    usernet::UsernetConfig c;
    c.hostname = "guest";
    c.domain = "vnetkit.test";
    return *usernet::validate(c);
  }();
  if (size < 1) return 0;
  std::vector<std::byte> in(size - 1);
  std::transform(data + 1, data + size, in.begin(), [](std::uint8_t b) { return std::byte{b}; });
  auto msg = packet::parse_dhcp(in);
  if (!msg) return 0;
  std::vector<std::byte> out(64 + data[0] * 4u);
  const auto check = [&](std::size_t n, unsigned guests) {
    if (n == 0) return;
    if (n > out.size()) __builtin_trap();
    auto eth = packet::parse_ethernet(std::span(out).first(n));
    if (!eth) __builtin_trap();
    auto ip = packet::parse_ipv4(eth->payload);
    if (!ip) __builtin_trap();
    auto udp = packet::parse_udp(*ip);
    if (!udp) __builtin_trap();
    auto reply = packet::parse_dhcp(udp->payload);
    if (!reply) __builtin_trap();
    const std::uint32_t index = reply->yiaddr.value - cfg.guest.value;
    if (reply->yiaddr != packet::kIpv4Any && index >= guests) __builtin_trap();
  };
  for (unsigned guests : {1u, 4u}) {
    usernet::UsernetConfig c = cfg;
    c.guests = guests;
    usernet::UsernetCounters counters;
    usernet::DhcpServer server(c, counters);
    std::uint64_t now = 0;
    for (std::uint8_t i = 0; i < 6; ++i) {
      packet::DhcpMessage m = *msg;
      m.chaddr.octets[5] = static_cast<std::uint8_t>(m.chaddr.octets[5] + i % 5);  // five clients for four places
      check(server.handle(m, now, out), guests);
      now += i == 3 ? usernet::DhcpServer::kOfferMs : 1;  // offers run out once
    }
  }
  return 0;
}
