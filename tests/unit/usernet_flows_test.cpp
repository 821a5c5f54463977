// usernet's host-socket paths, driven by a test "guest" that speaks Ethernet
// against real sockets on 127.0.0.1: UDP, DNS forwarding to a resolver the
// test runs, ICMP echo through ping sockets, and TCP (handshake, refusal,
// data and FIN both ways, RST both ways, retransmission, the guest's window,
// a full host socket). The gateway address 10.0.2.2 reaches 127.0.0.1.
//
// Every test runs twice: with what this kernel offers, and as on a kernel
// without TCP SO_PEEK_OFF (before 6.9) and without ping sockets (a closed
// net.ipv4.ping_group_range), so both paths of each pass the same checks.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "base/byte_order.hpp"
#include "counter_delta.hpp"
#include "base/fd_limit.hpp"
#include "base/unique_fd.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "packet/icmp.hpp"
#include "packet/tcp.hpp"
#include "usernet/datagram_batch.hpp"
#include "usernet/tcp/rtt.hpp"
#include "usernet/tcp/sequence.hpp"
#include "usernet/tcp/tcp_flows.hpp"
#include "usernet/ip_reassembly.hpp"
#include "usernet/usernet.hpp"

namespace vnk::usernet {
namespace {

using namespace packet;
using Bytes = std::vector<std::byte>;

const MacAddress kGuestMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
constexpr Ipv4Address kGuest = Ipv4Address::of(10, 0, 2, 15);
constexpr Ipv4Address kGateway = Ipv4Address::of(10, 0, 2, 2);
constexpr Ipv4Address kDns = Ipv4Address::of(10, 0, 2, 3);

Bytes bytes_of(std::string_view s) {
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}
std::string string_of(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// A socket on 127.0.0.1 with a kernel-chosen port.
UniqueFd loopback_socket(int type, std::uint16_t& port) {
  UniqueFd s(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  socklen_t len = sizeof sa;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  port = ntohs(sa.sin_port);
  if (type == SOCK_STREAM) ::listen(s.get(), 8);
  return s;
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  return sa;
}

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

// A frame for the guest, parsed; every checksum verified.
struct Seen {
  Ipv4 ip;
  Bytes frame;
  std::optional<Tcp> tcp;
  std::optional<Udp> udp;
  Bytes payload;
};

// The host a test pretends to run on.
struct HostVariant {
  const char* name;
  bool peek_offset;   // TCP SO_PEEK_OFF (if this kernel has it)
  bool ping_sockets;  // unprivileged ICMP sockets (if permitted here)
};

class UsernetFlowsTest : public ::testing::TestWithParam<HostVariant> {
 protected:
  void start(UsernetConfig cfg = {}) {
    HostFeatures host = host_features();
    host.tcp_peek_off_v4 = host.tcp_peek_off_v4 && GetParam().peek_offset;
    host.ping_sockets_v4 = host.ping_sockets_v4 && GetParam().ping_sockets;
    cfg.host = host;
    if (fake_time) cfg.clock = &fake_clock;
    net = std::make_unique<UserNet>(*validate(cfg));
  }

  // With fake_time set before start(): the clock moves only here, and the
  // flows' timers run at once.
  static inline std::uint64_t now_ms = 1'000'000;
  static std::uint64_t fake_clock() noexcept { return now_ms; }
  void advance(std::uint64_t ms) {
    now_ms += ms;
    net->run_timers();
  }

  void send(const Bytes& frame) {
    send_in_batch(frame);
    net->flush_tx();  // as the TX engine does at the end of a drain
  }
  // One frame of a TX batch: what usernet holds waits for flush_tx().
  void send_in_batch(const Bytes& frame) {
    const iovec iov{const_cast<std::byte*>(frame.data()), frame.size()};
    const net::NetHeader hdr{};
    net->transmit(net::TxFrame{hdr, std::span(&iov, 1), frame.size(), std::span(frame).first(std::min(frame.size(), net::kTxHeadBytes))});
  }

  Bytes ipv4_frame(std::uint8_t proto, Ipv4Address dst, const Bytes& l4) {
    Bytes f(kEthernetHeaderSize + kIpv4HeaderSize + l4.size());
    write_ethernet(f, UsernetConfig{}.gateway_mac, kGuestMac, ethertype::kIpv4);
    write_ipv4(std::span(f).subspan(kEthernetHeaderSize),
               Ipv4Fields{kGuest, dst, proto, static_cast<std::uint16_t>(l4.size()), 1, 64, 0});
    std::copy(l4.begin(), l4.end(), f.begin() + kEthernetHeaderSize + kIpv4HeaderSize);
    return f;
  }

  Bytes udp(Ipv4Address dst, std::uint16_t sport, std::uint16_t dport, const Bytes& payload) {
    Bytes f(kUdpFrameOverhead + payload.size());
    std::copy(payload.begin(), payload.end(), f.begin() + kUdpFrameOverhead);
    write_udp_frame(f, UdpEndpoints{UsernetConfig{}.gateway_mac, kGuestMac, kGuest, sport, dst, dport},
                    static_cast<std::uint16_t>(payload.size()));
    return f;
  }

  Bytes tcp(std::uint16_t dport, std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, const Bytes& payload = {},
            std::uint16_t window = 0xffff, std::optional<std::uint16_t> mss = {}, std::optional<std::uint8_t> ws = {},
            std::span<const SackBlock> sack = {}) {
    TcpFields t{kGuestPort, dport, seq, ack, flags, window, mss, ws, offer_sack && (flags & tcp_flag::kSyn) != 0, sack};
    Bytes seg(tcp_header_size(t) + payload.size());
    write_tcp(seg, t);
    std::copy(payload.begin(), payload.end(), seg.begin() + static_cast<std::ptrdiff_t>(tcp_header_size(t)));
    Checksum sum;
    sum.add(seg);
    store_tcp_checksum(seg, sum, kGuest, kGateway, seg.size());
    return ipv4_frame(ip_proto::kTcp, kGateway, seg);
  }

  // The next frame for the guest within `timeout_ms`, parsed and checked.
  std::optional<Seen> next(int timeout_ms = 2000, std::size_t buffer = 65600) {
    for (int waited = 0;; waited += 10) {
      Bytes b(buffer);
      const iovec iov{b.data(), b.size()};
      auto r = net->receive(std::span(&iov, 1));
      if (r.status == net::RxStatus::frame) {
        b.resize(r.written);
        return parse(std::move(b));
      }
      if (waited >= timeout_ms) return std::nullopt;
      readable(net->rx_fd(), 10);
    }
  }

  Seen parse(Bytes b) {
    Seen s;
    s.frame = b;
    auto eth = parse_ethernet(s.frame);
    EXPECT_TRUE(eth);
    EXPECT_EQ(eth->dst, kGuestMac);
    auto ip = parse_ipv4(eth->payload);
    EXPECT_TRUE(ip) << "IPv4 header";
    if (!ip) return s;
    s.ip = *ip;
    if (ip->protocol == ip_proto::kTcp) {
      Checksum sum;
      add_ipv4_pseudo_header(sum, ip->src.value, ip->dst.value, ip_proto::kTcp, ip->payload_len);
      sum.add(ip->payload);
      EXPECT_EQ(sum.finish(), 0) << "TCP checksum";
      s.tcp = *parse_tcp(*ip);
      s.payload.assign(ip->payload.begin() + s.tcp->header_len, ip->payload.end());
    } else if (ip->protocol == ip_proto::kUdp) {
      auto u = parse_udp(*ip);
      EXPECT_TRUE(u) << "UDP checksum";
      if (u) {
        s.udp = *u;
        s.payload.assign(u->payload.begin(), u->payload.end());
      }
    } else {
      s.payload.assign(ip->payload.begin(), ip->payload.end());
    }
    return s;
  }

  // Handshake with a host listener; returns the accepted host socket and
  // sets iss (usernet's initial sequence number).
  UniqueFd connect_flow(int listener, std::uint16_t port, std::uint16_t guest_window = 0xffff,
                        std::optional<std::uint8_t> ws = 7, std::uint16_t mss = 1460) {
    send(tcp(port, kIsn, 0, tcp_flag::kSyn, {}, guest_window, mss, ws));
    EXPECT_TRUE(readable(listener, 2000));
    UniqueFd host(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    auto synack = next();
    EXPECT_TRUE(synack && synack->tcp);
    if (!synack || !synack->tcp) return host;
    EXPECT_EQ(synack->tcp->flags, tcp_flag::kSyn | tcp_flag::kAck);
    EXPECT_EQ(synack->tcp->ack, kIsn + 1);
    EXPECT_EQ(synack->ip.src, kGateway);
    iss = synack->tcp->seq;
    send(tcp(port, kIsn + 1, iss + 1, tcp_flag::kAck, {}, guest_window));
    return host;
  }

  // A connection to `listener` (MSS 1000, no window scaling) whose host
  // peer sent `size` bytes of a letter pattern, all seen by the guest in
  // 1000-byte segments; returns the host socket, the bytes in `data`.
  UniqueFd segments_in_flight(int listener, std::uint16_t port, std::size_t size, std::string& data) {
    UniqueFd host = connect_flow(listener, port, 0xffff, 0, 1000);
    data.assign(size, ' ');
    for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>('A' + i % 26);
    EXPECT_EQ(::send(host.get(), data.data(), size, 0), static_cast<ssize_t>(size));
    for (std::size_t i = 0; i < size / 1000; ++i) EXPECT_TRUE(next());
    return host;
  }

  // The guest acknowledges everything up to `acked`; the host peer's next
  // bytes then go out at that sequence number, as usual.
  void acked_then_new_data(std::uint16_t port, int host, std::uint32_t acked) {
    send(tcp(port, kIsn + 1, acked, tcp_flag::kAck));
    ASSERT_EQ(::send(host, "more", 4, 0), 4);
    auto more = next();
    ASSERT_TRUE(more && more->tcp);
    EXPECT_EQ(more->tcp->seq, acked);
    EXPECT_EQ(string_of(more->payload), "more");
  }

  // A forward on `host` (IPv4 or IPv6 listener) carries a connection or a
  // datagram to the guest and back.
  void tcp_forward_reaches_the_guest(const IpAddress& host);
  void udp_forward_reaches_the_guest(const IpAddress& host);

  static constexpr std::uint16_t kGuestPort = 40000;
  static constexpr std::uint32_t kIsn = 1000;
  std::uint32_t iss = 0;
  bool offer_sack = false;  // the guest's SYN carries SACK-permitted
  bool fake_time = false;   // the test drives the clock (advance())
  std::unique_ptr<UserNet> net;
};

TEST_P(UsernetFlowsTest, UdpToTheGatewayReachesHostLoopbackAndRepliesComeBack) {
  start();
  std::uint16_t port = 0;
  UniqueFd peer = loopback_socket(SOCK_DGRAM, port);
  send(udp(kGateway, 5555, port, bytes_of("ping over udp")));
  ASSERT_TRUE(readable(peer.get(), 2000));
  char buf[64];
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  const ssize_t n = ::recvfrom(peer.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), "ping over udp");
  ASSERT_EQ(::sendto(peer.get(), "pong", 4, 0, reinterpret_cast<sockaddr*>(&from), fl), 4);
  auto r = next();
  ASSERT_TRUE(r && r->udp);
  EXPECT_EQ(r->ip.src, kGateway);
  EXPECT_EQ(r->ip.dst, kGuest);
  EXPECT_EQ(r->udp->src_port, port);
  EXPECT_EQ(r->udp->dst_port, 5555);
  EXPECT_EQ(string_of(r->payload), "pong");
  EXPECT_EQ(net->counters().udp_datagrams_out.get(), 1u);
  EXPECT_EQ(net->counters().udp_datagrams_in.get(), 1u);
  EXPECT_EQ(net->datagram_flows(), 1u);
}

// A datagram larger than the guest's MTU leaves it in IPv4 fragments; usernet
// puts them together (in any order, duplicates ignored) and the host socket
// gets the datagram whole. Overlapping fragments, a bad shape and fragments
// that never complete drop their datagram, each counted; the table is bounded.
TEST_P(UsernetFlowsTest, FragmentedDatagramsAreReassembledAndBadOnesDropped) {
  fake_time = true;
  start();
  std::uint16_t port = 0;
  UniqueFd peer = loopback_socket(SOCK_DGRAM, port);
  // A 3000-byte payload in a UDP datagram, cut like Linux at MTU 1500:
  // 1480-byte pieces of the IPv4 payload (the UDP header rides in the first).
  Bytes payload(3000);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = std::byte(i * 7 + 1);
  const Bytes whole = udp(kGateway, 5555, port, payload);
  const std::size_t l3 = kEthernetHeaderSize, l4 = l3 + kIpv4HeaderSize;
  const std::size_t ip_payload = whole.size() - l4;
  auto fragment = [&](std::size_t off, std::size_t len, bool more, std::uint16_t id) {
    Bytes f(l4 + len);
    std::copy_n(whole.begin(), l4, f.begin());
    std::copy_n(whole.begin() + static_cast<std::ptrdiff_t>(l4 + off), len, f.begin() + static_cast<std::ptrdiff_t>(l4));
    std::byte* h = f.data() + l3;
    store_be<std::uint16_t>(h + 2, static_cast<std::uint16_t>(kIpv4HeaderSize + len));
    store_be<std::uint16_t>(h + 4, id);
    store_be<std::uint16_t>(h + 6, static_cast<std::uint16_t>((more ? 0x2000 : 0) | (off / 8)));
    store_be<std::uint16_t>(h + 10, 0);
    store_be<std::uint16_t>(h + 10, internet_checksum(std::span(h, kIpv4HeaderSize)));
    return f;
  };
  auto received = [&] {
    std::vector<std::byte> buf(65536);
    if (!readable(peer.get(), 200)) return Bytes{};
    const ssize_t n = ::recv(peer.get(), buf.data(), buf.size(), 0);
    buf.resize(static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    return buf;
  };
  test::CounterDelta d(net->counters());
  // In order.
  send(fragment(0, 1480, true, 1));
  send(fragment(1480, 1480, true, 1));
  send(fragment(2960, ip_payload - 2960, false, 1));
  EXPECT_EQ(received(), payload);
  // Last first, a duplicate in the middle.
  send(fragment(2960, ip_payload - 2960, false, 2));
  send(fragment(1480, 1480, true, 2));
  send(fragment(1480, 1480, true, 2));
  send(fragment(0, 1480, true, 2));
  EXPECT_EQ(received(), payload);
  EXPECT_TRUE(d.moved(net->counters(), {{"frames_from_guest", 7}, {"ip_fragments", 7}, {"ip_reassembled", 2},
                                        {"udp_datagrams_out", 2}, {"udp_flows_opened", 1}}));

  test::CounterDelta bad(net->counters());
  send(fragment(0, 1480, true, 3));
  send(fragment(1000, 488, true, 3));  // overlaps the first: the datagram is dropped (RFC 5722)
  send(fragment(1480, 1480, true, 3));
  send(fragment(2960, ip_payload - 2960, false, 3));  // starts a new datagram 3 that never completes
  send(fragment(0, 1001, true, 4));      // not a multiple of 8 bytes, yet not the last
  send(fragment(1480, 1480, false, 5));  // the last: the datagram ends at 2960...
  send(fragment(2960, 8, true, 5));      // ...so nothing may follow it
  EXPECT_TRUE(received().empty());
  advance(IpReassembly::kTimeoutMs);  // the incomplete one times out
  EXPECT_TRUE(bad.moved(net->counters(), {{"frames_from_guest", 7}, {"ip_fragments", 7}, {"ip_fragments_dropped", 3},
                                          {"ip_reassembly_timeouts", 1}}));
  // The table is bounded: 200 datagrams that never complete hold at most 64.
  for (std::uint16_t id = 100; id < 300; ++id) send(fragment(0, 1480, true, id));
  EXPECT_EQ(net->counters().ip_fragments_dropped.get() - 3, 200u - IpReassembly::kMaxDatagrams);
  send(fragment(1480, 1480, true, 299));
  send(fragment(2960, ip_payload - 2960, false, 299));
  EXPECT_EQ(received(), payload) << "the newest still completes";
}

// Toward the guest: a host datagram larger than the guest's MTU arrives as
// IPv4 fragments of at most the MTU, offsets in 8-byte units, MF on all but
// the last, one identification, the UDP checksum over the whole datagram.
TEST_P(UsernetFlowsTest, HostDatagramsLargerThanTheMtuReachTheGuestInFragments) {
  UsernetConfig cfg;
  cfg.mtu = 1500;
  start(cfg);
  std::uint16_t port = 0;
  UniqueFd peer = loopback_socket(SOCK_DGRAM, port);
  send(udp(kGateway, 5555, port, bytes_of("hello")));
  ASSERT_TRUE(readable(peer.get(), 2000));
  char buf[16];
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  ASSERT_EQ(::recvfrom(peer.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl), 5);
  std::vector<std::byte> big(4000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = std::byte(i * 13 + 5);
  ASSERT_EQ(::sendto(peer.get(), big.data(), big.size(), 0, reinterpret_cast<sockaddr*>(&from), fl), 4000);
  ASSERT_TRUE(readable(net->rx_fd(), 2000));
  Bytes datagram;  // the IPv4 payload, put together
  std::uint16_t id = 0;
  for (int i = 0;; ++i) {
    ASSERT_LT(i, 4);
    Bytes b(65600);
    const iovec iov{b.data(), b.size()};
    auto r = net->receive(std::span(&iov, 1));
    ASSERT_EQ(r.status, net::RxStatus::frame);
    ASSERT_LE(r.written, kEthernetHeaderSize + 1500u);
    b.resize(r.written);
    auto eth = parse_ethernet(b);
    auto ip = parse_ipv4(eth->payload, eth->payload.size(), /*accept_fragments=*/true);
    ASSERT_TRUE(ip);
    if (i == 0) id = ip->id;
    EXPECT_EQ(ip->id, id);
    EXPECT_EQ(ip->fragment_offset, datagram.size());
    EXPECT_FALSE(ip->dont_fragment);
    datagram.insert(datagram.end(), ip->payload.begin(), ip->payload.end());
    if (!ip->more_fragments) break;
    EXPECT_EQ(ip->payload.size() % 8, 0u);
  }
  ASSERT_EQ(datagram.size(), kUdpHeaderSize + big.size());
  Ipv4 whole;
  whole.src = kGateway;
  whole.dst = kGuest;
  whole.payload_len = static_cast<std::uint16_t>(datagram.size());
  whole.payload = datagram;
  auto u = parse_udp(whole);
  ASSERT_TRUE(u) << "UDP checksum over the whole datagram";
  EXPECT_EQ(u->src_port, port);
  EXPECT_EQ(u->dst_port, 5555);
  EXPECT_TRUE(std::equal(u->payload.begin(), u->payload.end(), big.begin(), big.end()));
  EXPECT_EQ(net->counters().ip_fragments_to_guest.get(), 3u);  // 1480 + 1480 + 1048
  EXPECT_EQ(net->counters().udp_datagrams_in.get(), 1u);
  EXPECT_FALSE(next(50)) << "nothing more";
}

// Small datagrams of one TX batch leave together (one sendmmsg per run to
// the same socket) when the batch ends; order is kept within a socket, a
// datagram for another socket or one too large to hold sends what is held
// first, and nothing is lost.
TEST_P(UsernetFlowsTest, DatagramsOfOneTxBatchLeaveTogetherInOrder) {
  start();
  std::uint16_t pa = 0, pb = 0;
  UniqueFd a = loopback_socket(SOCK_DGRAM, pa);
  UniqueFd b = loopback_socket(SOCK_DGRAM, pb);
  auto receive_all = [](int fd) {
    std::vector<std::string> got;
    char buf[4096];
    for (ssize_t n; readable(fd, 200) && (n = ::recv(fd, buf, sizeof buf, 0)) >= 0;)
      got.emplace_back(buf, static_cast<std::size_t>(n));
    return got;
  };
  for (int i = 0; i < 3; ++i) send_in_batch(udp(kGateway, 5555, pa, bytes_of("a" + std::to_string(i))));
  EXPECT_FALSE(readable(a.get(), 50)) << "held until the batch ends";
  send_in_batch(udp(kGateway, 5556, pb, bytes_of("b0")));  // another socket: the held three go first
  EXPECT_EQ(receive_all(a.get()), (std::vector<std::string>{"a0", "a1", "a2"}));
  send_in_batch(udp(kGateway, 5556, pb, bytes_of(std::string(3000, 'L'))));  // too large to hold: sent after b0
  send_in_batch(udp(kGateway, 5556, pb, bytes_of("b2")));
  net->flush_tx();
  const auto got_b = receive_all(b.get());
  ASSERT_EQ(got_b.size(), 3u);
  EXPECT_EQ(got_b[0], "b0");
  EXPECT_EQ(got_b[1], std::string(3000, 'L'));
  EXPECT_EQ(got_b[2], "b2");
  // A full batch goes at once.
  for (std::size_t i = 0; i < DatagramBatch::kMaxDatagrams + 1; ++i) send_in_batch(udp(kGateway, 5555, pa, bytes_of("x")));
  EXPECT_EQ(receive_all(a.get()).size(), DatagramBatch::kMaxDatagrams);
  net->flush_tx();
  EXPECT_EQ(receive_all(a.get()).size(), 1u);
  EXPECT_EQ(net->counters().udp_datagrams_out.get(), 3u + 3u + DatagramBatch::kMaxDatagrams + 1u);
  EXPECT_EQ(net->counters().udp_send_errors.get(), 0u);
}

TEST_P(UsernetFlowsTest, DnsQueriesAreForwardedToTheUpstreamWithTheGuestsId) {
  std::uint16_t port = 0;
  UniqueFd resolver = loopback_socket(SOCK_DGRAM, port);
  UsernetConfig cfg;
  cfg.dns_upstreams = {{Ipv4Address::of(127, 0, 0, 1), port}};
  start(cfg);
  Bytes query = bytes_of(std::string("\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04test\x00\x00\x01\x00\x01", 22));
  send(udp(kDns, 33333, 53, query));
  ASSERT_TRUE(readable(resolver.get(), 2000));
  std::byte buf[512];
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  const ssize_t n = ::recvfrom(resolver.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
  ASSERT_EQ(static_cast<std::size_t>(n), query.size());
  EXPECT_TRUE(std::equal(query.begin(), query.end(), buf));
  buf[2] = std::byte{0x81};  // a response
  ASSERT_EQ(::sendto(resolver.get(), buf, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), fl), n);
  auto r = next();
  ASSERT_TRUE(r && r->udp);
  EXPECT_EQ(r->ip.src, kDns);
  EXPECT_EQ(r->udp->src_port, 53);
  EXPECT_EQ(r->udp->dst_port, 33333);
  ASSERT_EQ(r->payload.size(), query.size());
  EXPECT_EQ(r->payload[0], std::byte{0xab});
  EXPECT_EQ(r->payload[1], std::byte{0xcd});
  EXPECT_EQ(r->payload[2], std::byte{0x81});
}

TEST_P(UsernetFlowsTest, WithoutAResolverDnsIsDroppedAndCounted) {
  start();
  send(udp(kDns, 33333, 53, bytes_of("query")));
  send(udp(kDns, 33333, 54, bytes_of("not dns")));
  EXPECT_EQ(net->counters().drop_no_route.get(), 2u);
  EXPECT_FALSE(next(50));
}

TEST_P(UsernetFlowsTest, IcmpEchoToTheGatewayIsAnsweredWithTheGuestsIdentifier) {
  start();
  if (!net->icmp_available()) GTEST_SKIP() << "ping sockets not permitted here (net.ipv4.ping_group_range)";
  Bytes icmp(kIcmpHeaderSize + 56);
  icmp[0] = std::byte{icmp_type::kEchoRequest};
  store_be<std::uint16_t>(icmp.data() + 4, 0x1234);
  store_be<std::uint16_t>(icmp.data() + 6, 7);
  for (std::size_t i = kIcmpHeaderSize; i < icmp.size(); ++i) icmp[i] = static_cast<std::byte>(i);
  store_be<std::uint16_t>(icmp.data() + 2, internet_checksum(icmp));
  send(ipv4_frame(ip_proto::kIcmp, kGateway, icmp));
  auto r = next();
  ASSERT_TRUE(r);
  auto echo = parse_icmp_echo(r->ip);
  ASSERT_TRUE(echo) << "checksum and type";
  EXPECT_EQ(echo->type, icmp_type::kEchoReply);
  EXPECT_EQ(echo->id, 0x1234);
  EXPECT_EQ(echo->seq, 7);
  EXPECT_EQ(r->ip.src, kGateway);
  EXPECT_TRUE(std::equal(icmp.begin() + kIcmpHeaderSize, icmp.end(), r->payload.begin() + kIcmpHeaderSize));
  EXPECT_EQ(net->counters().icmp_echo_replies.get(), 1u);
}

// Where pings go through the shared raw socket, that socket also sees the
// replies to every other program's pings: none of them reaches the guest.
TEST_P(UsernetFlowsTest, AnotherProgramsPingRepliesNeverReachTheGuest) {
  start();
  if (!net->icmp_available()) GTEST_SKIP() << "neither ping sockets nor CAP_NET_RAW here";
  Bytes icmp(kIcmpHeaderSize + 16);
  icmp[0] = std::byte{icmp_type::kEchoRequest};
  store_be<std::uint16_t>(icmp.data() + 4, 0x4242);
  store_be<std::uint16_t>(icmp.data() + 2, internet_checksum(icmp));
  send(ipv4_frame(ip_proto::kIcmp, kGateway, icmp));
  ASSERT_TRUE(next()) << "the guest's own ping is answered";
  // Another program pings 127.0.0.1 (through a ping socket, or raw as root).
  UniqueFd other(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMP));
  if (!other.valid()) other.reset(::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP));
  ASSERT_TRUE(other.valid());
  Bytes theirs = icmp;
  store_be<std::uint16_t>(theirs.data() + 4, 0x0777);
  store_be<std::uint16_t>(theirs.data() + 2, 0);
  store_be<std::uint16_t>(theirs.data() + 2, internet_checksum(theirs));
  const sockaddr_in lo = [] {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
  }();
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(::sendto(other.get(), theirs.data(), theirs.size(), 0, reinterpret_cast<const sockaddr*>(&lo), sizeof lo),
              static_cast<ssize_t>(theirs.size()));
  EXPECT_FALSE(next(300)) << "nothing for the guest";
  EXPECT_EQ(net->counters().icmp_echo_replies.get(), 1u);
  if (!GetParam().ping_sockets || !host_features().ping_sockets_v4) {
    EXPECT_GE(net->counters().icmp_raw_ignored.get(), 3u) << "the raw socket saw them and dropped them";
  }
}

// The cloud's metadata and credential services live on link-local
// addresses and answer with the host's identity: the guest is refused, and
// told so (RST, ICMP unreachable), unless --allow-link-local.
TEST_P(UsernetFlowsTest, LinkLocalDestinationsAreRefusedAndTheGuestIsTold) {
  start();
  const Ipv4Address imds = Ipv4Address::of(169, 254, 169, 254);
  const TcpFields syn{kGuestPort, 80, kIsn, 0, tcp_flag::kSyn, 0xffff, 1460, {}, false, {}};
  Bytes syn_seg(tcp_header_size(syn));
  write_tcp(syn_seg, syn);
  Checksum sum;
  sum.add(syn_seg);
  store_tcp_checksum(syn_seg, sum, kGuest, imds, syn_seg.size());
  send(ipv4_frame(ip_proto::kTcp, imds, syn_seg));
  auto rst = next();
  ASSERT_TRUE(rst && rst->tcp);
  EXPECT_TRUE(rst->tcp->has(tcp_flag::kRst));
  EXPECT_EQ(rst->ip.src, imds);
  Bytes dgram(kUdpFrameOverhead + 1);
  write_udp_frame(dgram, UdpEndpoints{UsernetConfig{}.gateway_mac, kGuestMac, kGuest, 5000,
                                      Ipv4Address::of(169, 254, 170, 2), 80}, 1);
  send(dgram);
  auto unreachable = next();
  ASSERT_TRUE(unreachable);
  EXPECT_EQ(unreachable->ip.protocol, ip_proto::kIcmp);
  EXPECT_EQ(unreachable->payload[0], std::byte{icmp_type::kDestUnreachable});
  EXPECT_EQ(net->counters().drop_link_local.get(), 2u);
  EXPECT_EQ(net->tcp_flows() + net->datagram_flows(), 0u) << "no host socket was opened";
}

TEST_P(UsernetFlowsTest, TcpHandshakeDataAndFinBothWays) {
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  ASSERT_TRUE(host.valid());
  EXPECT_EQ(net->tcp_flows(), 1u);

  send(tcp(port, kIsn + 1, iss + 1, tcp_flag::kAck | tcp_flag::kPsh, bytes_of("hello")));
  char buf[64];
  ASSERT_TRUE(readable(host.get(), 2000));
  EXPECT_EQ(::recv(host.get(), buf, sizeof buf, 0), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  auto ack = next();
  ASSERT_TRUE(ack && ack->tcp);
  EXPECT_EQ(ack->tcp->ack, kIsn + 6);
  EXPECT_TRUE(ack->payload.empty());

  ASSERT_EQ(::send(host.get(), "world", 5, 0), 5);
  auto data = next();
  ASSERT_TRUE(data && data->tcp);
  EXPECT_EQ(data->tcp->seq, iss + 1);
  EXPECT_EQ(string_of(data->payload), "world");
  send(tcp(port, kIsn + 6, iss + 6, tcp_flag::kAck));

  ::shutdown(host.get(), SHUT_WR);
  auto fin = next();
  ASSERT_TRUE(fin && fin->tcp);
  EXPECT_TRUE(fin->tcp->has(tcp_flag::kFin));
  EXPECT_EQ(fin->tcp->seq, iss + 6);
  // The guest acknowledges the FIN and sends its own.
  send(tcp(port, kIsn + 6, iss + 7, tcp_flag::kAck | tcp_flag::kFin));
  ASSERT_TRUE(readable(host.get(), 2000));
  EXPECT_EQ(::recv(host.get(), buf, sizeof buf, 0), 0);  // EOF at the host peer
  auto last = next();
  ASSERT_TRUE(last && last->tcp);
  EXPECT_EQ(last->tcp->ack, kIsn + 7);
  EXPECT_EQ(net->tcp_flows(), 0u);
  EXPECT_EQ(net->counters().tcp_bytes_to_host.get(), 5u);
  EXPECT_EQ(net->counters().tcp_bytes_to_guest.get(), 5u);
}

TEST_P(UsernetFlowsTest, ARefusedConnectAndAStraySegmentGetResets) {
  start();
  std::uint16_t port = 0;
  { UniqueFd closed = loopback_socket(SOCK_DGRAM, port); }  // a port nobody listens on (TCP)
  send(tcp(port, kIsn, 0, tcp_flag::kSyn, {}, 0xffff, 1460, 7));
  auto rst = next();
  ASSERT_TRUE(rst && rst->tcp);
  EXPECT_EQ(rst->tcp->flags, tcp_flag::kRst | tcp_flag::kAck);
  EXPECT_EQ(rst->tcp->ack, kIsn + 1);
  EXPECT_EQ(net->counters().tcp_connect_refused.get(), 1u);
  EXPECT_EQ(net->tcp_flows(), 0u);
  // A segment for no connection gets a RST too.
  send(tcp(port, kIsn, 777, tcp_flag::kAck, bytes_of("stray")));
  auto rst2 = next();
  ASSERT_TRUE(rst2 && rst2->tcp);
  EXPECT_EQ(rst2->tcp->flags, tcp_flag::kRst);
  EXPECT_EQ(rst2->tcp->seq, 777u);
}

TEST_P(UsernetFlowsTest, AGuestResetResetsTheHostPeer) {
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  send(tcp(port, kIsn + 1, iss + 1, tcp_flag::kRst));
  char buf[8];
  ASSERT_TRUE(readable(host.get(), 2000));
  EXPECT_EQ(::recv(host.get(), buf, sizeof buf, 0), -1);
  EXPECT_EQ(errno, ECONNRESET);
  EXPECT_EQ(net->tcp_flows(), 0u);
}

TEST_P(UsernetFlowsTest, AHostResetReachesTheGuest) {
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  const linger lg{1, 0};
  ::setsockopt(host.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  host.reset();
  auto rst = next();
  ASSERT_TRUE(rst && rst->tcp);
  EXPECT_TRUE(rst->tcp->has(tcp_flag::kRst));
  EXPECT_EQ(net->tcp_flows(), 0u);
}

// The SACK blocks (RFC 2018) of a segment for the guest, as parsed.
std::vector<SackBlock> sack_blocks_of(const Seen& s) {
  return {s.tcp->sack.begin(), s.tcp->sack.begin() + s.tcp->sack_count};
}

TEST_P(UsernetFlowsTest, OutOfOrderGuestDataIsHeldAcknowledgedWithSackAndDeliveredInOrder) {
  start();
  offer_sack = true;
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  ASSERT_TRUE(host.valid());
  const std::string a(1000, 'a'), b(1000, 'b'), c(1000, 'c');
  // c, then b, arrive before a (a was "lost"): each gets a duplicate ACK
  // with SACK blocks, the latest first.
  send(tcp(port, kIsn + 2001, iss + 1, tcp_flag::kAck, bytes_of(c)));
  auto d1 = next();
  ASSERT_TRUE(d1 && d1->tcp);
  EXPECT_EQ(d1->tcp->ack, kIsn + 1);
  auto blocks = sack_blocks_of(*d1);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].left, kIsn + 2001);
  EXPECT_EQ(blocks[0].right, kIsn + 3001);
  send(tcp(port, kIsn + 1001, iss + 1, tcp_flag::kAck, bytes_of(b)));
  auto d2 = next();
  ASSERT_TRUE(d2 && d2->tcp);
  EXPECT_EQ(d2->tcp->ack, kIsn + 1);
  blocks = sack_blocks_of(*d2);
  ASSERT_EQ(blocks.size(), 1u) << "adjacent held segments make one block";
  EXPECT_EQ(blocks[0].left, kIsn + 1001);
  EXPECT_EQ(blocks[0].right, kIsn + 3001);
  EXPECT_FALSE(readable(host.get(), 50)) << "nothing reaches the host before the hole is filled";
  // The hole is filled: everything goes to the host, in order, and the ACK covers it all.
  send(tcp(port, kIsn + 1, iss + 1, tcp_flag::kAck, bytes_of(a)));
  std::string got;
  char buf[4096];
  while (got.size() < 3000 && readable(host.get(), 2000)) {
    const ssize_t n = ::recv(host.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(got, a + b + c);
  std::optional<Seen> ack;
  while (auto f = next(300)) ack = f;
  ASSERT_TRUE(ack && ack->tcp);
  EXPECT_EQ(ack->tcp->ack, kIsn + 3001);
  EXPECT_TRUE(sack_blocks_of(*ack).empty());
  EXPECT_EQ(net->counters().tcp_ooo_bytes_held.get(), 2000u);
  EXPECT_EQ(net->counters().tcp_ooo_bytes_delivered.get(), 2000u);
  EXPECT_EQ(net->counters().tcp_bytes_to_host.get(), 3000u);
}

TEST_P(UsernetFlowsTest, WithoutSackOutOfOrderDataIsStillHeldAndDupAcked) {
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  send(tcp(port, kIsn + 11, iss + 1, tcp_flag::kAck, bytes_of("world")));
  auto dup = next();
  ASSERT_TRUE(dup && dup->tcp);
  EXPECT_EQ(dup->tcp->ack, kIsn + 1);
  EXPECT_TRUE(sack_blocks_of(*dup).empty()) << "SACK was not negotiated";
  send(tcp(port, kIsn + 1, iss + 1, tcp_flag::kAck, bytes_of("hello, the")));
  std::string got;
  char buf[64];
  while (got.size() < 15 && readable(host.get(), 2000)) {
    const ssize_t n = ::recv(host.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  EXPECT_EQ(got, "hello, theworld");
}

TEST_P(UsernetFlowsTest, TheGuestsMssAndWindowBoundWhatIsSent) {
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  // No window scaling; a 1000-byte window and an MSS of 600.
  UniqueFd host = connect_flow(listener.get(), port, 1000, std::nullopt, 600);
  std::string data(5000, 'x');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(::send(host.get(), data.data(), data.size(), 0), 5000);
  auto s1 = next();
  auto s2 = next();
  ASSERT_TRUE(s1 && s2);
  EXPECT_EQ(s1->payload.size(), 600u);
  EXPECT_EQ(s2->payload.size(), 400u);  // the window is full now
  // Nothing beyond the window (a slow machine may see the 250 ms timer
  // resend what is in flight meanwhile).
  while (auto more = next(300)) {
    ASSERT_TRUE(more->tcp);
    EXPECT_TRUE(seq_le(more->tcp->seq + static_cast<std::uint32_t>(more->payload.size()), iss + 1001))
        << "sent beyond the guest's window";
  }
  // Acknowledging 1000 bytes opens the window again.
  send(tcp(port, kIsn + 1, iss + 1001, tcp_flag::kAck, {}, 1000));
  auto s3 = next();
  ASSERT_TRUE(s3 && s3->tcp);
  EXPECT_EQ(s3->tcp->seq, iss + 1001);
  EXPECT_EQ(string_of(s3->payload), data.substr(1000, 600));
}

// A guest that advertises a large window and acknowledges late: with a peek
// offset all of it may be in flight; without one, in-flight bytes are peeked
// again into the discard area, which bounds them. Either way every byte
// arrives once, in order.
TEST_P(UsernetFlowsTest, ALargeWindowIsFilledByteExactWithOrWithoutAPeekOffset) {
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port, 0xffff, 7, 65000);  // window 8 MiB
  std::string data(3 << 20, 'z');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  std::size_t written = 0;
  std::string got;
  std::size_t largest_burst = 0;  // bytes in flight when the guest acknowledges
  for (int round = 0; round < 2000 && got.size() < data.size(); ++round) {
    while (written < data.size()) {
      const ssize_t n = ::send(host.get(), data.data() + written, data.size() - written, MSG_DONTWAIT);
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    // Take everything usernet sends now, then acknowledge it all at once.
    const std::size_t before = got.size();
    while (auto d = next(got.size() == before ? 200 : 0)) {
      ASSERT_TRUE(d->tcp);
      ASSERT_EQ(d->tcp->seq, iss + 1 + static_cast<std::uint32_t>(got.size())) << "in order, nothing repeated";
      got += string_of(d->payload);
    }
    largest_burst = std::max(largest_burst, got.size() - before);
    send(tcp(port, kIsn + 1, iss + 1 + static_cast<std::uint32_t>(got.size()), tcp_flag::kAck, {}, 0xffff));
  }
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data) << "byte-exact";
  if (GetParam().peek_offset && host_features().tcp_peek_off_v4) {
    EXPECT_EQ(net->counters().tcp_bytes_repeeked.get(), 0u);
  } else {
    EXPECT_GT(net->counters().tcp_bytes_repeeked.get(), 0u) << "in-flight bytes were peeked again";
    EXPECT_LE(largest_burst, TcpFlows::kPeekFallbackWindow);
  }
  EXPECT_GT(largest_burst, 65000u) << "more than one segment in flight";
}

// The guest's flows may hold only their share of the open files: past it a
// SYN is answered with RST and a datagram flow is refused
// (Destination Unreachable), both counted, while the flows that exist carry
// on; a closed flow frees its share.
TEST_P(UsernetFlowsTest, FlowsBeyondTheOpenFileBudgetAreRefusedAndExistingOnesCarryOn) {
  UsernetConfig cfg;
  cfg.flow_fds = 3;
  start(cfg);
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  std::vector<UniqueFd> hosts;
  for (std::uint16_t i = 0; i < 3; ++i) {
    send(tcp(port, kIsn, 0, tcp_flag::kSyn, {}, 0xffff, 1460, 7));
    ASSERT_TRUE(readable(listener.get(), 2000));
    hosts.emplace_back(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    auto synack = next();
    ASSERT_TRUE(synack && synack->tcp);
    ASSERT_EQ(synack->tcp->flags, tcp_flag::kSyn | tcp_flag::kAck);
    send(tcp(port, kIsn + 1, synack->tcp->seq + 1, tcp_flag::kAck));
    // tcp() always sends from kGuestPort: the next flow goes to a new port.
    listener = loopback_socket(SOCK_STREAM, port);
  }
  EXPECT_EQ(net->tcp_flows(), 3u);
  send(tcp(port, kIsn, 0, tcp_flag::kSyn, {}, 0xffff, 1460, 7));
  auto rst = next();
  ASSERT_TRUE(rst && rst->tcp);
  EXPECT_TRUE(rst->tcp->has(tcp_flag::kRst));
  EXPECT_FALSE(readable(listener.get(), 100)) << "no host connect was made";
  EXPECT_EQ(net->counters().flows_refused_fd_limit.get(), 1u);
  send(udp(kGateway, 5000, 5001, bytes_of("x")));
  EXPECT_EQ(net->counters().flows_refused_fd_limit.get(), 2u);
  EXPECT_EQ(net->datagram_flows(), 0u);
  // The guest hears why: Destination Unreachable (administratively
  // prohibited) from the gateway, quoting its IP header and UDP header.
  auto unreachable = next();
  ASSERT_TRUE(unreachable);
  EXPECT_EQ(unreachable->ip.protocol, ip_proto::kIcmp);
  EXPECT_EQ(unreachable->ip.src, kGateway);
  ASSERT_EQ(unreachable->payload.size(), kIcmpHeaderSize + kIpv4HeaderSize + 8);
  EXPECT_EQ(unreachable->payload[0], std::byte{icmp_type::kDestUnreachable});
  EXPECT_EQ(unreachable->payload[1], std::byte{icmp_unreachable::kAdminProhibited});
  EXPECT_EQ(internet_checksum(unreachable->payload), 0);
  EXPECT_EQ(load_be<std::uint16_t>(unreachable->payload.data() + kIcmpHeaderSize + kIpv4HeaderSize + 2), 5001)
      << "the quoted UDP header";
  // An existing flow still carries data.
  ASSERT_EQ(::send(hosts[2].get(), "ok", 2, 0), 2);
  auto data = next();
  ASSERT_TRUE(data && data->tcp);
  EXPECT_EQ(string_of(data->payload), "ok");
  // A host reset ends a flow: its share goes back, and a new SYN is taken.
  const linger lg{1, 0};
  ::setsockopt(hosts[0].get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  hosts[0].reset();
  for (int i = 0; i < 100 && net->tcp_flows() == 3; ++i) (void)next(10);
  EXPECT_EQ(net->tcp_flows(), 2u);
  send(tcp(port, kIsn, 0, tcp_flag::kSyn, {}, 0xffff, 1460, 7));
  EXPECT_TRUE(readable(listener.get(), 2000)) << "the freed share lets a new connection through";
}

TEST_P(UsernetFlowsTest, ThreeDuplicateAcksResendFromTheFirstUnacknowledgedByte) {
  fake_time = true;  // only the duplicate ACKs may cause a resend, never a timeout on a slow machine
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  std::string data;
  UniqueFd host = segments_in_flight(listener.get(), port, 3000, data);  // the guest "loses" the second segment
  send(tcp(port, kIsn + 1, iss + 1001, tcp_flag::kAck));  // the first segment arrived
  for (int i = 0; i < 3; ++i) send(tcp(port, kIsn + 1, iss + 1001, tcp_flag::kAck));
  auto again = next();
  ASSERT_TRUE(again && again->tcp);
  EXPECT_EQ(again->tcp->seq, iss + 1001);
  EXPECT_EQ(string_of(again->payload), data.substr(1000, 1000));
  EXPECT_EQ(net->counters().tcp_retransmits.get(), 1u);
}

TEST_P(UsernetFlowsTest, UnacknowledgedDataIsResentWhenTheTimerExpires) {
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  ASSERT_EQ(::send(host.get(), "lost", 4, 0), 4);
  auto first = next();
  ASSERT_TRUE(first && first->tcp);
  auto again = next(3000);  // no ACK: resent after the retransmission timeout
  ASSERT_TRUE(again && again->tcp);
  EXPECT_EQ(again->tcp->seq, first->tcp->seq);
  EXPECT_EQ(string_of(again->payload), "lost");
}

TEST_P(UsernetFlowsTest, AFullHostSocketAcksOnlyWhatItTookAndAsksForTheRestLater) {
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  // The host peer does not read: push until usernet stops taking data.
  const Bytes chunk(60000, std::byte{0x5a});
  std::uint32_t seq = kIsn + 1;
  std::uint32_t acked = seq;
  for (int i = 0; i < 200 && net->counters().tcp_socket_full.get() == 0; ++i) {
    send(tcp(port, seq, iss + 1, tcp_flag::kAck, chunk));
    seq += static_cast<std::uint32_t>(chunk.size());
    while (auto a = next(0)) acked = a->tcp->ack;
  }
  ASSERT_GT(net->counters().tcp_socket_full.get(), 0u);
  EXPECT_LT(static_cast<std::int32_t>(acked - seq), 0);
  // Drain the host side: usernet sends three duplicate ACKs at the byte it wants next.
  std::vector<char> sink(1 << 20);
  std::size_t total = 0;
  const std::size_t expected = acked - (kIsn + 1);
  while (total < expected && readable(host.get(), 2000))
    total += static_cast<std::size_t>(std::max<ssize_t>(::recv(host.get(), sink.data(), sink.size(), 0), 0));
  EXPECT_EQ(total, expected);
  int dups = 0;
  while (auto a = next(300)) {
    if (a->tcp && a->tcp->ack == acked && a->payload.empty()) ++dups;
  }
  EXPECT_EQ(dups, 3);
}

// Host -> guest recovery with SACK: the guest lost segments 2 and 4 of six
// and SACKed the others; only those two are sent again, each once.
TEST_P(UsernetFlowsTest, OnlyTheHolesTheGuestsSackBlocksLeaveAreSentAgain) {
  fake_time = true;  // only the SACK blocks may cause a resend, never a timeout on a slow machine
  offer_sack = true;
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  std::string data;
  UniqueFd host = segments_in_flight(listener.get(), port, 6000, data);
  const std::uint32_t base = iss + 1;
  const std::array<SackBlock, 2> b1{SackBlock{base + 2000, base + 3000}};
  const std::array<SackBlock, 2> b2{SackBlock{base + 4000, base + 6000}, SackBlock{base + 2000, base + 3000}};
  send(tcp(port, kIsn + 1, base + 1000, tcp_flag::kAck, {}, 0xffff, {}, {}, std::span(b1).first(1)));
  send(tcp(port, kIsn + 1, base + 1000, tcp_flag::kAck, {}, 0xffff, {}, {}, b2));
  send(tcp(port, kIsn + 1, base + 1000, tcp_flag::kAck, {}, 0xffff, {}, {}, b2));
  std::vector<std::pair<std::uint32_t, std::string>> resent;
  while (auto s = next(200)) {
    if (s->tcp && !s->payload.empty()) resent.emplace_back(s->tcp->seq - base, string_of(s->payload));
  }
  ASSERT_EQ(resent.size(), 2u);
  EXPECT_EQ(resent[0].first, 1000u);
  EXPECT_EQ(resent[0].second, data.substr(1000, 1000));
  EXPECT_EQ(resent[1].first, 3000u);
  EXPECT_EQ(resent[1].second, data.substr(3000, 1000));
  EXPECT_EQ(net->counters().tcp_fast_recoveries.get(), 1u);
  EXPECT_EQ(net->counters().tcp_retransmits.get(), 2u);
  // Everything acknowledged: recovery ends, nothing more is sent, and new
  // data goes out as usual.
  acked_then_new_data(port, host.get(), base + 6000);
}

// SACK blocks on a segment that carries data (a bidirectional flow) count
// as much as on a pure duplicate ACK.
TEST_P(UsernetFlowsTest, SackBlocksOnADataSegmentAreTakenToo) {
  fake_time = true;  // no retransmission timeout while the test reads
  offer_sack = true;
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  std::string data;
  UniqueFd host = segments_in_flight(listener.get(), port, 6000, data);
  const std::uint32_t base = iss + 1;
  const std::array<SackBlock, 1> held{SackBlock{base + 2000, base + 6000}};
  send(tcp(port, kIsn + 1, base + 1000, tcp_flag::kAck));  // the first segment arrived
  send(tcp(port, kIsn + 1, base + 1000, tcp_flag::kAck | tcp_flag::kPsh, bytes_of("hi"), 0xffff, {}, {}, held));
  while (next(50)) {
  }
  send(tcp(port, kIsn + 3, base + 1000, tcp_flag::kAck));  // one duplicate ACK, no blocks of its own
  std::vector<std::uint32_t> resent;
  while (auto f = next(200))
    if (f->tcp && !f->payload.empty()) resent.push_back(f->tcp->seq - base);
  EXPECT_EQ(resent, std::vector<std::uint32_t>{1000}) << "the hole the data segment's blocks showed";
}

// SACK blocks outside the data in flight come from a confused or hostile
// guest: ignored and counted, never followed. D-SACKs are told apart.
TEST_P(UsernetFlowsTest, SackBlocksOutsideTheDataInFlightAreIgnored) {
  offer_sack = true;
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port, 0xffff, 0, 1000);
  ASSERT_EQ(::send(host.get(), std::string(2000, 'z').data(), 2000, 0), 2000);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(next());
  const std::uint32_t base = iss + 1;
  const std::array<SackBlock, 3> bad{SackBlock{base + 1500, base + 90000}, SackBlock{base - 5000, base + 10},
                                     SackBlock{base + 800, base + 700}};
  send(tcp(port, kIsn + 1, base, tcp_flag::kAck, {}, 0xffff, {}, {}, bad));
  EXPECT_EQ(net->counters().tcp_sack_blocks_ignored.get(), 3u);
  // A D-SACK (RFC 2883) is no error: data below the ACK arrived twice.
  const std::array<SackBlock, 1> dsack{SackBlock{base - 500, base - 10}};
  send(tcp(port, kIsn + 1, base, tcp_flag::kAck, {}, 0xffff, {}, {}, dsack));
  EXPECT_EQ(net->counters().tcp_dsack_blocks.get(), 1u);
  EXPECT_EQ(net->counters().tcp_sack_blocks_ignored.get(), 3u);
  EXPECT_EQ(net->tcp_flows(), 1u);
}

// A guest that shuts its window is probed on the retransmission timer; the
// flow lives while the guest answers the probes and resumes when it opens.
TEST_P(UsernetFlowsTest, AZeroWindowIsProbedAndTheFlowResumesWhenItOpens) {
  fake_time = true;
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port, 0, 0, 1000);  // window 0
  ASSERT_EQ(::send(host.get(), "waiting", 7, 0), 7);
  EXPECT_FALSE(next(100)) << "nothing may be sent into a zero window";
  for (int probe = 0; probe < 12; ++probe) {  // more probes than kMaxRetries: answered ones do not count
    advance(RttEstimator::kMaxRtoMs);
    auto p = next(100);
    ASSERT_TRUE(p && p->tcp) << "probe " << probe;
    EXPECT_TRUE(p->payload.empty());
    EXPECT_EQ(p->tcp->seq, iss) << "one below snd_una";
    send(tcp(port, kIsn + 1, iss + 1, tcp_flag::kAck, {}, 0));  // still shut
  }
  EXPECT_GE(net->counters().tcp_window_probes.get(), 12u);
  EXPECT_EQ(net->tcp_flows(), 1u);
  send(tcp(port, kIsn + 1, iss + 1, tcp_flag::kAck, {}, 0xffff));  // open
  auto data = next();
  ASSERT_TRUE(data && data->tcp);
  EXPECT_EQ(string_of(data->payload), "waiting");
}

// A guest that stops acknowledging is given up on after kMaxRetries
// timeouts with backoff -- a bounded time -- and both ends are reset.
TEST_P(UsernetFlowsTest, AGuestThatStopsAnsweringIsAbandonedInBoundedTimeAndTheHostPeerReset) {
  fake_time = true;
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  ASSERT_EQ(::send(host.get(), "hello?", 6, 0), 6);
  ASSERT_TRUE(next());
  std::uint64_t waited = 0;
  int resends = 0;
  bool reset = false;
  while (!reset && waited < 300'000) {
    advance(100);
    waited += 100;
    while (auto s = next(0)) {
      if (s->tcp && s->tcp->has(tcp_flag::kRst)) reset = true;
      else if (s->tcp && string_of(s->payload) == "hello?") ++resends;
    }
  }
  ASSERT_TRUE(reset) << "the guest is told with a RST";
  EXPECT_EQ(resends, static_cast<int>(TcpFlows::kMaxRetries));
  EXPECT_LT(waited, 120'000u) << "abandoned within two minutes";
  EXPECT_EQ(net->counters().tcp_timeouts.get(), 1u);
  EXPECT_EQ(net->tcp_flows(), 0u);
  char c = 0;
  EXPECT_EQ(::recv(host.get(), &c, 1, 0), -1);
  EXPECT_EQ(errno, ECONNRESET) << "the host peer sees a reset";
}

// The timeout follows the measured round trip (RFC 6298): once a few
// segments have been timed, a guest that takes 300 ms to acknowledge is not
// sent data again at the 200 ms floor the handshake's instant answer set.
TEST_P(UsernetFlowsTest, TheRetransmissionTimeoutFollowsTheMeasuredRoundTrip) {
  fake_time = true;
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  std::uint32_t acked = iss + 1;
  std::uint64_t learning = 0;
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(::send(host.get(), "abcd", 4, 0), 4);
    while (auto d = next(0)) {}  // the segment (and, while learning, its spurious resend)
    advance(300);
    while (auto d = next(0)) {}
    acked += 4;
    send(tcp(port, kIsn + 1, acked, tcp_flag::kAck));
    if (i == 2) learning = net->counters().tcp_rto_expired.get();
  }
  EXPECT_LE(learning, 2u) << "the first slow ACKs may time out once each";
  EXPECT_EQ(net->counters().tcp_rto_expired.get(), learning) << "none once the round trip is known";
  ASSERT_EQ(::send(host.get(), "late", 4, 0), 4);
  ASSERT_TRUE(next());
  advance(350);
  EXPECT_FALSE(next(0)) << "not resent within one measured round trip";
  advance(2000);
  auto again = next(0);
  ASSERT_TRUE(again && again->tcp);
  EXPECT_EQ(string_of(again->payload), "late");
  EXPECT_EQ(net->counters().tcp_rto_expired.get(), learning + 1);
}

// After a timeout sent usernet back to the first unacknowledged byte, an
// ACK for bytes the guest already had (beyond the new snd_nxt) is taken,
// and what the guest SACKed is not sent again.
TEST_P(UsernetFlowsTest, AfterATimeoutSackedDataIsSkippedAndLaterAcksAreTaken) {
  fake_time = true;
  offer_sack = true;
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  std::string data;
  UniqueFd host = segments_in_flight(listener.get(), port, 3000, data);
  const std::uint32_t base = iss + 1;
  const std::array<SackBlock, 1> b{SackBlock{base + 1000, base + 3000}};
  send(tcp(port, kIsn + 1, base, tcp_flag::kAck, {}, 0xffff, {}, {}, b));  // one dup ACK: no recovery yet
  advance(RttEstimator::kInitialRtoMs);
  std::vector<std::uint32_t> sent;
  while (auto s = next(0))
    if (s->tcp && !s->payload.empty()) sent.push_back(s->tcp->seq - base);
  ASSERT_EQ(sent, std::vector<std::uint32_t>{0}) << "only the segment the guest lacks";
  acked_then_new_data(port, host.get(), base + 3000);
}

// With the consumer's offloads (a TAP with TUNSETOFFLOAD), data toward it
// goes in segments of up to 64 KiB with TSO metadata (gso_size the guest's
// MSS) and a partial checksum: the pseudo-header's sum in the field, which
// the consumer completes over the segment.
TEST_P(UsernetFlowsTest, WithOffloadsDataGoesInLargeSegmentsWithPartialChecksums) {
  start();
  net->set_rx_offloads(net::RxOffloads{true, true});
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port, 0xffff, 7, 1460);
  std::string data(200000, ' ');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 23);
  ASSERT_EQ(::send(host.get(), data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
  ASSERT_TRUE(readable(net->rx_fd(), 2000));
  Bytes b(65600);
  const iovec iov{b.data(), b.size()};
  net::RxResult r{};
  for (int i = 0; i < 200 && r.status != net::RxStatus::frame; ++i) {
    r = net->receive(std::span(&iov, 1));
    if (r.status != net::RxStatus::frame) readable(net->rx_fd(), 10);
  }
  ASSERT_EQ(r.status, net::RxStatus::frame);
  b.resize(r.written);
  EXPECT_EQ(r.header.flags, net::NetHeader::kFlagNeedsCsum);
  EXPECT_EQ(r.header.gso_type, net::NetHeader::kGsoTcpV4);
  EXPECT_EQ(r.header.gso_size, 1460);
  EXPECT_EQ(r.header.csum_start, kEthernetHeaderSize + kIpv4HeaderSize);
  EXPECT_EQ(r.header.csum_offset, 16);
  EXPECT_EQ(r.header.hdr_len, kEthernetHeaderSize + kIpv4HeaderSize + kTcpHeaderSize);
  const std::size_t payload = b.size() - r.header.hdr_len;
  EXPECT_GT(payload, 1460u * 20) << "far more than one MSS";
  EXPECT_EQ(string_of(std::span(b).subspan(r.header.hdr_len)), data.substr(0, payload));
  // Complete the checksum as the consumer would, then check it whole.
  const auto segment = std::span(b).subspan(r.header.csum_start);
  store_be<std::uint16_t>(segment.data() + r.header.csum_offset, static_cast<std::uint16_t>(internet_checksum(segment)));
  Checksum whole;
  add_ipv4_pseudo_header(whole, kGateway.value, kGuest.value, ip_proto::kTcp, static_cast<std::uint16_t>(segment.size()));
  whole.add(segment);
  EXPECT_EQ(whole.finish(), 0) << "a valid TCP checksum once completed";
}

// A connect the host side never answers (a listener whose accept queue is
// full drops SYNs) ends after kConnectTimeoutMs: counted, its socket
// closed, and the guest left to its own SYN timeout, as after a lost SYN.
TEST_P(UsernetFlowsTest, AConnectThatIsNeverAnsweredEndsAfterTheConnectTimeout) {
  fake_time = true;
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  ASSERT_EQ(::listen(listener.get(), 0), 0);
  UniqueFd filler(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_in sa = loopback(port);
  ASSERT_EQ(::connect(filler.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);  // the queue is full
  send(tcp(port, kIsn, 0, tcp_flag::kSyn, {}, 0xffff, 1460, 7));
  EXPECT_FALSE(next(300)) << "no SYN-ACK: the host never answered";
  EXPECT_EQ(net->tcp_flows(), 1u);
  advance(TcpFlows::kConnectTimeoutMs - 1000);
  EXPECT_EQ(net->tcp_flows(), 1u);
  advance(2000);
  EXPECT_EQ(net->tcp_flows(), 0u);
  EXPECT_EQ(net->counters().tcp_connect_timeouts.get(), 1u);
  EXPECT_FALSE(next(0)) << "silent toward the guest";
}

// A guest's keepalive probe (one byte below what was acknowledged, with or
// without a byte of old data) is answered with an ACK, and nothing reaches
// the host peer.
TEST_P(UsernetFlowsTest, KeepaliveProbesFromTheGuestAreAnsweredAndGoNowhere) {
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  send(tcp(port, kIsn + 1, iss + 1, tcp_flag::kAck | tcp_flag::kPsh, bytes_of("abc")));
  auto ack = next();
  ASSERT_TRUE(ack && ack->tcp);
  for (const Bytes& probe : {Bytes{}, bytes_of("c")}) {
    send(tcp(port, kIsn + 3, iss + 1, tcp_flag::kAck, probe));
    auto answer = next();
    ASSERT_TRUE(answer && answer->tcp) << "a probe of " << probe.size() << " bytes";
    EXPECT_EQ(answer->tcp->ack, kIsn + 4);
    EXPECT_TRUE(answer->payload.empty());
  }
  char buf[8] = {};
  ASSERT_TRUE(readable(host.get(), 1000));
  EXPECT_EQ(::recv(host.get(), buf, sizeof buf, MSG_DONTWAIT), 3) << "only the data, once";
  EXPECT_FALSE(readable(host.get(), 100));
  EXPECT_EQ(net->tcp_flows(), 1u);
}

// FIN-WAIT-2 is bounded: our FIN was acknowledged and the guest then said
// nothing for kFinWaitMs; the flow is closed and both ends reset.
TEST_P(UsernetFlowsTest, FinWaitEndsWhenTheGuestStaysSilent) {
  fake_time = true;
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  ::shutdown(host.get(), SHUT_WR);
  auto fin = next();
  ASSERT_TRUE(fin && fin->tcp && fin->tcp->has(tcp_flag::kFin));
  send(tcp(port, kIsn + 1, iss + 2, tcp_flag::kAck));
  advance(TcpFlows::kFinWaitMs / 2);
  EXPECT_EQ(net->tcp_flows(), 1u);
  send(tcp(port, kIsn + 1, iss + 2, tcp_flag::kAck));  // the guest is still there
  advance(TcpFlows::kFinWaitMs / 2 + 1000);
  EXPECT_EQ(net->tcp_flows(), 1u) << "its last segment restarted the wait";
  advance(TcpFlows::kFinWaitMs);
  EXPECT_EQ(net->tcp_flows(), 0u);
  EXPECT_EQ(net->counters().tcp_fin_wait_timeouts.get(), 1u);
}

std::string fmt_forward(const char* proto, std::uint16_t host, std::uint16_t guest) {
  return std::string(proto) + ":" + std::to_string(host) + ":" + std::to_string(guest);
}

std::uint16_t free_port(int type) {
  std::uint16_t port = 0;
  UniqueFd s = loopback_socket(type, port);
  return port;
}

TEST_P(UsernetFlowsTest, TheWindowOfferedIsWhatTheHostSocketCanTakeSoAGuestThatHonoursItLosesNothing) {
  start();
  std::uint16_t port = 0;
  UniqueFd listener = loopback_socket(SOCK_STREAM, port);
  UniqueFd host = connect_flow(listener.get(), port);
  // The host peer does not read. The guest sends only what the window
  // allows: the window closes, and no segment is refused on the way.
  std::uint32_t seq = kIsn + 1;
  std::uint32_t window = 0xffff;
  std::uint32_t right_edge = seq + window;
  std::uint32_t last_window = 1;
  for (int i = 0; i < 2000; ++i) {
    const std::uint32_t allowed = right_edge - seq;
    if (allowed == 0) break;
    const Bytes chunk(std::min<std::uint32_t>(allowed, 60000), std::byte{0x33});
    send(tcp(port, seq, iss + 1, tcp_flag::kAck, chunk));
    seq += static_cast<std::uint32_t>(chunk.size());
    while (auto a = next(0)) {
      ASSERT_TRUE(a->tcp);
      last_window = std::uint32_t{a->tcp->window} << 7;
      right_edge = a->tcp->ack + last_window;
      EXPECT_LE(static_cast<std::int32_t>(a->tcp->ack - seq), 0);
    }
  }
  EXPECT_EQ(net->counters().tcp_socket_full.get(), 0u);
  EXPECT_EQ(net->counters().tcp_out_of_order.get(), 0u);
  EXPECT_LT(last_window, 1500u) << "the window closes when the socket is full";
  const std::size_t sent = seq - (kIsn + 1);
  // The host reads: everything arrives, and a window update reopens the window.
  std::vector<char> sink(1 << 20);
  std::size_t total = 0;
  while (total < sent && readable(host.get(), 2000))
    total += static_cast<std::size_t>(std::max<ssize_t>(::recv(host.get(), sink.data(), sink.size(), 0), 0));
  EXPECT_EQ(total, sent);
  std::uint32_t reopened = 0;
  while (auto a = next(300)) {
    if (a->tcp && a->tcp->ack == seq) reopened = std::max<std::uint32_t>(reopened, std::uint32_t{a->tcp->window} << 7);
  }
  EXPECT_GT(reopened, 60000u);
}

// On an IPv4 listener (the default 127.0.0.1) and an IPv6 one ([::1]): the
// guest is reached over IPv4 either way.
TEST_P(UsernetFlowsTest, ATcpPortForwardOpensAConnectionTowardTheGuest) {
  for (const char* host : {"127.0.0.1", "::1"}) {
    SCOPED_TRACE(host);
    tcp_forward_reaches_the_guest(*IpAddress::parse(host));
    net.reset();
  }
}

void UsernetFlowsTest::tcp_forward_reaches_the_guest(const IpAddress& host) {
  UsernetConfig cfg;
  const std::uint16_t host_port = free_port(SOCK_STREAM);
  cfg.forwards = {*parse_forward("tcp:" + host.to_uri_host() + ":" + std::to_string(host_port) + ":8080")};
  start(cfg);
  send(tcp(9, 1, 1, tcp_flag::kRst));  // any frame: usernet learns the guest's MAC
  const SocketAddress sa(host, host_port);
  UniqueFd client(::socket(sa.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(client.get(), sa.get(), sa.length()), 0);
  ASSERT_EQ(::send(client.get(), "from host", 9, 0), 9);
  auto syn = next();
  ASSERT_TRUE(syn && syn->tcp);
  EXPECT_EQ(syn->tcp->flags, tcp_flag::kSyn);
  EXPECT_EQ(syn->tcp->dst_port, 8080);
  EXPECT_EQ(syn->ip.src, kGateway);
  EXPECT_TRUE(syn->tcp->mss && syn->tcp->wscale);
  // The guest's SYN-ACK, from port 8080 to the port usernet chose.
  TcpFields t{8080, syn->tcp->src_port, 5000, syn->tcp->seq + 1, tcp_flag::kSyn | tcp_flag::kAck, 0xffff, 1460, 7, false, {}};
  Bytes seg(tcp_header_size(t));
  write_tcp(seg, t);
  Checksum sum;
  sum.add(seg);
  store_tcp_checksum(seg, sum, kGuest, kGateway, seg.size());
  send(ipv4_frame(ip_proto::kTcp, kGateway, seg));
  std::optional<Seen> ack, data;
  for (int i = 0; i < 2; ++i) {
    auto f = next();
    ASSERT_TRUE(f && f->tcp);
    (f->payload.empty() ? ack : data) = f;
  }
  ASSERT_TRUE(ack && data);
  EXPECT_EQ(ack->tcp->ack, 5001u);
  EXPECT_EQ(string_of(data->payload), "from host");
  EXPECT_EQ(net->counters().tcp_forwards_accepted.get(), 1u);
}

TEST_P(UsernetFlowsTest, AUdpPortForwardDeliversToTheGuestAndAnswersTheHostPeer) {
  for (const char* host : {"127.0.0.1", "::1"}) {
    SCOPED_TRACE(host);
    udp_forward_reaches_the_guest(*IpAddress::parse(host));
    net.reset();
  }
}

void UsernetFlowsTest::udp_forward_reaches_the_guest(const IpAddress& host) {
  UsernetConfig cfg;
  const std::uint16_t host_port = free_port(SOCK_DGRAM);
  cfg.forwards = {*parse_forward("udp:" + host.to_uri_host() + ":" + std::to_string(host_port) + ":5353")};
  start(cfg);
  send(tcp(9, 1, 1, tcp_flag::kRst));  // usernet learns the guest's MAC
  const SocketAddress sa(host, host_port);
  UniqueFd client(::socket(sa.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::sendto(client.get(), "question", 8, 0, sa.get(), sa.length()), 8);
  auto q = next();
  ASSERT_TRUE(q && q->udp);
  EXPECT_EQ(q->udp->dst_port, 5353);
  EXPECT_EQ(q->ip.src, kGateway);
  EXPECT_EQ(string_of(q->payload), "question");
  send(udp(kGateway, 5353, q->udp->src_port, bytes_of("answer")));
  ASSERT_TRUE(readable(client.get(), 2000));
  char buf[16];
  EXPECT_EQ(::recv(client.get(), buf, sizeof buf, 0), 6);
  EXPECT_EQ(std::string(buf, 6), "answer");
}

TEST_P(UsernetFlowsTest, PcapRecordsEveryFrameBothWays) {
  char path[] = "/tmp/vnk-pcap-XXXXXX";
  UniqueFd tmp(::mkstemp(path));
  UsernetConfig cfg;
  cfg.pcap_path = path;
  start(cfg);
  std::uint16_t port = 0;
  UniqueFd peer = loopback_socket(SOCK_DGRAM, port);
  const Bytes out = udp(kGateway, 5555, port, bytes_of("captured"));
  send(out);
  ASSERT_TRUE(readable(peer.get(), 2000));
  char buf[64];
  sockaddr_in from{};
  socklen_t fl = sizeof from;
  ::recvfrom(peer.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
  ::sendto(peer.get(), "reply!", 6, 0, reinterpret_cast<sockaddr*>(&from), fl);
  auto in = next();
  ASSERT_TRUE(in);
  EXPECT_EQ(net->pcap_frames(), 2u);
  net.reset();
  // File header (24 bytes), then per frame a 16-byte record header and the bytes.
  std::vector<std::byte> file(4096);
  const ssize_t n = ::pread(tmp.get(), file.data(), file.size(), 0);
  ::unlink(path);
  ASSERT_EQ(static_cast<std::size_t>(n), 24 + 16 + out.size() + 16 + in->frame.size());
  EXPECT_EQ(load_le<std::uint32_t>(file.data()), 0xa1b2c3d4u);
  EXPECT_EQ(load_le<std::uint32_t>(file.data() + 20), 1u);  // Ethernet
  EXPECT_EQ(load_le<std::uint32_t>(file.data() + 24 + 8), out.size());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), file.begin() + 40));
  const std::size_t second = 40 + out.size();
  EXPECT_EQ(load_le<std::uint32_t>(file.data() + second + 8), in->frame.size());
  EXPECT_TRUE(std::equal(in->frame.begin(), in->frame.end(), file.begin() + static_cast<std::ptrdiff_t>(second + 16)));
}

// Thousands of flows with an ICMP error pending (a guest's UDP flood to
// closed ports) keep their sockets readable until the error is read: taking
// host events stays bounded, and the flows' errors are read and counted.
TEST_P(UsernetFlowsTest, AUdpFloodToClosedPortsNeverStallsUsernet) {
  raise_fd_limit();
  constexpr std::uint16_t kFlows = 1500;  // beyond what one poll takes (UserNet::kPollRounds x 64)
  if (FdBudget().limit() <= kFlows) GTEST_SKIP() << "the hard RLIMIT_NOFILE here is too low";
  UsernetConfig cfg;
  cfg.host_only = true;
  start(cfg);
  for (std::uint16_t i = 0; i < kFlows; ++i) {
    const std::uint16_t closed = free_port(SOCK_DGRAM);
    send(udp(kGateway, static_cast<std::uint16_t>(20000 + i), closed, bytes_of("x")));
  }
  std::uint16_t echo_port = 0;
  UniqueFd echo = loopback_socket(SOCK_DGRAM, echo_port);
  send(udp(kGateway, 5000, echo_port, bytes_of("alive?")));
  ASSERT_TRUE(readable(echo.get(), 2000));
  sockaddr_in from{};
  socklen_t len = sizeof from;
  char buf[16];
  const ssize_t n = ::recvfrom(echo.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
  ASSERT_EQ(n, 6);
  ::sendto(echo.get(), "alive!", 6, 0, reinterpret_cast<sockaddr*>(&from), len);
  std::optional<Seen> reply;
  for (int i = 0; i < 400 && !(reply && reply->udp && reply->udp->dst_port == 5000); ++i) reply = next(10);
  ASSERT_TRUE(reply && reply->udp) << "usernet answers while the flood's errors are pending";
  EXPECT_EQ(string_of(reply->payload), "alive!");
  EXPECT_GT(net->counters().udp_recv_errors.get(), 0u);
}

TEST_P(UsernetFlowsTest, AFullUdpTableNeverEvictsAForwardListenerOrItsPeers) {
  // A full table holds kMaxFlows sockets: take the open files vnetkit would.
  raise_fd_limit();
  if (FdBudget().limit() <= DatagramFlows::kMaxFlows)
    GTEST_SKIP() << "the hard RLIMIT_NOFILE here is too low for " << DatagramFlows::kMaxFlows << " sockets";
  UsernetConfig cfg;
  const std::uint16_t host_port = free_port(SOCK_DGRAM);
  cfg.forwards = {*parse_forward(fmt_forward("udp", host_port, 5353))};
  cfg.host_only = true;
  start(cfg);
  std::uint16_t sink_port = 0;
  UniqueFd sink = loopback_socket(SOCK_DGRAM, sink_port);
  send(udp(kGateway, 10000, sink_port, bytes_of("x")));  // the guest is known
  // A host client's datagram through the forward opens a peer flow. The
  // client is connected: it takes answers only from the forward's port.
  UniqueFd client(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const sockaddr_in sa = loopback(host_port);
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::sendto(client.get(), "first", 5, 0, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 5);
  std::optional<Seen> first;
  while ((first = next()) && !(first->udp && first->udp->dst_port == 5353)) {
  }
  ASSERT_TRUE(first);
  send(udp(kGateway, 10000, sink_port, bytes_of("y")));  // the peer flow is now the least recently used
  // Fill the table (and one more) with guest flows to the gateway.
  for (std::size_t i = 1; i < DatagramFlows::kMaxFlows; ++i)
    send(udp(kGateway, static_cast<std::uint16_t>(10000 + i), sink_port, bytes_of("x")));
  EXPECT_EQ(net->counters().flows_evicted.get(), 1u);
  // The guest's answer to the host client still finds its peer flow.
  send(udp(kGateway, 5353, first->udp->src_port, bytes_of("answer")));
  ASSERT_TRUE(readable(client.get(), 2000)) << "the forward's peer flow was evicted";
  char reply[16] = {};
  EXPECT_EQ(::recv(client.get(), reply, sizeof reply, 0), 6);
  EXPECT_EQ(std::string(reply, 6), "answer");
  ASSERT_EQ(::sendto(client.get(), "still here", 10, 0, reinterpret_cast<const sockaddr*>(&sa), sizeof sa), 10);
  std::optional<Seen> q;
  while ((q = next()) && !(q->udp && q->udp->dst_port == 5353)) {
  }
  ASSERT_TRUE(q);
  EXPECT_EQ(string_of(q->payload), "still here");
}

TEST(UsernetForwardTest, ParsesAndRefusesSpecs) {
  auto f = parse_forward("tcp:8080:80");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->protocol, 6);
  EXPECT_EQ(f->host_address, Ipv4Address::of(127, 0, 0, 1));
  EXPECT_EQ((f->host_port), 8080);
  EXPECT_EQ((f->guest_port), 80);
  auto g = parse_forward("udp:0.0.0.0:5353:53");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->protocol, 17);
  EXPECT_EQ(g->host_address, kIpv4Any);
  for (const char* bad : {"tcp:8080", "sctp:1:2", "tcp:0:80", "tcp:8080:70000", "tcp:x:1:2", "tcp:1:2:3:4:5", ""})
    EXPECT_FALSE(parse_forward(bad)) << bad;
}

TEST(UsernetForwardTest, APortInUseIsAClearError) {
  std::uint16_t port = 0;
  UniqueFd taken = loopback_socket(SOCK_STREAM, port);
  UsernetConfig cfg;
  cfg.forwards = {*parse_forward("tcp:" + std::to_string(port) + ":80")};
  try {
    UserNet n(*validate(cfg));
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Hosts, UsernetFlowsTest,
                         ::testing::Values(HostVariant{"ThisKernel", true, true},
                                           HostVariant{"NoPeekOffNoPingSockets", false, false}),
                         [](const ::testing::TestParamInfo<HostVariant>& p) { return std::string(p.param.name); });

}  // namespace
}  // namespace vnk::usernet
