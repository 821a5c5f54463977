// usernet over IPv6, driven by a test "guest" that speaks Ethernet and IPv6
// against real sockets on the host's ::1 (and 127.0.0.1 for the resolver):
// UDP and TCP to the gateway's IPv6 address, DNS to the DNS address's IPv6
// counterpart relayed to an IPv4 resolver, ICMPv6 echo through an IPv6
// ping socket, host datagrams larger than the MTU in IPv6 fragments, and
// the IPv6 rows of the reachability policy. Every checksum the guest gets
// is verified over the IPv6 pseudo-header.
//
// TCP runs twice: with this kernel's SO_PEEK_OFF and as on a kernel
// without it, so both paths carry IPv6.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "base/byte_order.hpp"
#include "base/unique_fd.hpp"
#include "counter_delta.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "packet/icmpv6.hpp"
#include "packet/ipv6.hpp"
#include "packet/tcp.hpp"
#include "usernet/usernet.hpp"

namespace vnk::usernet {
namespace {

using namespace packet;
using Bytes = std::vector<std::byte>;

const MacAddress kGuestMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x06}};
const Ipv6Address kGuest6 = *Ipv6Address::parse("fd00::5054:ff:fe12:3456");
const Ipv6Address kGateway6 = *Ipv6Address::parse("fd00::2");
const Ipv6Address kDns6 = *Ipv6Address::parse("fd00::3");

