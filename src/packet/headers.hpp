// Validating parsers and writers for the link, network and transport headers
// usernet speaks: Ethernet II, ARP (IPv4 over Ethernet), IPv4, UDP.
//
// A parser takes the bytes as received and returns the header's fields plus
// the payload span, or a ParseError; it never reads outside the span, and
// every length field is checked against the bytes actually present. Writers
// fill a caller's buffer (sized with the kXxxSize constants) and compute
// checksums. Fields are in host order; addresses use MacAddress/Ipv4Address.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string_view>

#include "base/mac_address.hpp"
#include "packet/checksum.hpp"
#include "packet/ip.hpp"
#include "packet/ipv4_address.hpp"

namespace vnk::packet {

enum class ParseError : std::uint8_t {
  truncated,     // fewer bytes than the header (or its length field) needs
  bad_version,   // IPv4 version != 4, ARP not Ethernet/IPv4
  bad_length,    // a length field smaller than its header or beyond the frame
  bad_checksum,  // IPv4 header or UDP checksum wrong
  fragment,      // an IPv4 fragment (not reassembled)
  unsupported,   // options or types we do not handle
};
[[nodiscard]] std::string_view to_string(ParseError e) noexcept;

// --- Ethernet II -----------------------------------------------------------
constexpr std::size_t kEthernetHeaderSize = 14;
namespace ethertype {
constexpr std::uint16_t kIpv4 = 0x0800;
constexpr std::uint16_t kArp = 0x0806;
constexpr std::uint16_t kVlan = 0x8100;
constexpr std::uint16_t kIpv6 = 0x86dd;
}  // namespace ethertype

struct Ethernet {
  MacAddress dst, src;
  std::uint16_t type = 0;
  std::span<const std::byte> payload;
};
std::expected<Ethernet, ParseError> parse_ethernet(std::span<const std::byte> frame);
void write_ethernet(std::span<std::byte> out, MacAddress dst, MacAddress src, std::uint16_t type);

// --- ARP (RFC 826), IPv4 over Ethernet only --------------------------------
constexpr std::size_t kArpSize = 28;
namespace arp_op {
constexpr std::uint16_t kRequest = 1;
constexpr std::uint16_t kReply = 2;
}  // namespace arp_op

struct Arp {
  std::uint16_t op = 0;
  MacAddress sender_mac;
  Ipv4Address sender_ip;
  MacAddress target_mac;
  Ipv4Address target_ip;
};
std::expected<Arp, ParseError> parse_arp(std::span<const std::byte> bytes);
void write_arp(std::span<std::byte> out, const Arp& arp);

// --- IPv4 (RFC 791) --------------------------------------------------------
constexpr std::size_t kIpv4HeaderSize = 20;     // written without options
constexpr std::size_t kIpv4MaxHeaderSize = 60;  // IHL 15: options included
namespace ip_proto {
constexpr std::uint8_t kIcmp = 1;
constexpr std::uint8_t kTcp = 6;
constexpr std::uint8_t kUdp = 17;
}  // namespace ip_proto

struct Ipv4 {
  std::uint8_t header_len = 0;  // bytes, including options
  std::uint8_t tos = 0;
  std::uint16_t total_len = 0;
  std::uint16_t id = 0;
  bool dont_fragment = false;
  std::uint8_t ttl = 0;
  std::uint8_t protocol = 0;
  Ipv4Address src, dst;
  std::uint16_t payload_len = 0;       // total_len - header_len (Ethernet padding cut off)
  std::span<const std::byte> payload;  // the part of those bytes present in the parsed span
  std::uint16_t fragment_offset = 0;   // bytes (the field times 8); 0 unless a fragment was accepted
  bool more_fragments = false;         // MF
  [[nodiscard]] bool is_fragment() const noexcept { return more_fragments || fragment_offset != 0; }
};
// Checks version, IHL, total length against the bytes, the header checksum,
// and refuses fragments (MF set or a non-zero offset) unless
// `accept_fragments`.
std::expected<Ipv4, ParseError> parse_ipv4(std::span<const std::byte> bytes);
// The same when `head` holds only the first bytes of a packet of `wire_len`
// bytes (the rest stays in guest memory): lengths are checked against
// wire_len, and `payload` is cut to what `head` holds.
std::expected<Ipv4, ParseError> parse_ipv4(std::span<const std::byte> head, std::size_t wire_len,
                                           bool accept_fragments = false);
struct Ipv4Fields {
  Ipv4Address src, dst;
  std::uint8_t protocol = 0;
  std::uint16_t payload_len = 0;
  std::uint16_t id = 0;
  std::uint8_t ttl = 64;
  std::uint8_t tos = 0;
  std::uint16_t fragment = 0x4000;  // flags and offset field: DF, unless usernet fragments (MF, offset / 8)
};
void write_ipv4(std::span<std::byte> out, const Ipv4Fields& f);
// What lies above the header, as the upper layers of either family take it.
IpPacket ip_packet(const Ipv4& ip);

// --- UDP (RFC 768) ---------------------------------------------------------
constexpr std::size_t kUdpHeaderSize = 8;

struct Udp {
  std::uint16_t src_port = 0, dst_port = 0;
  std::uint16_t payload_len = 0;       // from the UDP length field
  std::span<const std::byte> payload;  // the part present in ip.payload
};
// `ip` supplies the pseudo-header; a zero checksum means "none" over IPv4
// and is refused over IPv6 (RFC 8200 §8.1). The checksum is verified when
// the whole datagram is in ip.payload, unless `partial_checksum`: the sender
// left it for us to complete (a frame with NEEDS_CSUM), so the field holds
// only the pseudo-header's sum.
std::expected<Udp, ParseError> parse_udp(const IpPacket& ip, bool partial_checksum = false);
inline std::expected<Udp, ParseError> parse_udp(const Ipv4& ip, bool partial_checksum = false) {
  return parse_udp(ip_packet(ip), partial_checksum);
}
// Writes the UDP header for `payload_len` bytes that already follow it in
// `out`, with the checksum over them.
void write_udp(std::span<std::byte> out, const IpAddress& src, const IpAddress& dst, std::uint16_t src_port,
               std::uint16_t dst_port, std::uint16_t payload_len);

// --- Whole frames ----------------------------------------------------------
struct UdpEndpoints {
  MacAddress dst_mac, src_mac;
  IpAddress src;  // both of one family
  std::uint16_t src_port = 0;
  IpAddress dst;
  std::uint16_t dst_port = 0;
};
constexpr std::size_t kUdpFrameOverhead = kEthernetHeaderSize + kIpv4HeaderSize + kUdpHeaderSize;
// Ethernet, IP and UDP headers for the family of `a`.
[[nodiscard]] constexpr std::size_t udp_frame_overhead(const IpAddress& a) noexcept {
  return kEthernetHeaderSize + ip_header_size(a) + kUdpHeaderSize;
}
// Writes Ethernet + IP + UDP headers in front of `payload_len` bytes that
// the caller already placed at out[udp_frame_overhead(e.src)]; returns the
// frame size.
std::size_t write_udp_frame(std::span<std::byte> out, const UdpEndpoints& e, std::uint16_t payload_len,
                            std::uint16_t ip_id = 0);
// The same when the payload lies elsewhere (guest memory): only the
// udp_frame_overhead() header bytes are written (their count is returned),
// and `payload_sum` is the payload's checksum (Checksum over its bytes, from
// the first).
std::size_t write_udp_frame_headers(std::span<std::byte> out, const UdpEndpoints& e, std::uint16_t payload_len,
                             const Checksum& payload_sum, std::uint16_t ip_id);

}  // namespace vnk::packet
