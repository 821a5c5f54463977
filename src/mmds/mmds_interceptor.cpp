#include "mmds/mmds_interceptor.hpp"

#include <sys/random.h>

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "base/byte_order.hpp"
#include "memory/iovec_ops.hpp"
#include "mmds/http_request.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "packet/tcp.hpp"

namespace vnk::mmds {

using namespace packet;

namespace {

constexpr std::uint16_t kPort = 80;

std::uint64_t now_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

std::uint32_t random_isn() {
  std::uint32_t v = 0;
  (void)::getrandom(&v, sizeof v, GRND_NONBLOCK);
  return v;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
  }
}

}  // namespace

MmdsInterceptor::MmdsInterceptor(MetadataStore store, MacAddress gateway_mac)
    : store_(std::move(store)), gateway_mac_(gateway_mac), out_(256, 2048) {}

bool MmdsInterceptor::intercept_tx(const net::TxFrame& frame) {
  // Every TX frame passes here: look at the Ethernet and IPv4 headers first
  // and copy the rest only for frames addressed to the service.
  constexpr std::size_t kPeek = kEthernetHeaderSize + kIpv4HeaderSize;
  if (frame.length < kPeek) return false;
  iov_read(frame.data, 0, std::span(head_).first(kPeek));
  if (load_be<std::uint16_t>(head_.data() + 12) != ethertype::kIpv4 ||
      load_be<std::uint32_t>(head_.data() + kEthernetHeaderSize + 16) != kAddress.value)
    return false;
  const std::size_t n = kPeek + iov_read(frame.data, kPeek,
                                         std::span(head_).subspan(kPeek, std::min(frame.length, head_.size()) - kPeek));
  auto eth = parse_ethernet(std::span(head_).first(n));  // n >= kPeek: cannot fail
  auto ip = parse_ipv4(eth->payload, frame.length - kEthernetHeaderSize);
  if (!ip) return false;  // malformed: the backend counts it
  // Everything for the metadata address stays here, whatever it is.
  if (ip->protocol != ip_proto::kTcp || ip->payload.size() < ip->payload_len) return true;
  segment(eth->src, *ip);
  return true;
}

void MmdsInterceptor::send(const Conn& c, std::uint8_t flags, std::uint32_t seq, std::string_view payload,
                           bool syn_options) {
  auto slot = out_.reserve();
  if (slot.empty()) {
    counters_.drop_queue_full.add();
    return;
  }
  const TcpFields t{kPort, c.guest_port, seq, c.rcv_nxt, flags, 65535,
                    syn_options ? std::optional<std::uint16_t>(kMss) : std::nullopt, {}, false, {}};
  const std::size_t hdr = tcp_header_size(t) + kEthernetHeaderSize + kIpv4HeaderSize;
  std::copy(payload.begin(), payload.end(), reinterpret_cast<char*>(slot.data() + hdr));
  Checksum sum;
  sum.add(slot.subspan(hdr, payload.size()));
  write_tcp_frame_headers(slot, TcpEndpoints{c.guest_mac, gateway_mac_, kAddress, c.guest_ip}, t, payload.size(), sum,
                          ip_id_++);
  out_.commit(hdr + payload.size());
}

void MmdsInterceptor::send_reset(const MacAddress& mac, Ipv4Address ip, std::uint16_t port, std::uint32_t seq,
                                 std::uint32_t ack, bool with_ack) {
  Conn c;
  c.guest_mac = mac;
  c.guest_ip = ip;
  c.guest_port = port;
  c.rcv_nxt = with_ack ? ack : 0;
  send(c, static_cast<std::uint8_t>(tcp_flag::kRst | (with_ack ? tcp_flag::kAck : 0)), seq, {});
  counters_.resets_sent.add();
}