Bytes bytes_of(std::string_view s) {
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}
std::string string_of(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

// A socket bound to `address` (::1 or 127.0.0.1) with a kernel-chosen port.
UniqueFd bound_socket(const IpAddress& address, int type, std::uint16_t& port) {
  const SocketAddress want(address, 0);
  UniqueFd s(::socket(want.family(), type | SOCK_CLOEXEC, 0));
  EXPECT_EQ(::bind(s.get(), want.get(), want.length()), 0) << std::strerror(errno);
  SocketAddress got;
  socklen_t len = SocketAddress::capacity();
  ::getsockname(s.get(), got.buffer(), &len);
  port = got.port();
  if (type == SOCK_STREAM) ::listen(s.get(), 8);
  return s;
}
const IpAddress kHostLoopback6 = *IpAddress::parse("::1");

// A frame for the guest, parsed; every checksum verified.
struct Seen {
  Ipv6 ip;
  Bytes frame;
  std::optional<Tcp> tcp;
  std::optional<Udp> udp;
  std::optional<Icmpv6> icmp;
  Bytes payload;
};

class UsernetIpv6Test : public ::testing::TestWithParam<bool> {
 protected:
  void start(UsernetConfig cfg = {}) {
    cfg.ipv6.enabled = true;
    HostFeatures host = host_features();
    host.tcp_peek_off_v6 = host.tcp_peek_off_v6 && GetParam();
    cfg.host = host;
    net = std::make_unique<UserNet>(*validate(cfg));
  }

  void send(const Bytes& frame) {
    const iovec iov{const_cast<std::byte*>(frame.data()), frame.size()};
    net->transmit(net::TxFrame{net::NetHeader{}, std::span(&iov, 1), frame.size(),
                               std::span(frame).first(std::min(frame.size(), net::kTxHeadBytes))});
    net->flush_tx();
  }

  // Ethernet + IPv6 from the guest around an upper-layer message `l4`
  // whose checksum field at `csum_at` (if any) gets the pseudo-header sum.
  Bytes ipv6_frame(std::uint8_t proto, const Ipv6Address& dst, Bytes l4, std::optional<std::size_t> csum_at,
                   const Ipv6Address& src = kGuest6) {
    if (csum_at) {
      store_be<std::uint16_t>(l4.data() + *csum_at, 0);
      Checksum c;
      add_ipv6_pseudo_header(c, src, dst, proto, static_cast<std::uint32_t>(l4.size()));
      c.add(l4);
      store_be<std::uint16_t>(l4.data() + *csum_at, c.finish());
    }
    Bytes f(kEthernetHeaderSize + kIpv6HeaderSize + l4.size());
    write_ethernet(f, UsernetConfig{}.gateway_mac, kGuestMac, ethertype::kIpv6);
    write_ipv6(std::span(f).subspan(kEthernetHeaderSize),
               Ipv6Fields{src, dst, proto, static_cast<std::uint16_t>(l4.size()), 64, 0});
    std::copy(l4.begin(), l4.end(), f.begin() + kEthernetHeaderSize + kIpv6HeaderSize);
    return f;
  }

  Bytes udp(const Ipv6Address& dst, std::uint16_t sport, std::uint16_t dport, const Bytes& payload) {
    Bytes l4(kUdpHeaderSize + payload.size());
    store_be<std::uint16_t>(l4.data(), sport);
    store_be<std::uint16_t>(l4.data() + 2, dport);
    store_be<std::uint16_t>(l4.data() + 4, static_cast<std::uint16_t>(l4.size()));
    std::copy(payload.begin(), payload.end(), l4.begin() + kUdpHeaderSize);
    return ipv6_frame(ip_proto::kUdp, dst, l4, 6);
  }

  Bytes tcp(const Ipv6Address& dst, std::uint16_t dport, std::uint32_t seq, std::uint32_t ack, std::uint8_t flags,
            const Bytes& payload = {}, std::optional<std::uint16_t> mss = {}) {
    TcpFields t{kGuestPort, dport, seq, ack, flags, 0xffff, mss, {}, false, {}};
    Bytes seg(tcp_header_size(t) + payload.size());
    write_tcp(seg, t);
    std::copy(payload.begin(), payload.end(), seg.begin() + static_cast<std::ptrdiff_t>(tcp_header_size(t)));
    return ipv6_frame(ip_proto::kTcp, dst, seg, 16);
  }

  Bytes echo_request(const Ipv6Address& dst, std::uint16_t id, std::uint16_t seq, std::string_view data) {
    Bytes m(8 + data.size());
    m[0] = std::byte{icmpv6_type::kEchoRequest};
    store_be<std::uint16_t>(m.data() + 4, id);
    store_be<std::uint16_t>(m.data() + 6, seq);
    std::memcpy(m.data() + 8, data.data(), data.size());
    return ipv6_frame(ip_proto::kIcmpv6, dst, m, 2);
  }

  // The next frame for the guest within `timeout_ms`, as raw bytes.
  Bytes next_raw(int timeout_ms = 2000) {
    for (int waited = 0;; waited += 10) {
      Bytes b(65600);
      const iovec iov{b.data(), b.size()};
      auto r = net->receive(std::span(&iov, 1));
      if (r.status == net::RxStatus::frame) {
        b.resize(r.written);
        return b;
      }
      if (waited >= timeout_ms) return {};
      readable(net->rx_fd(), 10);
    }
  }

  // The next frame, parsed and checked (an IPv6 frame to the guest).
  std::optional<Seen> next(int timeout_ms = 2000) {
    Bytes b = next_raw(timeout_ms);
    if (b.empty()) return std::nullopt;
    Seen s;
    s.frame = std::move(b);
    auto eth = parse_ethernet(s.frame);
    EXPECT_TRUE(eth && eth->type == ethertype::kIpv6);
    EXPECT_EQ(eth->dst, kGuestMac);
    auto ip = parse_ipv6(eth->payload);
    EXPECT_TRUE(ip) << "IPv6 header";
    if (!ip) return s;
    s.ip = *ip;
    if (ip->protocol == ip_proto::kTcp) {
      Checksum sum;
      add_ipv6_pseudo_header(sum, ip->src, ip->dst, ip_proto::kTcp, ip->payload_len);
      sum.add(ip->payload);
      EXPECT_EQ(sum.finish(), 0) << "TCP checksum";
      s.tcp = *parse_tcp(ip_packet(*ip));
      s.payload.assign(ip->payload.begin() + s.tcp->header_len, ip->payload.end());
    } else if (ip->protocol == ip_proto::kUdp) {
      auto u = parse_udp(ip_packet(*ip));
      EXPECT_TRUE(u) << "UDP checksum";
      if (u) {
        s.udp = *u;
        s.payload.assign(u->payload.begin(), u->payload.end());
      }
    } else if (ip->protocol == ip_proto::kIcmpv6) {
      auto m = parse_icmpv6(*ip);
      EXPECT_TRUE(m) << "ICMPv6 checksum";
      if (m) s.icmp = *m;
    }
    return s;
  }

  static constexpr std::uint16_t kGuestPort = 41000;
  static constexpr std::uint32_t kIsn = 5000;
  std::unique_ptr<UserNet> net;
};

TEST_P(UsernetIpv6Test, UdpToTheGatewayReachesTheHostsIpv6LoopbackAndTheReplyComesBack) {
  start();
  std::uint16_t port = 0;
  UniqueFd peer = bound_socket(kHostLoopback6, SOCK_DGRAM, port);
  test::CounterDelta d(net->counters());
  send(udp(kGateway6, 5555, port, bytes_of("ping over udp6")));
  ASSERT_TRUE(readable(peer.get(), 2000));
  char buf[64];
  SocketAddress from;
  socklen_t fl = SocketAddress::capacity();
  const ssize_t n = ::recvfrom(peer.get(), buf, sizeof buf, 0, from.buffer(), &fl);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "ping over udp6");
  EXPECT_EQ(from.family(), AF_INET6);
  ASSERT_EQ(::sendto(peer.get(), "pong", 4, 0, from.get(), fl), 4);
  auto r = next();
  ASSERT_TRUE(r && r->udp);
  EXPECT_EQ(r->ip.src, kGateway6);
  EXPECT_EQ(r->ip.dst, kGuest6);
  EXPECT_EQ(r->udp->src_port, port);
  EXPECT_EQ(r->udp->dst_port, 5555);
  EXPECT_EQ(string_of(r->payload), "pong");
  EXPECT_TRUE(d.moved(net->counters(), {{"frames_from_guest", 1}, {"frames_to_guest", 1}, {"ipv6_packets", 1},
                                        {"ipv6_flows_opened", 1}, {"udp_flows_opened", 1}, {"udp_datagrams_out", 1},
                                        {"udp_datagrams_in", 1}}));
}

