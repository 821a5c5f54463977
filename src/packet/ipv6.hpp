// IPv6 (RFC 8200): the fixed header, the extension-header chain up to the
// upper-layer header, and the pseudo-header sum for upper-layer checksums.
//
// Like the IPv4 parser, it reads only the span it is given and checks every
// length against the bytes present. The chain is walked with a bound, and
// what usernet does not forward is refused with a reason the caller counts:
// fragments (ParseError::fragment), jumbograms, routing headers with
// segments left, unknown options whose type says "discard", ESP/AH and "no
// next header" (ParseError::unsupported).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>

#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "packet/ipv6_address.hpp"

namespace vnk::packet {

constexpr std::size_t kIpv6HeaderSize = 40;  // written without extension headers
namespace ip_proto {
constexpr std::uint8_t kHopByHop = 0;
constexpr std::uint8_t kRouting = 43;
constexpr std::uint8_t kFragment = 44;
constexpr std::uint8_t kIcmpv6 = 58;
constexpr std::uint8_t kNoNextHeader = 59;
constexpr std::uint8_t kDestOptions = 60;
}  // namespace ip_proto

// Extension headers walked before giving up (a chain longer than this is
// refused as unsupported): enough for any real packet, bounded for a hostile one.
constexpr unsigned kMaxExtensionHeaders = 8;

struct Ipv6 {
  std::uint8_t traffic_class = 0;
  std::uint32_t flow_label = 0;
  std::uint8_t hop_limit = 0;
  Ipv6Address src, dst;
  std::uint8_t protocol = 0;           // the upper-layer protocol after the extension headers
  std::uint16_t header_len = 0;        // 40 plus the extension headers
  std::uint16_t payload_len = 0;       // upper-layer bytes (the Payload Length field minus extension headers)
  std::span<const std::byte> payload;  // the part of those bytes present in the parsed span
  // A fragment, where the caller accepts them: the Fragment header's fields.
  // Then protocol is its Next Header, header_len ends after it, payload is
  // this fragment's part of the datagram, and the bytes before
  // fragment_header_at are the unfragmentable part (RFC 8200 §4.5).
  bool fragment = false;
  bool more_fragments = false;        // M
  std::uint16_t fragment_offset = 0;  // bytes (the field times 8)
  std::uint32_t fragment_id = 0;
  std::uint16_t fragment_header_at = 0;  // offset of the Fragment header
  std::uint16_t next_header_at = 0;      // offset of the Next Header byte that names it
};
// `head` holds the first bytes of a packet of `wire_len` bytes (Ethernet
// padding may follow the packet); the extension headers must lie in `head`.
// A fragment is ParseError::fragment unless `accept_fragments`.
std::expected<Ipv6, ParseError> parse_ipv6(std::span<const std::byte> head, std::size_t wire_len,
                                           bool accept_fragments = false);
std::expected<Ipv6, ParseError> parse_ipv6(std::span<const std::byte> packet);

struct Ipv6Fields {
  Ipv6Address src, dst;
  std::uint8_t protocol = 0;
  std::uint16_t payload_len = 0;
  std::uint8_t hop_limit = 64;
  std::uint8_t traffic_class = 0;
};
void write_ipv6(std::span<std::byte> out, const Ipv6Fields& f);
// What lies after the extension headers, as the upper layers of either family take it.
IpPacket ip_packet(const Ipv6& ip);

// Pseudo-header for upper-layer checksums over IPv6 (RFC 8200 §8.1).
void add_ipv6_pseudo_header(Checksum& c, const Ipv6Address& src, const Ipv6Address& dst, std::uint8_t protocol,
                            std::uint32_t length) noexcept;

}  // namespace vnk::packet
