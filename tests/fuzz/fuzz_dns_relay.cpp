// libFuzzer target: DNS relaying — guest queries to the DNS address, relayed
// through a host UDP socket to a resolver on 127.0.0.1 that this target
// plays, and the resolver's answers (hostile: any bytes, any length,
// unsolicited, from the wrong port) relayed back.
//
// Oracle: the resolver receives each query's bytes unchanged, from one host
// socket per guest port; every frame usernet builds for the guest parses
// with a valid UDP checksum, comes from DNS-address:53 to a guest port that
// asked, and carries exactly an answer the resolver sent to that flow.
//
// Input: operations {op, a, b, len, bytes[len]}.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <vector>

#include "base/log.hpp"
#include "base/unique_fd.hpp"
#include "packet/headers.hpp"
#include "usernet/usernet.hpp"

using namespace vnk;
using namespace vnk::packet;

namespace {

const MacAddress kGuestMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
constexpr Ipv4Address kGuest = Ipv4Address::of(10, 0, 2, 15);
using Bytes = std::vector<std::byte>;

[[noreturn]] void finding() { __builtin_trap(); }

struct Resolver {
  UniqueFd fd;
  std::uint16_t port = 0;
  Resolver() {
    fd.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) finding();
    socklen_t len = sizeof sa;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port = ntohs(sa.sin_port);
  }
  void drain() {
    std::byte buf[65536];
    while (::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT) >= 0) {
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  log::set_level(log::Level::error);
  static Resolver resolver;
  static const usernet::UsernetConfig cfg = [] {
    usernet::UsernetConfig c;
    c.host_only = true;
    c.dns_upstreams.push_back({Ipv4Address::of(127, 0, 0, 1), resolver.port});
    return *usernet::validate(c);
  }();
  resolver.drain();
  usernet::UserNet net(cfg);

  std::map<std::uint16_t, std::vector<Bytes>> queries;  // guest port -> queries not yet seen by the resolver
  std::map<std::uint16_t, sockaddr_in> flows;           // guest port -> the host socket's address the resolver saw
  std::map<std::uint16_t, std::vector<Bytes>> answers;  // guest port -> answers sent to it
  std::byte rx[65600];

  auto receive_queries = [&] {
    std::byte buf[65536];
    for (;;) {
      sockaddr_in from{};
      socklen_t flen = sizeof from;
      const ssize_t n = ::recvfrom(resolver.fd.get(), buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n < 0) return;
      const Bytes got(buf, buf + n);
      if (got.size() < 2) finding();
      const auto port = static_cast<std::uint16_t>((std::to_integer<unsigned>(got[0]) << 8) | std::to_integer<unsigned>(got[1]));
      // Queries may be dropped (never altered or reordered within a flow).
      auto& pending = queries[port];
      auto hit = std::find(pending.begin(), pending.end(), got);
      if (hit == pending.end()) finding();  // altered, or never sent
      pending.erase(pending.begin(), hit + 1);
      auto it = flows.find(port);
      if (it != flows.end() && it->second.sin_port != from.sin_port) {
        // A new host socket for this guest port: only after the old flow ended.
        answers[port].clear();
      }
      flows[port] = from;
    }
  };

  std::size_t pos = 0;
  while (pos + 4 <= size) {
    const std::uint8_t op = data[pos], a = data[pos + 1], b = data[pos + 2];
    const std::size_t len = std::min<std::size_t>(data[pos + 3] * 4u + (a & 3), size - pos - 4);
    const std::uint16_t guest_port = static_cast<std::uint16_t>(1024 + (a % 8));
    // A query starts with its guest port, so the resolver can tell whose it is.
    Bytes body{std::byte(guest_port >> 8), std::byte(guest_port & 0xff)};
    body.insert(body.end(), reinterpret_cast<const std::byte*>(data + pos + 4),
                reinterpret_cast<const std::byte*>(data + pos + 4 + len));
    pos += 4 + len;
    switch (op % 4) {
      case 0: {  // a guest query (to port 53, or rarely elsewhere on the DNS address)
        const std::uint16_t dport = (b & 7) == 7 ? b : 53;
        Bytes f(kUdpFrameOverhead + body.size());
        std::copy(body.begin(), body.end(), f.begin() + kUdpFrameOverhead);
        write_udp_frame(f, UdpEndpoints{cfg.gateway_mac, kGuestMac, kGuest, guest_port, cfg.dns, dport},
                        static_cast<std::uint16_t>(body.size()));
        const iovec iov{f.data(), f.size()};
        const net::NetHeader hdr{};
        (void)net.transmit(net::TxFrame{hdr, std::span(&iov, 1), f.size(),
                                        std::span<const std::byte>(f).first(std::min(f.size(), net::kTxHeadBytes))});
        net.flush_tx();
        if (dport == 53) queries[guest_port].push_back(body);
        break;
      }
      case 1: {  // the resolver answers a flow it has seen (or, odd b, from another socket)
        receive_queries();
        auto it = flows.find(guest_port);
        if (it == flows.end()) break;
        if (b & 1) {
          UniqueFd other(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
          (void)::sendto(other.get(), body.data(), body.size(), 0, reinterpret_cast<const sockaddr*>(&it->second), sizeof it->second);
        } else if (::sendto(resolver.fd.get(), body.data(), body.size(), 0, reinterpret_cast<const sockaddr*>(&it->second),
                            sizeof it->second) == static_cast<ssize_t>(body.size())) {
          answers[guest_port].push_back(body);
        }
        break;
      }
      case 2: receive_queries(); break;
      case 3: {  // read what usernet has for the guest, into a buffer of fuzzed size
        const std::size_t cap = std::min<std::size_t>(sizeof rx, 14 + static_cast<std::size_t>(b) * 256 + a);
        for (int budget = 0; budget < 64; ++budget) {
          const iovec iov{rx, cap};
          const auto r = net.receive(std::span(&iov, 1));
          if (r.status != net::RxStatus::frame) break;
          if (r.written > cap || r.written > r.frame_len) finding();
          if (r.written != r.frame_len) continue;  // truncated: nothing more to check
          auto eth = parse_ethernet(std::span<const std::byte>(rx, r.written));
          if (!eth) finding();
          if (eth->type != ethertype::kIpv4) continue;
          auto ip = parse_ipv4(eth->payload);
          if (!ip) finding();
          if (ip->protocol != ip_proto::kUdp) continue;  // ICMP unreachable for a closed port
          auto udp = parse_udp(*ip);
          if (!udp) finding();  // checksum or length
          if (ip->src != cfg.dns || udp->src_port != 53) finding();
          auto& sent = answers[udp->dst_port];
          const Bytes got(udp->payload.begin(), udp->payload.end());
          auto hit = std::find(sent.begin(), sent.end(), got);
          if (hit == sent.end()) finding();  // an answer nobody sent, or altered
          sent.erase(hit);
        }
        break;
      }
    }
  }
  return 0;
}