TEST_P(UsernetIpv6Test, UdpWithoutAChecksumIsRefusedOverIpv6) {
  start();
  Bytes f = udp(kGateway6, 5555, 9, bytes_of("x"));
  store_be<std::uint16_t>(f.data() + kEthernetHeaderSize + kIpv6HeaderSize + 6, 0);  // "no checksum": IPv4 only
  test::CounterDelta d(net->counters());
  send(f);
  EXPECT_TRUE(d.moved(net->counters(), {{"frames_from_guest", 1}, {"ipv6_packets", 1}, {"drop_malformed", 1}}));
  EXPECT_EQ(net->datagram_flows(), 0u);
}

TEST_P(UsernetIpv6Test, DnsToTheIpv6DnsAddressReachesAnIpv4Resolver) {
  std::uint16_t port = 0;
  UniqueFd resolver = bound_socket(IpAddress(Ipv4Address::of(127, 0, 0, 1)), SOCK_DGRAM, port);
  UsernetConfig cfg;
  cfg.dns_upstreams = {{Ipv4Address::of(127, 0, 0, 1), port}};
  start(cfg);
  send(udp(kDns6, 5353, 53, bytes_of("query")));
  ASSERT_TRUE(readable(resolver.get(), 2000));
  char buf[64];
  SocketAddress from;
  socklen_t fl = SocketAddress::capacity();
  const ssize_t n = ::recvfrom(resolver.get(), buf, sizeof buf, 0, from.buffer(), &fl);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "query");
  EXPECT_EQ(from.family(), AF_INET) << "the resolver's family, not the guest's";
  ASSERT_EQ(::sendto(resolver.get(), "answer", 6, 0, from.get(), fl), 6);
  auto r = next();
  ASSERT_TRUE(r && r->udp);
  EXPECT_EQ(r->ip.src, kDns6);
  EXPECT_EQ(r->udp->src_port, 53);
  EXPECT_EQ(string_of(r->payload), "answer");
}

