// libFuzzer target: usernet's TCP translation, driven by crafted guest
// segments against a real host peer on 127.0.0.1.
//
// Each input opens one connection properly (guest SYN, usernet's SYN-ACK once
// the host connect() succeeds, the peer accepted here), then plays a script
// of operations: guest segments with fuzzed sequence and acknowledgement
// offsets, flags, windows and lengths; guest FIN and RST; the host peer
// writing, reading, half-closing; and reading usernet's frames for the guest
// into buffers of fuzzed size.
//
// Oracle: both byte streams are a fixed function of their offset, so
// whatever usernet delivers must match it wherever it lands: every byte the
// host peer reads equals the guest's stream at that offset, and every payload
// byte a segment to the guest carries equals the host's stream at the offset
// its sequence number names. Every frame for the guest must parse, with a
// valid TCP checksum. An odd first byte runs without SO_PEEK_OFF (the
// re-peeking path of kernels before 6.9).
//
// Input: byte 0 variant (bit 0: no SO_PEEK_OFF; bit 1: the guest offers
// SACK, and operation 8 sends SACK blocks; bit 2: the consumer's offloads,
// partial checksums and TSO, which the checker completes); bytes 1..4 the guest's ISN; byte 5 MSS/wscale
// choice; then operations of 4 bytes {op, a, b, c}.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <span>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "base/log.hpp"
#include "base/unique_fd.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "packet/tcp.hpp"
#include "usernet/usernet.hpp"

using namespace vnk;
using namespace vnk::packet;

namespace {

const MacAddress kGuestMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};
constexpr Ipv4Address kGuest = Ipv4Address::of(10, 0, 2, 15);
constexpr Ipv4Address kGateway = Ipv4Address::of(10, 0, 2, 2);
constexpr std::uint16_t kGuestPort = 40000;

std::byte guest_byte(std::uint32_t offset) { return std::byte(static_cast<std::uint8_t>(offset * 131u + 7u)); }
std::byte host_byte(std::uint32_t offset) { return std::byte(static_cast<std::uint8_t>(offset * 37u + 11u)); }

[[noreturn]] void finding() { __builtin_trap(); }

// The listening host peer, shared by every input.
struct Listener {
  UniqueFd fd;
  std::uint16_t port = 0;
  Listener() {
    fd.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd.get(), 64) != 0) finding();
    socklen_t len = sizeof sa;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port = ntohs(sa.sin_port);
  }
  // Drops connections left over from earlier inputs.
  void drain() {
    for (;;) {
      UniqueFd c(::accept4(fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!c.valid()) return;
    }
  }
};

class Session {
 public:
  Session(usernet::UserNet& net, std::uint16_t port) : net_(net), port_(port) {}

  void send(std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, std::uint16_t window, std::size_t len,
            std::optional<std::uint16_t> mss = {}, std::optional<std::uint8_t> ws = {}, bool sack_permitted = false,
            std::span<const SackBlock> sack = {}) {
    TcpFields t{kGuestPort, port_, seq, ack, flags, window, mss, ws, sack_permitted, sack};
    const std::size_t hl = tcp_header_size(t);
    std::vector<std::byte> f(kEthernetHeaderSize + kIpv4HeaderSize + hl + len);
    const std::span<std::byte> seg = std::span(f).subspan(kEthernetHeaderSize + kIpv4HeaderSize);
    write_tcp(seg, t);
    for (std::size_t i = 0; i < len; ++i) seg[hl + i] = guest_byte(seq - guest_isn_ - 1 + static_cast<std::uint32_t>(i));
    Checksum sum;
    sum.add(seg);
    store_tcp_checksum(seg, sum, kGuest, kGateway, seg.size());
    write_ethernet(f, usernet::UsernetConfig{}.gateway_mac, kGuestMac, ethertype::kIpv4);
    write_ipv4(std::span(f).subspan(kEthernetHeaderSize),
               Ipv4Fields{kGuest, kGateway, ip_proto::kTcp, static_cast<std::uint16_t>(seg.size()), 1, 64, 0});
    const iovec iov{f.data(), f.size()};
    const net::NetHeader hdr{};
    (void)net_.transmit(net::TxFrame{hdr, std::span(&iov, 1), f.size(),
                                     std::span<const std::byte>(f).first(std::min(f.size(), net::kTxHeadBytes))});
    net_.flush_tx();
  }

