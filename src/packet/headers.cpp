#include "packet/headers.hpp"

#include <algorithm>

#include "base/byte_order.hpp"
#include "packet/checksum.hpp"

namespace vnk::packet {

std::string_view to_string(ParseError e) noexcept {
  switch (e) {
    case ParseError::truncated: return "truncated";
    case ParseError::bad_version: return "bad version";
    case ParseError::bad_length: return "bad length";
    case ParseError::bad_checksum: return "bad checksum";
    case ParseError::fragment: return "fragment";
    case ParseError::unsupported: return "unsupported";
  }
  return "?";
}

std::expected<Ethernet, ParseError> parse_ethernet(std::span<const std::byte> frame) {
  if (frame.size() < kEthernetHeaderSize) return std::unexpected(ParseError::truncated);
  return Ethernet{MacAddress::load(frame.data()), MacAddress::load(frame.data() + 6), load_be<std::uint16_t>(frame.data() + 12),
                  frame.subspan(kEthernetHeaderSize)};
}

void write_ethernet(std::span<std::byte> out, MacAddress dst, MacAddress src, std::uint16_t type) {
  dst.store(out.data());
  src.store(out.data() + 6);
  store_be<std::uint16_t>(out.data() + 12, type);
}

std::expected<Arp, ParseError> parse_arp(std::span<const std::byte> b) {
  if (b.size() < kArpSize) return std::unexpected(ParseError::truncated);
  // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4.
  if (load_be<std::uint16_t>(b.data()) != 1 || load_be<std::uint16_t>(b.data() + 2) != ethertype::kIpv4 ||
      b[4] != std::byte{6} || b[5] != std::byte{4})
    return std::unexpected(ParseError::bad_version);
  Arp a;
  a.op = load_be<std::uint16_t>(b.data() + 6);
  a.sender_mac = MacAddress::load(b.data() + 8);
  a.sender_ip = Ipv4Address{load_be<std::uint32_t>(b.data() + 14)};
  a.target_mac = MacAddress::load(b.data() + 18);
  a.target_ip = Ipv4Address{load_be<std::uint32_t>(b.data() + 24)};
  return a;
}

void write_arp(std::span<std::byte> out, const Arp& a) {
  store_be<std::uint16_t>(out.data(), 1);
  store_be<std::uint16_t>(out.data() + 2, ethertype::kIpv4);
  out[4] = std::byte{6};
  out[5] = std::byte{4};
  store_be<std::uint16_t>(out.data() + 6, a.op);
  a.sender_mac.store(out.data() + 8);
  store_be<std::uint32_t>(out.data() + 14, a.sender_ip.value);
  a.target_mac.store(out.data() + 18);
  store_be<std::uint32_t>(out.data() + 24, a.target_ip.value);
}

std::expected<Ipv4, ParseError> parse_ipv4(std::span<const std::byte> b) { return parse_ipv4(b, b.size()); }

std::expected<Ipv4, ParseError> parse_ipv4(std::span<const std::byte> b, std::size_t wire_len, bool accept_fragments) {
  if (wire_len < b.size()) return std::unexpected(ParseError::bad_length);
  if (b.size() < kIpv4HeaderSize) return std::unexpected(ParseError::truncated);
  const auto vihl = static_cast<std::uint8_t>(b[0]);
  if ((vihl >> 4) != 4) return std::unexpected(ParseError::bad_version);
  Ipv4 ip;
  ip.header_len = static_cast<std::uint8_t>((vihl & 0x0f) * 4);
  ip.total_len = load_be<std::uint16_t>(b.data() + 2);
  if (ip.header_len < kIpv4HeaderSize || ip.total_len < ip.header_len || ip.total_len > wire_len)
    return std::unexpected(ParseError::bad_length);
  if (b.size() < ip.header_len) return std::unexpected(ParseError::truncated);
  if (internet_checksum(b.first(ip.header_len)) != 0) return std::unexpected(ParseError::bad_checksum);
  const std::uint16_t frag = load_be<std::uint16_t>(b.data() + 6);
  ip.more_fragments = (frag & 0x2000) != 0;
  ip.fragment_offset = static_cast<std::uint16_t>((frag & 0x1fff) * 8);
  if (ip.is_fragment() && !accept_fragments) return std::unexpected(ParseError::fragment);
  ip.tos = static_cast<std::uint8_t>(b[1]);
  ip.id = load_be<std::uint16_t>(b.data() + 4);
  ip.dont_fragment = (frag & 0x4000) != 0;
  ip.ttl = static_cast<std::uint8_t>(b[8]);
  ip.protocol = static_cast<std::uint8_t>(b[9]);
  ip.src = Ipv4Address{load_be<std::uint32_t>(b.data() + 12)};
  ip.dst = Ipv4Address{load_be<std::uint32_t>(b.data() + 16)};
  ip.payload_len = static_cast<std::uint16_t>(ip.total_len - ip.header_len);
  ip.payload = b.subspan(ip.header_len, std::min<std::size_t>(ip.payload_len, b.size() - ip.header_len));
  return ip;
}

void write_ipv4(std::span<std::byte> out, const Ipv4Fields& f) {
  out[0] = std::byte{0x45};
  out[1] = static_cast<std::byte>(f.tos);
  store_be<std::uint16_t>(out.data() + 2, static_cast<std::uint16_t>(kIpv4HeaderSize + f.payload_len));
  store_be<std::uint16_t>(out.data() + 4, f.id);
  store_be<std::uint16_t>(out.data() + 6, f.fragment);
  out[8] = static_cast<std::byte>(f.ttl);
  out[9] = static_cast<std::byte>(f.protocol);
  store_be<std::uint16_t>(out.data() + 10, 0);
  store_be<std::uint32_t>(out.data() + 12, f.src.value);
  store_be<std::uint32_t>(out.data() + 16, f.dst.value);
  store_be<std::uint16_t>(out.data() + 10, internet_checksum(out.first(kIpv4HeaderSize)));
}

std::expected<Udp, ParseError> parse_udp(const IpPacket& ip, bool partial_checksum) {
  const auto b = ip.payload;
  if (b.size() < kUdpHeaderSize) return std::unexpected(ParseError::truncated);
  const std::uint16_t len = load_be<std::uint16_t>(b.data() + 4);
  if (len < kUdpHeaderSize || len > ip.payload_len) return std::unexpected(ParseError::bad_length);
  const std::uint16_t field = load_be<std::uint16_t>(b.data() + 6);
  if (field == 0 && !ip.is_v4()) return std::unexpected(ParseError::bad_checksum);  // mandatory over IPv6
  if (!partial_checksum && field != 0 && len <= b.size()) {
    Checksum c;
    add_pseudo_header(c, ip.src, ip.dst, ip_proto::kUdp, len);
    c.add(b.first(len));
    if (c.finish() != 0) return std::unexpected(ParseError::bad_checksum);
  }
  return Udp{load_be<std::uint16_t>(b.data()), load_be<std::uint16_t>(b.data() + 2),
             static_cast<std::uint16_t>(len - kUdpHeaderSize),
             b.subspan(kUdpHeaderSize, std::min<std::size_t>(len, b.size()) - kUdpHeaderSize)};
}

namespace {

// The UDP header over a payload whose checksum is known.
void write_udp_header(std::span<std::byte> out, const IpAddress& src, const IpAddress& dst, std::uint16_t src_port,
                      std::uint16_t dst_port, std::uint16_t payload_len, const Checksum& payload_sum) {
  const auto len = static_cast<std::uint16_t>(kUdpHeaderSize + payload_len);
  store_be<std::uint16_t>(out.data(), src_port);
  store_be<std::uint16_t>(out.data() + 2, dst_port);
  store_be<std::uint16_t>(out.data() + 4, len);
  store_be<std::uint16_t>(out.data() + 6, 0);
  Checksum c;
  add_pseudo_header(c, src, dst, ip_proto::kUdp, len);
  c.add(out.first(kUdpHeaderSize));
  c.append(payload_sum);
  std::uint16_t sum = c.finish();
  if (sum == 0) sum = 0xffff;  // RFC 768: zero means "no checksum"
  store_be<std::uint16_t>(out.data() + 6, sum);
}

}  // namespace

void write_udp(std::span<std::byte> out, const IpAddress& src, const IpAddress& dst, std::uint16_t src_port,
               std::uint16_t dst_port, std::uint16_t payload_len) {
  Checksum payload;
  payload.add(out.subspan(kUdpHeaderSize, payload_len));
  write_udp_header(out, src, dst, src_port, dst_port, payload_len, payload);
}

std::size_t write_udp_frame(std::span<std::byte> out, const UdpEndpoints& e, std::uint16_t payload_len,
                            std::uint16_t ip_id) {
  const std::size_t headers = udp_frame_overhead(e.src);
  Checksum payload;
  payload.add(out.subspan(headers, payload_len));
  write_udp_frame_headers(out, e, payload_len, payload, ip_id);
  return headers + payload_len;
}

std::size_t write_udp_frame_headers(std::span<std::byte> out, const UdpEndpoints& e, std::uint16_t payload_len,
                                    const Checksum& payload_sum, std::uint16_t ip_id) {
  write_ethernet(out, e.dst_mac, e.src_mac, e.src.is_v4() ? ethertype::kIpv4 : ethertype::kIpv6);
  const std::size_t l4 =
      kEthernetHeaderSize +
      write_ip(out.subspan(kEthernetHeaderSize),
               IpFields{e.src, e.dst, ip_proto::kUdp, static_cast<std::uint16_t>(kUdpHeaderSize + payload_len), ip_id});
  write_udp_header(out.subspan(l4), e.src, e.dst, e.src_port, e.dst_port, payload_len, payload_sum);
  return l4 + kUdpHeaderSize;
}

}  // namespace vnk::packet
