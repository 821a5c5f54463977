// libFuzzer target: a hostile guest's frames against usernet and the packet
// parsers (Ethernet, ARP, IPv4 and the reassembly of its fragments, UDP,
// TCP, ICMP, DHCP, IPv6 with its extension headers and fragments, ICMPv6,
// Neighbor Discovery, DHCPv6, and UDP, TCP and echo over IPv6) and the metadata service in front of it (its TCP responder and
// HTTP parsing).
//
// usernet runs host-only with no DNS upstream, so whatever the fuzzer sends
// can reach nothing but 127.0.0.1 (the gateway address): connects, datagrams
// and pings to loopback ports only.
//
// Input: frames, each {u16 little-endian length, bytes}. Each frame goes
// through UserNet::transmit, then every queued reply is received into a
// buffer whose size the input's first byte picks (so truncated delivery is
// exercised), and each reply must parse back as Ethernet. An odd first byte
// runs usernet as on an old, locked-down host: no TCP SO_PEEK_OFF, no ping
// sockets (raw ICMP where this process may), and room for only 4 flows'
// sockets, so the fallbacks and the refusals (RST, ICMP unreachable) are
// fuzzed too.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/log.hpp"
#include "packet/dhcp.hpp"
#include "packet/headers.hpp"
#include "packet/icmp.hpp"
#include "packet/icmpv6.hpp"
#include "packet/ipv6.hpp"
#include "packet/tcp.hpp"
#include "mmds/http_request.hpp"
#include "mmds/mmds_interceptor.hpp"
#include "usernet/usernet.hpp"

using namespace vnk;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  log::set_level(log::Level::error);
  static const usernet::UsernetConfig plain = [] {
    usernet::UsernetConfig c;
    c.host_only = true;
    c.ipv6.enabled = true;
    return *usernet::validate(c);
  }();
  static const usernet::UsernetConfig old_host = [] {
    usernet::UsernetConfig c = plain;
    HostFeatures h = host_features();
    h.tcp_peek_off_v4 = h.tcp_peek_off_v6 = false;
    h.ping_sockets_v4 = h.ping_sockets_v6 = false;
    c.host = h;
    c.flow_fds = 4;
    return c;
  }();
  const usernet::UsernetConfig& cfg = size > 0 && (data[0] & 1) != 0 ? old_host : plain;
  usernet::UserNet net(cfg);
  // The metadata service sits in front, as in `vnetkit serve --mmds`.
  static const nlohmann::json doc = nlohmann::json::parse(R"({"a": {"b": "c"}, "n": [1, 2]})");
  mmds::MmdsInterceptor meta(mmds::MetadataStore(doc, false), cfg.gateway_mac);
  const std::size_t rx_size = size > 0 ? 14 + data[0] * 8u : 64;
  std::vector<std::byte> rx(rx_size);
  std::size_t pos = 1;
  while (pos + 2 <= size) {
    const std::size_t len = std::min<std::size_t>(data[pos] | (data[pos + 1] << 8), size - pos - 2);
    pos += 2;
    std::vector<std::byte> frame(len);
    std::transform(data + pos, data + pos + len, frame.begin(), [](std::uint8_t b) { return std::byte{b}; });
    pos += len;

    // The parsers on their own, at every layer the frame claims.
    if (auto eth = packet::parse_ethernet(frame)) {
      (void)packet::parse_arp(eth->payload);
      if (auto ip = packet::parse_ipv4(eth->payload)) {
        if (auto udp = packet::parse_udp(*ip)) (void)packet::parse_dhcp(udp->payload);
        (void)packet::parse_tcp(*ip);
        (void)packet::parse_icmp_echo(*ip);
        mmds::HttpRequest req;
        (void)mmds::parse_http_request(
            std::string_view(reinterpret_cast<const char*>(ip->payload.data()), ip->payload.size()), req);
      }
      if (auto ip6 = packet::parse_ipv6(eth->payload)) {
        if (auto m = packet::parse_icmpv6(*ip6)) {
          (void)packet::parse_router_solicitation(*ip6, *m);
          (void)packet::parse_neighbor_solicitation(*ip6, *m);
        }
      }
    }

    const iovec iov{frame.data(), frame.size()};
    const net::NetHeader hdr{};
    const net::TxFrame tx{hdr, std::span(&iov, 1), frame.size(),
                          std::span<const std::byte>(frame).first(std::min(frame.size(), net::kTxHeadBytes))};
    if (!meta.intercept_tx(tx)) (void)net.transmit(tx);
    // Held datagrams go out at the end of a TX batch: here after frames of
    // odd length, so runs of datagrams are batched too.
    if (frame.size() % 2 == 1) net.flush_tx();
    for (int budget = 0; budget < 256; ++budget) {
      const iovec out{rx.data(), rx.size()};
      auto r = meta.rx_pending() ? meta.receive(std::span(&out, 1)) : net.receive(std::span(&out, 1));
      if (r.status == net::RxStatus::empty) break;
      if (r.status != net::RxStatus::frame || r.written > rx.size() || r.frame_len < r.written) __builtin_trap();
      const auto eth = packet::parse_ethernet(std::span(rx).first(r.written));
      if (r.written >= packet::kEthernetHeaderSize && !eth) __builtin_trap();
      // Every whole IPv4 frame usernet builds has a valid header and checksum.
      if (eth && r.written == r.frame_len && eth->type == packet::ethertype::kIpv4 && !packet::parse_ipv4(eth->payload))
        __builtin_trap();
    }
  }
  return 0;
}