  // Reads what usernet has for the guest; returns the number of frames.
  int drain(std::size_t buffer_size, int budget = 64) {
    std::vector<std::byte> b(buffer_size);
    int frames = 0;
    for (; frames < budget; ++frames) {
      const iovec iov{b.data(), b.size()};
      const auto r = net_.receive(std::span(&iov, 1));
      if (r.status != net::RxStatus::frame) break;
      if (r.written > b.size() || r.written > r.frame_len) finding();
      if (r.written != r.frame_len) continue;
      if ((r.header.flags & net::NetHeader::kFlagNeedsCsum) != 0) {
        // A partial checksum (offloads on): complete it as a TAP would.
        if (r.header.csum_start + r.header.csum_offset + 2u > r.written) finding();
        const auto seg = std::span(b).subspan(r.header.csum_start, r.written - r.header.csum_start);
        const std::uint16_t c = internet_checksum(seg);
        seg[r.header.csum_offset] = std::byte(static_cast<std::uint8_t>(c >> 8));
        seg[r.header.csum_offset + 1u] = std::byte(static_cast<std::uint8_t>(c));
      }
      check(std::span(b).first(r.written));
    }
    return frames;
  }

  void set_guest_isn(std::uint32_t isn) { guest_isn_ = isn; }
  [[nodiscard]] bool have_syn_ack() const { return host_isn_.has_value(); }
  [[nodiscard]] std::uint32_t host_next() const { return host_next_; }

 private:
  void check(std::span<const std::byte> frame) {
    auto eth = parse_ethernet(frame);
    if (!eth) finding();
    if (eth->type != ethertype::kIpv4) return;
    auto ip = parse_ipv4(eth->payload);
    if (!ip) finding();
    if (ip->protocol != ip_proto::kTcp) return;
    Checksum sum;
    add_ipv4_pseudo_header(sum, ip->src.value, ip->dst.value, ip_proto::kTcp, ip->payload_len);
    sum.add(ip->payload);
    if (sum.finish() != 0) finding();
    auto tcp = parse_tcp(*ip);
    if (!tcp) finding();
    if (tcp->has(tcp_flag::kSyn) && tcp->has(tcp_flag::kAck) && !host_isn_) {
      host_isn_ = tcp->seq;
      host_next_ = tcp->seq + 1;
    }
    if (!host_isn_ || tcp->payload_len == 0) return;
    const auto payload = ip->payload.subspan(tcp->header_len);
    for (std::size_t i = 0; i < payload.size(); ++i)
      if (payload[i] != host_byte(tcp->seq - *host_isn_ - 1 + static_cast<std::uint32_t>(i))) finding();
    const std::uint32_t end = tcp->seq + static_cast<std::uint32_t>(payload.size());
    if (static_cast<std::int32_t>(end - host_next_) > 0) host_next_ = end;
  }

  usernet::UserNet& net_;
  std::uint16_t port_;
  std::uint32_t guest_isn_ = 0;
  std::optional<std::uint32_t> host_isn_;
  std::uint32_t host_next_ = 0;
};

// The host peer's reads, checked against the guest's stream.
struct Peer {
  UniqueFd fd;
  std::uint32_t received = 0;
  std::uint32_t written = 0;

