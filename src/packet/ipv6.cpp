#include "packet/ipv6.hpp"

#include <algorithm>

#include "base/byte_order.hpp"

namespace vnk::packet {

namespace {

// The options of a Hop-by-Hop or Destination Options header (RFC 8200 §4.2):
// Pad1, PadN and Router Alert are understood; an unknown option is skipped
// only when its type's two high bits say so (00), any other is a reason to
// discard the packet.
bool options_acceptable(std::span<const std::byte> opts) {
  std::size_t i = 0;
  while (i < opts.size()) {
    const auto type = static_cast<std::uint8_t>(opts[i]);
    if (type == 0) {  // Pad1
      ++i;
      continue;
    }
    if (i + 2 > opts.size()) return false;
    const std::size_t len = 2 + static_cast<std::uint8_t>(opts[i + 1]);
    if (i + len > opts.size()) return false;
    constexpr std::uint8_t kPadN = 1, kRouterAlert = 5;
    if (type != kPadN && type != kRouterAlert && (type >> 6) != 0) return false;
    i += len;
  }
  return true;
}

}  // namespace

std::expected<Ipv6, ParseError> parse_ipv6(std::span<const std::byte> b) { return parse_ipv6(b, b.size()); }

std::expected<Ipv6, ParseError> parse_ipv6(std::span<const std::byte> b, std::size_t wire_len, bool accept_fragments) {
  if (wire_len < b.size()) return std::unexpected(ParseError::bad_length);
  if (b.size() < kIpv6HeaderSize) return std::unexpected(ParseError::truncated);
  const std::uint32_t first = load_be<std::uint32_t>(b.data());
  if ((first >> 28) != 6) return std::unexpected(ParseError::bad_version);
  const std::uint16_t payload_length = load_be<std::uint16_t>(b.data() + 4);
  // Zero is a jumbogram's (RFC 2675), which no Ethernet frame carries.
  if (payload_length == 0 && static_cast<std::uint8_t>(b[6]) == ip_proto::kHopByHop)
    return std::unexpected(ParseError::unsupported);
  if (kIpv6HeaderSize + payload_length > wire_len) return std::unexpected(ParseError::bad_length);

  Ipv6 ip;
  ip.traffic_class = static_cast<std::uint8_t>((first >> 20) & 0xff);
  ip.flow_label = first & 0xfffff;
  ip.hop_limit = static_cast<std::uint8_t>(b[7]);
  ip.src = Ipv6Address::load(b.data() + 8);
  ip.dst = Ipv6Address::load(b.data() + 24);

  const std::size_t end = kIpv6HeaderSize + payload_length;  // of the packet, in wire bytes
  std::uint8_t next = static_cast<std::uint8_t>(b[6]);
  std::size_t offset = kIpv6HeaderSize;
  std::size_t next_at = 6;  // where `next` was read
  for (unsigned n = 0;; ++n) {
    switch (next) {
      case ip_proto::kHopByHop:
        // Only directly after the fixed header (RFC 8200 §4.1).
        if (offset != kIpv6HeaderSize) return std::unexpected(ParseError::unsupported);
        [[fallthrough]];
      case ip_proto::kDestOptions:
      case ip_proto::kRouting:
      case ip_proto::kFragment: {
        if (n == kMaxExtensionHeaders) return std::unexpected(ParseError::unsupported);
        if (offset + 8 > end) return std::unexpected(ParseError::bad_length);
        if (offset + 8 > b.size()) return std::unexpected(ParseError::truncated);
        if (next == ip_proto::kFragment) {
          if (!accept_fragments) return std::unexpected(ParseError::fragment);
          // Fixed 8 bytes: Next Header, reserved, offset (13 bits) and M, identification.
          const std::uint16_t off_m = load_be<std::uint16_t>(b.data() + offset + 2);
          ip.fragment = true;
          ip.more_fragments = (off_m & 1) != 0;
          ip.fragment_offset = static_cast<std::uint16_t>(off_m & 0xfff8);
          ip.fragment_id = load_be<std::uint32_t>(b.data() + offset + 4);
          ip.fragment_header_at = static_cast<std::uint16_t>(offset);
          ip.next_header_at = static_cast<std::uint16_t>(next_at);
          next = static_cast<std::uint8_t>(b[offset]);
          offset += 8;
          break;  // what follows belongs to the datagram, parsed once it is whole
        }
        const std::size_t len = (std::size_t{static_cast<std::uint8_t>(b[offset + 1])} + 1) * 8;
        if (offset + len > end) return std::unexpected(ParseError::bad_length);
        if (offset + len > b.size()) return std::unexpected(ParseError::truncated);
        if (next == ip_proto::kRouting) {
          // Segments left != 0 asks us to route through another node.
          if (b[offset + 3] != std::byte{0}) return std::unexpected(ParseError::unsupported);
        } else if (!options_acceptable(b.subspan(offset + 2, len - 2))) {
          return std::unexpected(ParseError::unsupported);
        }
        next = static_cast<std::uint8_t>(b[offset]);
        next_at = offset;
        offset += len;
        continue;
      }
      case ip_proto::kNoNextHeader: return std::unexpected(ParseError::unsupported);
      default: break;  // the upper layer (or ESP/AH, which the caller does not handle)
    }
    break;
  }
  ip.protocol = next;
  ip.header_len = static_cast<std::uint16_t>(offset);
  ip.payload_len = static_cast<std::uint16_t>(end - offset);
  ip.payload = b.subspan(offset, std::min<std::size_t>(ip.payload_len, b.size() - offset));
  return ip;
}

void write_ipv6(std::span<std::byte> out, const Ipv6Fields& f) {
  store_be<std::uint32_t>(out.data(), (6u << 28) | (std::uint32_t{f.traffic_class} << 20));
  store_be<std::uint16_t>(out.data() + 4, f.payload_len);
  out[6] = static_cast<std::byte>(f.protocol);
  out[7] = static_cast<std::byte>(f.hop_limit);
  f.src.store(out.data() + 8);
  f.dst.store(out.data() + 24);
}

void add_ipv6_pseudo_header(Checksum& c, const Ipv6Address& src, const Ipv6Address& dst, std::uint8_t protocol,
                            std::uint32_t length) noexcept {
  for (std::size_t i = 0; i < 16; i += 2) {
    c.add_u16(static_cast<std::uint16_t>(src.bytes[i] << 8 | src.bytes[i + 1]));
    c.add_u16(static_cast<std::uint16_t>(dst.bytes[i] << 8 | dst.bytes[i + 1]));
  }
  c.add_u32(length);
  c.add_u16(protocol);
}

}  // namespace vnk::packet