void MmdsInterceptor::respond(Conn& c) {
  HttpRequest req;
  HttpResponse resp;
  switch (parse_http_request(c.request, req)) {
    case HttpParse::incomplete:
      if (c.request.size() < kMaxRequest) return;
      [[fallthrough]];
    case HttpParse::bad:
      counters_.bad_requests.add();
      resp = {400, "bad request\n"};
      break;
    case HttpParse::complete: {
      // Copy out the views before the request buffer goes away.
      resp = store_.handle(req.method, req.path, req.ttl, req.token, now_ms());
      if (resp.status == 401) counters_.unauthorized.add();
      if (resp.status == 200 && req.method == "PUT") counters_.tokens_issued.add();
      break;
    }
  }
  counters_.requests.add();
  const std::string text = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", resp.status,
      reason(resp.status), resp.body.size(), resp.body);
  for (std::size_t off = 0; off < text.size(); off += kMss) {
    const std::string_view part = std::string_view(text).substr(off, kMss);
    send(c, tcp_flag::kAck | tcp_flag::kPsh, c.snd_nxt, part);
    c.snd_nxt += static_cast<std::uint32_t>(part.size());
  }
  send(c, tcp_flag::kAck | tcp_flag::kFin, c.snd_nxt, {});
  c.snd_nxt += 1;
  c.responded = true;
  c.request.clear();
  c.request.shrink_to_fit();
}

void MmdsInterceptor::segment(const MacAddress& mac, const Ipv4& ip) {
  const Ipv4Address src = ip.src;
  auto tcp = parse_tcp(ip);
  if (!tcp || tcp->dst_port != kPort) {
    if (tcp && !tcp->has(tcp_flag::kRst)) send_reset(mac, src, tcp->src_port, 0, tcp->seq + 1, true);
    return;
  }
  const std::string_view data(reinterpret_cast<const char*>(ip.payload.data()) + tcp->header_len, tcp->payload_len);
  auto it = std::find_if(conns_.begin(), conns_.end(), [&](const Conn& c) {
    return c.live && c.guest_ip == src && c.guest_port == tcp->src_port;
  });
  if (tcp->has(tcp_flag::kRst)) {
    if (it != conns_.end()) *it = Conn{};
    return;
  }
  if (tcp->has(tcp_flag::kSyn) && !tcp->has(tcp_flag::kAck)) {
    if (it == conns_.end()) {
      it = std::find_if(conns_.begin(), conns_.end(), [](const Conn& c) { return !c.live; });
      if (it == conns_.end()) {
        it = std::min_element(conns_.begin(), conns_.end(),
                              [](const Conn& a, const Conn& b) { return a.opened_ms < b.opened_ms; });
        counters_.evicted.add();
      }
      *it = Conn{true, mac, src, tcp->src_port, random_isn(), tcp->seq + 1, false, false, now_ms(), {}};
      counters_.connections.add();
      send(*it, tcp_flag::kSyn | tcp_flag::kAck, it->snd_nxt, {}, true);
      it->snd_nxt += 1;
    } else {
      send(*it, tcp_flag::kSyn | tcp_flag::kAck, it->snd_nxt - 1, {}, true);  // our SYN-ACK was lost
    }
    return;
  }
  if (it == conns_.end()) {
    if (tcp->has(tcp_flag::kAck)) send_reset(mac, src, tcp->src_port, tcp->ack, 0, false);
    return;
  }
  Conn& c = *it;
  if (!data.empty()) {
    if (tcp->seq == c.rcv_nxt && !c.responded) {
      c.request.append(data.substr(0, kMaxRequest - std::min(kMaxRequest, c.request.size())));
      c.rcv_nxt += static_cast<std::uint32_t>(data.size());
      respond(c);
      if (!c.responded) send(c, tcp_flag::kAck, c.snd_nxt, {});
    } else {
      send(c, tcp_flag::kAck, c.snd_nxt, {});  // out of order or after our answer: re-ACK
    }
  }
  if (tcp->has(tcp_flag::kFin) && !c.guest_fin && tcp->seq + static_cast<std::uint32_t>(data.size()) == c.rcv_nxt) {
    c.guest_fin = true;
    c.rcv_nxt += 1;
    send(c, tcp_flag::kAck, c.snd_nxt, {});
  }
  // Done once both FINs are exchanged and ours is acknowledged.
  if (c.responded && c.guest_fin && tcp->has(tcp_flag::kAck) && tcp->ack == c.snd_nxt) c = Conn{};
}

net::RxResult MmdsInterceptor::receive(std::span<const iovec> buffer) {
  net::RxResult r = out_.pop_into(buffer);
  if (r.status == net::RxStatus::frame) counters_.frames_to_guest.add();
  return r;
}

}  // namespace vnk::mmds