  void read_all() {
    std::byte buf[16384];
    for (;;) {
      const ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) return;
      for (ssize_t i = 0; i < n; ++i)
        if (buf[i] != guest_byte(received + static_cast<std::uint32_t>(i))) finding();
      received += static_cast<std::uint32_t>(n);
    }
  }
  void write(std::size_t n) {
    std::vector<std::byte> buf(n);
    for (std::size_t i = 0; i < n; ++i) buf[i] = host_byte(written + static_cast<std::uint32_t>(i));
    const ssize_t w = ::send(fd.get(), buf.data(), buf.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w > 0) written += static_cast<std::uint32_t>(w);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  log::set_level(log::Level::error);
  if (size < 6) return 0;
  static Listener listener;
  static const usernet::UsernetConfig plain = [] {
    usernet::UsernetConfig c;
    c.host_only = true;
    return *usernet::validate(c);
  }();
  static const usernet::UsernetConfig no_peek_off = [] {
    usernet::UsernetConfig c = plain;
    HostFeatures h = host_features();
    h.tcp_peek_off_v4 = h.tcp_peek_off_v6 = false;
    c.host = h;
    return c;
  }();
  listener.drain();
  usernet::UserNet net((data[0] & 1) != 0 ? no_peek_off : plain);
  if ((data[0] & 4) != 0) net.set_rx_offloads(net::RxOffloads{true, true});
  Session s(net, listener.port);
  std::uint32_t isn = 0;
  std::memcpy(&isn, data + 1, 4);
  s.set_guest_isn(isn);
  const std::uint8_t opts = data[5];
  s.send(isn, 0, tcp_flag::kSyn, 0xffff, 0, (opts & 1) ? std::optional<std::uint16_t>(536 + (opts >> 4) * 200) : std::nullopt,
         (opts & 2) ? std::optional<std::uint8_t>((opts >> 2) & 15) : std::nullopt, (data[0] & 2) != 0);
  // The host connect() completes on loopback at once; usernet answers when
  // its epoll reports it.
  for (int i = 0; i < 200 && !s.have_syn_ack(); ++i) s.drain(65600, 4);
  if (!s.have_syn_ack()) return 0;
  Peer peer;
  for (int i = 0; i < 200 && !peer.fd.valid(); ++i)
    peer.fd.reset(::accept4(listener.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!peer.fd.valid()) return 0;

  std::uint32_t next = isn + 1;  // the guest's next sequence number
  s.send(next, s.host_next(), tcp_flag::kAck, 0xffff, 0);
  for (std::size_t pos = 6; pos + 4 <= size; pos += 4) {
    const std::uint8_t op = data[pos], a = data[pos + 1], b = data[pos + 2], c = data[pos + 3];
    const std::uint16_t window = static_cast<std::uint16_t>((b << 8) | c);
    switch (op % 9) {
      case 0: {  // data, at an offset around the next byte (retransmission, hole, overlap)
        const auto offset = static_cast<std::int32_t>(static_cast<std::int8_t>(a)) * 97;
        const std::size_t len = (static_cast<std::size_t>(b) << 4) % 9000;
        const std::uint32_t seq = next + static_cast<std::uint32_t>(offset);
        s.send(seq, s.host_next(), tcp_flag::kAck | (c & 1 ? tcp_flag::kPsh : 0), 0xffff, len);
        if (seq == next) next += static_cast<std::uint32_t>(len);
        break;
      }
      case 1:  // an ACK around what the guest has seen, with a fuzzed window
        s.send(next, s.host_next() + static_cast<std::uint32_t>(static_cast<std::int8_t>(a)) * 131u, tcp_flag::kAck,
               window, 0);
        break;
      case 2: peer.write(static_cast<std::size_t>(a) * 512 + b); break;
      case 3: peer.read_all(); break;
      case 4: ::shutdown(peer.fd.get(), SHUT_WR); break;
      case 5:  // FIN, possibly off the sequence
        s.send(next + (a & 1 ? a : 0), s.host_next(), tcp_flag::kFin | tcp_flag::kAck, window, 0);
        if ((a & 1) == 0) next += 1;
        break;
      case 6:  // RST, rarely (it ends the flow): exactly at next, or anywhere
        if (a == 0x5a) s.send(next + (b & 1 ? 0 : window), 0, tcp_flag::kRst, 0, 0);
        break;
      case 7: s.drain(14 + static_cast<std::size_t>(a) * 64 + b); break;
      case 8: {  // a duplicate ACK with up to three SACK blocks around what was sent, valid or not
        std::array<SackBlock, 3> blocks{};
        const std::size_t n = c % 4;
        for (std::size_t i = 0; i < n; ++i) {
          const std::uint32_t left =
              s.host_next() + static_cast<std::uint32_t>(static_cast<std::int8_t>(b)) * 97u * static_cast<std::uint32_t>(i + 1);
          blocks[i] = SackBlock{left, left + 1 + (static_cast<std::uint32_t>(c) >> 2) * 211u};
        }
        s.send(next, s.host_next() - static_cast<std::uint32_t>(a) * 53u, tcp_flag::kAck, 0xffff, 0, {}, {}, false,
               std::span(blocks).first(n));
        break;
      }
    }
  }
  s.drain(65600);
  peer.read_all();
  return 0;
}
