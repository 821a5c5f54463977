// The network layer of either family, as the layers above it see it: a
// parsed packet's addresses, protocol and payload; the IP header written for
// a frame toward the guest; the pseudo-header in transport checksums. UDP,
// TCP and the flows that relay them take these, so IPv4 and IPv6 differ
// only inside this file's implementation and the two header parsers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "packet/checksum.hpp"
#include "packet/ip_address.hpp"

namespace vnk::packet {

// What lies above the IP header of a parsed IPv4 or IPv6 packet
// (ip_packet() of an Ipv4 or Ipv6).
struct IpPacket {
  IpAddress src, dst;
  std::uint8_t protocol = 0;           // the upper layer (after IPv6 extension headers)
  std::uint16_t header_len = 0;        // IP header bytes: IPv4 options, IPv6 extension headers included
  std::uint16_t payload_len = 0;       // upper-layer bytes on the wire
  std::span<const std::byte> payload;  // the part of those present in the parsed span
  [[nodiscard]] bool is_v4() const noexcept { return src.is_v4(); }
};

// The header usernet writes (no options, no extension headers).
[[nodiscard]] constexpr std::size_t ip_header_size(const IpAddress& a) noexcept { return a.is_v4() ? 20 : 40; }
// The largest upper-layer payload one packet of the family holds.
[[nodiscard]] constexpr std::size_t ip_max_payload(const IpAddress& a) noexcept { return a.is_v4() ? 65535 - 20 : 65535; }

struct IpFields {
  IpAddress src, dst;  // of one family
  std::uint8_t protocol = 0;
  std::uint16_t payload_len = 0;
  std::uint16_t id = 0;  // IPv4 only
  std::uint8_t ttl = 64;  // the IPv6 hop limit
};
// Writes an IPv4 header (DF set) or an IPv6 one as src's family says;
// returns its size.
std::size_t write_ip(std::span<std::byte> out, const IpFields& f);

// The pseudo-header of UDP, TCP and ICMPv6 checksums (RFC 768, RFC 8200 §8.1).
void add_pseudo_header(Checksum& c, const IpAddress& src, const IpAddress& dst, std::uint8_t protocol,
                       std::uint32_t length) noexcept;

}  // namespace vnk::packet