TEST_P(UsernetIpv6Test, TcpOverIpv6CarriesDataBothWaysAndCloses) {
  start();
  std::uint16_t port = 0;
  UniqueFd listener = bound_socket(kHostLoopback6, SOCK_STREAM, port);
  send(tcp(kGateway6, port, kIsn, 0, tcp_flag::kSyn, {}, 1400));
  ASSERT_TRUE(readable(listener.get(), 2000));
  UniqueFd host(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  auto synack = next();
  ASSERT_TRUE(synack && synack->tcp);
  EXPECT_EQ(synack->tcp->flags, tcp_flag::kSyn | tcp_flag::kAck);
  EXPECT_EQ(synack->ip.src, kGateway6);
  EXPECT_EQ(synack->tcp->ack, kIsn + 1);
  EXPECT_EQ(synack->tcp->mss, UsernetConfig{}.mtu - 60) << "the MSS leaves room for the IPv6 header";
  const std::uint32_t iss = synack->tcp->seq;
  send(tcp(kGateway6, port, kIsn + 1, iss + 1, tcp_flag::kAck));

  // Guest -> host, byte-exact.
  send(tcp(kGateway6, port, kIsn + 1, iss + 1, tcp_flag::kAck | tcp_flag::kPsh, bytes_of("hello over ipv6")));
  ASSERT_TRUE(readable(host.get(), 2000));
  char buf[64];
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(::recv(host.get(), buf, sizeof buf, 0))), "hello over ipv6");
  auto ack = next();
  ASSERT_TRUE(ack && ack->tcp);
  EXPECT_EQ(ack->tcp->ack, kIsn + 1 + 15);

  // Host -> guest: more than one MSS of 1400, in order, then the FIN.
  std::string data(5000, ' ');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(::send(host.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  ::shutdown(host.get(), SHUT_WR);
  std::string got;
  bool fin = false;
  std::uint32_t next_seq = iss + 1;
  while (!fin) {
    auto s = next();
    ASSERT_TRUE(s && s->tcp) << "after " << got.size() << " bytes";
    EXPECT_LE(s->payload.size(), 1400u);
    EXPECT_EQ(s->tcp->seq, next_seq);
    got += string_of(s->payload);
    next_seq += static_cast<std::uint32_t>(s->payload.size());
    fin = s->tcp->has(tcp_flag::kFin);
    send(tcp(kGateway6, port, kIsn + 16, next_seq + (fin ? 1 : 0), tcp_flag::kAck));
  }
  EXPECT_EQ(got, data);
  EXPECT_EQ(net->counters().ipv6_flows_opened.get(), 1u);
}

// With GUEST_TSO6 (or a TAP with TUN_F_TSO6), IPv6 data toward the guest
// goes in segments of up to 64 KiB with TCPv6 GSO metadata and a partial
// checksum over the IPv6 pseudo-header.
TEST_P(UsernetIpv6Test, WithTso6DataGoesInLargeSegments) {
  start();
  net->set_rx_offloads(net::RxOffloads{true, true, true});
  std::uint16_t port = 0;
  UniqueFd listener = bound_socket(kHostLoopback6, SOCK_STREAM, port);
  send(tcp(kGateway6, port, kIsn, 0, tcp_flag::kSyn, {}, 1400));
  ASSERT_TRUE(readable(listener.get(), 2000));
  UniqueFd host(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  Bytes b = next_raw();
  ASSERT_FALSE(b.empty());
  const std::uint32_t iss = load_be<std::uint32_t>(b.data() + kEthernetHeaderSize + kIpv6HeaderSize + 4);
  send(tcp(kGateway6, port, kIsn + 1, iss + 1, tcp_flag::kAck));
  std::string data(100000, ' ');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 23);
  ASSERT_EQ(::send(host.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  ASSERT_TRUE(readable(net->rx_fd(), 2000));
  b.assign(65600, std::byte{0});
  const iovec iov{b.data(), b.size()};
  net::RxResult r{};
  for (int i = 0; i < 200 && r.status != net::RxStatus::frame; ++i) {
    r = net->receive(std::span(&iov, 1));
    if (r.status != net::RxStatus::frame) readable(net->rx_fd(), 10);
  }
  ASSERT_EQ(r.status, net::RxStatus::frame);
  b.resize(r.written);
  constexpr std::size_t kTcpStart = kEthernetHeaderSize + kIpv6HeaderSize;
  EXPECT_EQ(r.header.gso_type, net::NetHeader::kGsoTcpV6);
  EXPECT_EQ(r.header.gso_size, 1400);
  EXPECT_EQ(r.header.csum_start, kTcpStart);
  EXPECT_EQ(r.header.csum_offset, 16);
  EXPECT_EQ(r.header.hdr_len, kTcpStart + kTcpHeaderSize);
  const std::size_t payload = b.size() - r.header.hdr_len;
  EXPECT_GT(payload, 1400u * 10) << "far more than one MSS";
  EXPECT_EQ(string_of(std::span(b).subspan(r.header.hdr_len)), data.substr(0, payload));
  const auto segment = std::span(b).subspan(kTcpStart);
  store_be<std::uint16_t>(segment.data() + 16, static_cast<std::uint16_t>(internet_checksum(segment)));
  Checksum whole;
  add_ipv6_pseudo_header(whole, kGateway6, kGuest6, ip_proto::kTcp, static_cast<std::uint32_t>(segment.size()));
  whole.add(segment);
  EXPECT_EQ(whole.finish(), 0) << "a valid TCP checksum once completed";
}

TEST_P(UsernetIpv6Test, PingToTheGatewayIsAnsweredThroughAnIpv6PingSocket) {
  start();
  if (!host_features().ping_sockets_v6) GTEST_SKIP() << "IPv6 ping sockets are not permitted here";
  send(echo_request(kGateway6, 0x4242, 7, "ping6 data"));
  auto r = next();
  ASSERT_TRUE(r && r->icmp);
  EXPECT_EQ(r->icmp->type, icmpv6_type::kEchoReply);
  EXPECT_EQ(r->ip.src, kGateway6);
  EXPECT_EQ(r->ip.dst, kGuest6);
  const auto echo = parse_icmpv6_echo(*r->icmp);
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->id, 0x4242) << "the guest's identifier, not the ping socket's";
  EXPECT_EQ(echo->seq, 7);
  EXPECT_EQ(string_of(r->icmp->body.subspan(4)), "ping6 data");
  EXPECT_EQ(net->counters().icmp_echo_replies.get(), 1u);
}

// Where IPv6 ping sockets are closed but the process holds CAP_NET_RAW (as
// the tests do), pings go through the one raw ICMPv6 socket, with an
// identifier usernet chose, and come back with the guest's.
TEST_P(UsernetIpv6Test, WithoutPingSocketsARawIcmpv6SocketCarriesThePing) {
  if (!host_features().raw_icmp_v6) GTEST_SKIP() << "no CAP_NET_RAW here";
  UsernetConfig cfg;
  cfg.ipv6.enabled = true;
  HostFeatures host = host_features();
  host.ping_sockets_v6 = false;
  cfg.host = host;
  net = std::make_unique<UserNet>(*validate(cfg));
  send(echo_request(kGateway6, 0x0b0b, 3, "raw ping6"));
  auto r = next();
  ASSERT_TRUE(r && r->icmp);
  EXPECT_EQ(r->icmp->type, icmpv6_type::kEchoReply);
  const auto echo = parse_icmpv6_echo(*r->icmp);
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->id, 0x0b0b);
  EXPECT_EQ(echo->seq, 3);
  EXPECT_EQ(string_of(r->icmp->body.subspan(4)), "raw ping6");
  EXPECT_EQ(net->counters().icmp_echo_replies.get(), 1u);
}

TEST_P(UsernetIpv6Test, PingWithoutIpv6PingSocketsIsCountedNotAnswered) {
  UsernetConfig cfg;
  cfg.ipv6.enabled = true;
  HostFeatures host = host_features();
  host.ping_sockets_v6 = false;
  host.raw_icmp_v6 = false;
  cfg.host = host;
  net = std::make_unique<UserNet>(*validate(cfg));
  test::CounterDelta d(net->counters());
  send(echo_request(kGateway6, 1, 1, "x"));
  EXPECT_TRUE(next_raw(50).empty());
  EXPECT_TRUE(d.moved(net->counters(), {{"frames_from_guest", 1}, {"ipv6_packets", 1}, {"drop_icmp_not_permitted", 1}}));
}

// The IPv6 rows of the reachability policy, end to end: a refused TCP
// connection gets a RST, a refused datagram an ICMPv6 "administratively
// prohibited"; what goes nowhere is counted and dropped.
TEST_P(UsernetIpv6Test, LinkLocalMetadataAndMappedAddressesNeverLeave) {
  start();
  test::CounterDelta d(net->counters());
  send(tcp(*Ipv6Address::parse("fd00:ec2::254"), 80, kIsn, 0, tcp_flag::kSyn));
  auto rst = next();
  ASSERT_TRUE(rst && rst->tcp);
  EXPECT_TRUE(rst->tcp->has(tcp_flag::kRst));
  send(udp(*Ipv6Address::parse("fe80::1"), 5555, 53, bytes_of("q")));
  auto unreachable = next();
  ASSERT_TRUE(unreachable && unreachable->icmp);
  EXPECT_EQ(unreachable->icmp->type, icmpv6_type::kDestUnreachable);
  EXPECT_EQ(unreachable->icmp->code, icmpv6_unreachable::kAdminProhibited);
  EXPECT_EQ(unreachable->ip.dst, kGuest6);
  send(udp(*Ipv6Address::parse("::ffff:127.0.0.1"), 5555, 53, bytes_of("q")));  // never on a link: malformed
  send(udp(*Ipv6Address::parse("ff02::fb"), 5353, 5353, bytes_of("mdns")));
  send(udp(*Ipv6Address::parse("fd00::99"), 5555, 53, bytes_of("q")));  // the guest's own prefix
  EXPECT_TRUE(next_raw(50).empty());
  EXPECT_TRUE(d.moved(net->counters(), {{"frames_from_guest", 5}, {"frames_to_guest", 2}, {"ipv6_packets", 4},
                                        {"ipv6_malformed", 1}, {"tcp_segments_from_guest", 1}, {"drop_link_local", 2},
                                        {"tcp_resets_to_guest", 1}, {"icmp_unreachable_sent", 1},
                                        {"drop_no_route", 2}}));
}

// At MTU 1500 a 3000-byte datagram from the host reaches the guest in IPv6
// fragments (a Fragment header each, 8-byte offsets, one identification)
// that put together give the datagram, checksum and all.
TEST_P(UsernetIpv6Test, AHostDatagramLargerThanTheMtuArrivesInIpv6Fragments) {
  UsernetConfig cfg;
  cfg.mtu = 1500;
  start(cfg);
  std::uint16_t port = 0;
  UniqueFd peer = bound_socket(kHostLoopback6, SOCK_DGRAM, port);
  send(udp(kGateway6, 6000, port, bytes_of("hi")));
  ASSERT_TRUE(readable(peer.get(), 2000));
  char buf[8];
  SocketAddress from;
  socklen_t fl = SocketAddress::capacity();
  ASSERT_EQ(::recvfrom(peer.get(), buf, sizeof buf, 0, from.buffer(), &fl), 2);
  std::string big(3000, ' ');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('A' + i % 26);
  ASSERT_EQ(::sendto(peer.get(), big.data(), big.size(), 0, from.get(), fl), 3000);
  Bytes whole(kUdpHeaderSize + big.size());
  std::size_t have = 0;
  std::optional<std::uint32_t> id;
  for (bool more = true; more;) {
    Bytes f = next_raw();
    ASSERT_FALSE(f.empty()) << "after " << have << " bytes";
    ASSERT_LE(f.size(), kEthernetHeaderSize + 1500u);
    const std::byte* ip = f.data() + kEthernetHeaderSize;
    ASSERT_EQ(static_cast<std::uint8_t>(ip[6]), ip_proto::kFragment);
    const std::byte* frag = ip + kIpv6HeaderSize;
    EXPECT_EQ(static_cast<std::uint8_t>(frag[0]), ip_proto::kUdp);
    const std::uint16_t off_m = load_be<std::uint16_t>(frag + 2);
    const std::uint32_t this_id = load_be<std::uint32_t>(frag + 4);
    if (id) {
      EXPECT_EQ(this_id, *id);
    }
    id = this_id;
    const std::size_t offset = off_m & 0xfff8;
    more = (off_m & 1) != 0;
    const std::size_t len = load_be<std::uint16_t>(ip + 4) - 8;
    ASSERT_EQ(offset, have);
    ASSERT_LE(offset + len, whole.size());
    std::copy_n(frag + 8, len, whole.begin() + static_cast<std::ptrdiff_t>(offset));
    have += len;
  }
  ASSERT_EQ(have, whole.size());
  Checksum c;
  add_ipv6_pseudo_header(c, kGateway6, kGuest6, ip_proto::kUdp, static_cast<std::uint32_t>(whole.size()));
  c.add(whole);
  EXPECT_EQ(c.finish(), 0) << "the UDP checksum covers the whole datagram";
  EXPECT_EQ(string_of(std::span(whole).subspan(kUdpHeaderSize)), big);
  EXPECT_EQ(net->counters().ip_fragments_to_guest.get(), 3u);
}

// The guest's datagram larger than its MTU, in IPv6 fragments (any order, a
// duplicate ignored), reaches the host socket whole; overlapping fragments
// drop their datagram (RFC 5722).
TEST_P(UsernetIpv6Test, FragmentsFromTheGuestAreReassembled) {
  start();
  std::uint16_t port = 0;
  UniqueFd peer = bound_socket(kHostLoopback6, SOCK_DGRAM, port);
  Bytes payload(3000);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = std::byte(i * 5 + 3);
  const Bytes whole = udp(kGateway6, 6001, port, payload);
  const std::size_t l4 = kEthernetHeaderSize + kIpv6HeaderSize;
  const std::size_t datagram = whole.size() - l4;  // UDP header and payload
  auto fragment = [&](std::size_t off, std::size_t len, bool more, std::uint32_t id) {
    Bytes f(l4 + 8 + len);
    std::copy_n(whole.begin(), l4, f.begin());
    std::byte* ip = f.data() + kEthernetHeaderSize;
    store_be<std::uint16_t>(ip + 4, static_cast<std::uint16_t>(8 + len));
    ip[6] = std::byte{ip_proto::kFragment};
    std::byte* frag = ip + kIpv6HeaderSize;
    frag[0] = std::byte{ip_proto::kUdp};
    store_be<std::uint16_t>(frag + 2, static_cast<std::uint16_t>(off | (more ? 1 : 0)));
    store_be<std::uint32_t>(frag + 4, id);
    std::copy_n(whole.begin() + static_cast<std::ptrdiff_t>(l4 + off), len, frag + 8);
    return f;
  };
  auto received = [&] {
    Bytes buf(65536);
    if (!readable(peer.get(), 500)) return Bytes{};
    buf.resize(static_cast<std::size_t>(std::max<ssize_t>(::recv(peer.get(), buf.data(), buf.size(), 0), 0)));
    return buf;
  };
  test::CounterDelta d(net->counters());
  send(fragment(1448, 1448, true, 7));
  send(fragment(2896, datagram - 2896, false, 7));
  send(fragment(1448, 1448, true, 7));
  send(fragment(0, 1448, true, 7));
  EXPECT_EQ(received(), payload);
  EXPECT_TRUE(d.moved(net->counters(), {{"frames_from_guest", 4}, {"ip_fragments", 4}, {"ip_reassembled", 1},
                                        {"ipv6_packets", 1}, {"ipv6_flows_opened", 1}, {"udp_flows_opened", 1},
                                        {"udp_datagrams_out", 1}}));
  test::CounterDelta bad(net->counters());
  send(fragment(0, 1448, true, 8));
  send(fragment(1440, 1448, true, 8));  // overlaps the first
  send(fragment(2896, datagram - 2896, false, 8));
  EXPECT_TRUE(received().empty());
  EXPECT_TRUE(bad.moved(net->counters(), {{"frames_from_guest", 3}, {"ip_fragments", 3}, {"ip_fragments_dropped", 1}}));
}

// The datagram's headers are the first fragment's: a later fragment that
// carries a Hop-by-Hop header the first did not (so its Fragment header sits
// elsewhere) changes nothing in what reaches the host.
TEST_P(UsernetIpv6Test, ALaterFragmentsOtherHeaderLayoutDoesNotRewriteTheDatagram) {
  start();
  std::uint16_t port = 0;
  UniqueFd peer = bound_socket(kHostLoopback6, SOCK_DGRAM, port);
  Bytes payload(2000);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = std::byte(i * 3 + 1);
  const Bytes whole = udp(kGateway6, 6002, port, payload);
  const std::size_t l4 = kEthernetHeaderSize + kIpv6HeaderSize;
  const std::size_t datagram = whole.size() - l4;
  auto fragment = [&](std::size_t off, std::size_t len, bool more, bool hop_by_hop) {
    const std::size_t ext = hop_by_hop ? 8 : 0;
    Bytes f(l4 + ext + 8 + len);
    std::copy_n(whole.begin(), l4, f.begin());
    std::byte* ip = f.data() + kEthernetHeaderSize;
    store_be<std::uint16_t>(ip + 4, static_cast<std::uint16_t>(ext + 8 + len));
    if (hop_by_hop) {
      ip[6] = std::byte{ip_proto::kHopByHop};
      std::byte* hbh = ip + kIpv6HeaderSize;
      hbh[0] = std::byte{ip_proto::kFragment};
      hbh[2] = std::byte{1};  // PadN covering the other 6 bytes
      hbh[3] = std::byte{4};
    } else {
      ip[6] = std::byte{ip_proto::kFragment};
    }
    std::byte* frag = ip + kIpv6HeaderSize + ext;
    frag[0] = std::byte{ip_proto::kUdp};
    store_be<std::uint16_t>(frag + 2, static_cast<std::uint16_t>(off | (more ? 1 : 0)));
    store_be<std::uint32_t>(frag + 4, 9);
    std::copy_n(whole.begin() + static_cast<std::ptrdiff_t>(l4 + off), len, frag + 8);
    return f;
  };
  send(fragment(0, 1000, true, false));
  send(fragment(1000, datagram - 1000, false, true));
  ASSERT_TRUE(readable(peer.get(), 2000));
  Bytes got(65536);
  got.resize(static_cast<std::size_t>(::recv(peer.get(), got.data(), got.size(), 0)));
  EXPECT_EQ(got, payload);
  EXPECT_EQ(net->counters().ip_reassembled.get(), 1u);
}

TEST_P(UsernetIpv6Test, Ipv6IsDroppedAndCountedWhileSwitchedOff) {
  UsernetConfig cfg;
  net = std::make_unique<UserNet>(*validate(cfg));
  test::CounterDelta d(net->counters());
  send(udp(kGateway6, 5555, 9, bytes_of("x")));
  EXPECT_TRUE(d.moved(net->counters(), {{"frames_from_guest", 1}, {"ipv6_disabled", 1}}));
}

INSTANTIATE_TEST_SUITE_P(Hosts, UsernetIpv6Test, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return std::string(p.param ? "ThisKernel" : "NoPeekOff");
                         });

