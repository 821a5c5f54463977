#include "packet/tcp.hpp"

#include <algorithm>

#include "base/byte_order.hpp"

namespace vnk::packet {

std::expected<Tcp, ParseError> parse_tcp(const IpPacket& ip) {
  const auto b = ip.payload;
  if (ip.payload_len < kTcpHeaderSize || b.size() < kTcpHeaderSize) return std::unexpected(ParseError::truncated);
  Tcp t;
  t.src_port = load_be<std::uint16_t>(b.data());
  t.dst_port = load_be<std::uint16_t>(b.data() + 2);
  t.seq = load_be<std::uint32_t>(b.data() + 4);
  t.ack = load_be<std::uint32_t>(b.data() + 8);
  t.header_len = static_cast<std::uint8_t>((static_cast<std::uint8_t>(b[12]) >> 4) * 4);
  t.flags = static_cast<std::uint8_t>(b[13]);
  t.window = load_be<std::uint16_t>(b.data() + 14);
  if (t.header_len < kTcpHeaderSize || t.header_len > ip.payload_len) return std::unexpected(ParseError::bad_length);
  if (t.header_len > b.size()) return std::unexpected(ParseError::truncated);
  t.payload_len = ip.payload_len - t.header_len;
  // Options: kind 0 ends the list, kind 1 is one byte of padding, every other
  // kind carries a length byte that covers kind and length.
  for (std::size_t i = kTcpHeaderSize; i < t.header_len;) {
    const auto kind = static_cast<std::uint8_t>(b[i]);
    if (kind == 0) break;
    if (kind == 1) {
      ++i;
      continue;
    }
    if (i + 1 >= t.header_len) return std::unexpected(ParseError::bad_length);
    const auto len = static_cast<std::uint8_t>(b[i + 1]);
    if (len < 2 || i + len > t.header_len) return std::unexpected(ParseError::bad_length);
    if (kind == 2 && len == 4) t.mss = load_be<std::uint16_t>(b.data() + i + 2);
    if (kind == 3 && len == 3) t.wscale = std::min<std::uint8_t>(static_cast<std::uint8_t>(b[i + 2]), 14);
    if (kind == 4 && len == 2) t.sack_permitted = true;
    if (kind == 5 && len >= 10 && (len - 2) % 8 == 0 && t.sack_count == 0) {
      for (std::size_t j = i + 2; j + 8 <= i + len && t.sack_count < t.sack.size(); j += 8)
        t.sack[t.sack_count++] = SackBlock{load_be<std::uint32_t>(b.data() + j), load_be<std::uint32_t>(b.data() + j + 4)};
    }
    i += len;
  }
  return t;
}

std::size_t tcp_header_size(const TcpFields& f) noexcept {
  const std::size_t blocks = std::min(f.sack.size(), kMaxSackBlocks);
  return kTcpHeaderSize + (f.mss ? 4 : 0) + (f.wscale ? 4 : 0) + (f.sack_permitted ? 4 : 0) +
         (blocks != 0 ? 4 + 8 * blocks : 0);
}

std::size_t write_tcp(std::span<std::byte> out, const TcpFields& f) {
  const std::size_t len = tcp_header_size(f);
  store_be<std::uint16_t>(out.data(), f.src_port);
  store_be<std::uint16_t>(out.data() + 2, f.dst_port);
  store_be<std::uint32_t>(out.data() + 4, f.seq);
  store_be<std::uint32_t>(out.data() + 8, f.ack);
  out[12] = static_cast<std::byte>((len / 4) << 4);
  out[13] = static_cast<std::byte>(f.flags);
  store_be<std::uint16_t>(out.data() + 14, f.window);
  store_be<std::uint16_t>(out.data() + 16, 0);  // checksum, stored later
  store_be<std::uint16_t>(out.data() + 18, 0);  // urgent pointer
  std::size_t i = kTcpHeaderSize;
  if (f.mss) {
    out[i] = std::byte{2};
    out[i + 1] = std::byte{4};
    store_be<std::uint16_t>(out.data() + i + 2, *f.mss);
    i += 4;
  }
  if (f.wscale) {
    out[i] = std::byte{1};  // NOP keeps the option list 4-byte aligned
    out[i + 1] = std::byte{3};
    out[i + 2] = std::byte{3};
    out[i + 3] = static_cast<std::byte>(*f.wscale);
    i += 4;
  }
  if (f.sack_permitted) {
    out[i] = out[i + 1] = std::byte{1};
    out[i + 2] = std::byte{4};
    out[i + 3] = std::byte{2};
    i += 4;
  }
  if (const std::size_t blocks = std::min(f.sack.size(), kMaxSackBlocks); blocks != 0) {
    out[i] = out[i + 1] = std::byte{1};
    out[i + 2] = std::byte{5};
    out[i + 3] = static_cast<std::byte>(2 + 8 * blocks);
    i += 4;
    for (std::size_t b = 0; b < blocks; ++b, i += 8) {
      store_be<std::uint32_t>(out.data() + i, f.sack[b].left);
      store_be<std::uint32_t>(out.data() + i + 4, f.sack[b].right);
    }
  }
  return len;
}

std::size_t write_tcp_frame_headers(std::span<std::byte> out, const TcpEndpoints& e, const TcpFields& t,
                                    std::size_t payload_len, const Checksum& payload_sum, std::uint16_t ip_id) {
  const std::size_t th = tcp_header_size(t);
  write_ethernet(out, e.dst_mac, e.src_mac, e.src.is_v4() ? ethertype::kIpv4 : ethertype::kIpv6);
  const std::size_t l4 =
      kEthernetHeaderSize + write_ip(out.subspan(kEthernetHeaderSize),
                                     IpFields{e.src, e.dst, ip_proto::kTcp, static_cast<std::uint16_t>(th + payload_len), ip_id});
  write_tcp(out.subspan(l4), t);
  Checksum sum;
  sum.add(out.subspan(l4, th));
  sum.append(payload_sum);
  store_tcp_checksum(out.subspan(l4), sum, e.src, e.dst, th + payload_len);
  return l4 + th;
}

void store_tcp_checksum(std::span<std::byte> tcp_header, Checksum sum, const IpAddress& src, const IpAddress& dst,
                        std::size_t segment_len) noexcept {
  add_pseudo_header(sum, src, dst, ip_proto::kTcp, static_cast<std::uint32_t>(segment_len));
  store_be<std::uint16_t>(tcp_header.data() + 16, sum.finish());
}

}  // namespace vnk::packet