TEST(UsernetIpv6ConfigTest, ForwardsAndUpstreamsTakeIpv6Addresses) {
  auto f = parse_forward("tcp:[::1]:8080:80");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->host_address, *IpAddress::parse("::1"));
  EXPECT_EQ(f->host_port, 8080);
  EXPECT_EQ(f->guest_port, 80);
  auto any = parse_forward("udp:[::]:5353:53");
  ASSERT_TRUE(any);
  EXPECT_FALSE(any->host_address.is_v4());
  for (const char* bad : {"tcp:[::1:8080:80", "tcp:[::1]8080:80", "tcp:[zz::]:1:2", "tcp:[::1]:1"})
    EXPECT_FALSE(parse_forward(bad)) << bad;
  auto u = parse_upstream("[2001:db8::53]:5353");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->address, *IpAddress::parse("2001:db8::53"));
  EXPECT_EQ(u->port, 5353);
  auto bare = parse_upstream("2001:db8::53");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->port, 53);
  const auto resolvers = parse_resolv_conf("nameserver 2001:db8::1\nnameserver fe80::1%eth0\nnameserver 192.0.2.1\n");
  ASSERT_EQ(resolvers.size(), 2u);
  EXPECT_EQ(resolvers[0].address, IpAddress(Ipv4Address::of(192, 0, 2, 1))) << "IPv4 first";
  EXPECT_EQ(resolvers[1].address, *IpAddress::parse("2001:db8::1"));
}

TEST(UsernetIpv6ConfigTest, ValidationRefusesAPrefixThatIsNotA64) {
  UsernetConfig cfg;
  cfg.ipv6.enabled = true;
  cfg.ipv6.prefix = *Ipv6Address::parse("fd00::1");
  EXPECT_FALSE(validate(cfg));
  cfg.ipv6.prefix = *Ipv6Address::parse("fe80::");
  EXPECT_FALSE(validate(cfg));
  cfg.ipv6.prefix = *Ipv6Address::parse("fd00::");
  cfg.mtu = 1000;
  EXPECT_FALSE(validate(cfg)) << "below IPv6's 1280";
  cfg.mtu = 1500;
  EXPECT_TRUE(validate(cfg));
}

}  // namespace
}  // namespace vnk::usernet
