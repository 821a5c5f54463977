// ICMPv6 (RFC 4443) and the Neighbor Discovery messages (RFC 4861) usernet
// answers as the guest's router: Router and Neighbor Solicitations in,
// Router and Neighbor Advertisements out, with the options a guest needs to
// configure itself (prefix information, MTU, RDNSS and DNSSL, RFC 8106).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/mac_address.hpp"
#include "packet/ipv6.hpp"

namespace vnk::packet {

constexpr std::size_t kIcmpv6HeaderSize = 4;  // type, code, checksum
namespace icmpv6_type {
constexpr std::uint8_t kDestUnreachable = 1;
constexpr std::uint8_t kPacketTooBig = 2;
constexpr std::uint8_t kEchoRequest = 128;
constexpr std::uint8_t kEchoReply = 129;
constexpr std::uint8_t kMldQuery = 130;     // RFC 2710
constexpr std::uint8_t kMldReport = 131;
constexpr std::uint8_t kMldDone = 132;
constexpr std::uint8_t kMldv2Report = 143;  // RFC 3810
constexpr std::uint8_t kRouterSolicitation = 133;
constexpr std::uint8_t kRouterAdvertisement = 134;
constexpr std::uint8_t kNeighborSolicitation = 135;
constexpr std::uint8_t kNeighborAdvertisement = 136;
}  // namespace icmpv6_type
namespace icmpv6_unreachable {
constexpr std::uint8_t kNoRoute = 0;
constexpr std::uint8_t kAdminProhibited = 1;  // RFC 4443 §3.1: refused by policy
}  // namespace icmpv6_unreachable
// An error message and the packet it quotes stay within IPv6's minimum MTU
// (RFC 4443 §2.4 (c)).
constexpr std::size_t kIcmpv6ErrorMax = 1280 - kIpv6HeaderSize;

struct Icmpv6 {
  std::uint8_t type = 0, code = 0;
  std::span<const std::byte> body;  // after the 4-byte header
};
// The message must be whole in ip.payload (ip.protocol == 58); its checksum
// over the pseudo-header is verified.
std::expected<Icmpv6, ParseError> parse_icmpv6(const Ipv6& ip);

// The identifier and sequence of an Echo Request or Reply (`m` parsed by
// parse_icmpv6 with type 128 or 129); ParseError::truncated when the body
// is shorter than they are.
struct Icmpv6Echo {
  std::uint16_t id = 0, seq = 0;
};
std::expected<Icmpv6Echo, ParseError> parse_icmpv6_echo(const Icmpv6& m);
// A Destination Unreachable message with `code` quoting as much of
// `original` (the offending packet from its IPv6 header) as kIcmpv6ErrorMax
// allows, checksum left 0 (write_icmpv6_frame sets it); returns its
// length, or 0 when `out` is too small.
std::size_t write_icmpv6_unreachable(std::span<std::byte> out, std::uint8_t code, std::span<const std::byte> original);

// --- Neighbor Discovery ----------------------------------------------------
// A Router or Neighbor Solicitation as RFC 4861 §6.1.1 / §7.1.1 validate it:
// hop limit 255, code 0, options of non-zero length within the message, and
// no source link-layer option when the source is unspecified (then a
// Neighbor Solicitation must go to a solicited-node group: DAD).
struct RouterSolicitation {
  std::optional<MacAddress> source_mac;  // the source link-layer address option
};
struct NeighborSolicitation {
  Ipv6Address target;
  std::optional<MacAddress> source_mac;
};
std::expected<RouterSolicitation, ParseError> parse_router_solicitation(const Ipv6& ip, const Icmpv6& m);
std::expected<NeighborSolicitation, ParseError> parse_neighbor_solicitation(const Ipv6& ip, const Icmpv6& m);

// What a Router Advertisement carries (RFC 4861 §4.2 and §4.6, RFC 8106).
struct RouterAdvert {
  MacAddress router_mac;           // the source link-layer address option
  std::uint16_t router_lifetime_s = 1800;
  Ipv6Address prefix;              // on-link and autonomous (SLAAC)
  std::uint8_t prefix_len = 64;
  std::uint32_t valid_lifetime_s = 86400;
  std::uint32_t preferred_lifetime_s = 14400;
  std::uint32_t mtu = 0;           // 0: no MTU option
  std::vector<Ipv6Address> dns;    // RDNSS, empty: none
  std::vector<std::string> search; // DNSSL, empty: none
  std::uint32_t dns_lifetime_s = 1800;
  bool managed = false;       // M: addresses from DHCPv6 too
  bool other_config = false;  // O: other configuration (DNS) from DHCPv6
};
// Writes the ICMPv6 message (checksum left 0: write_icmpv6_frame sets it);
// returns its length, or 0 when `out` is too small or a search domain is
// not a valid DNS name.
std::size_t write_router_advert(std::span<std::byte> out, const RouterAdvert& ra);
// A solicited Neighbor Advertisement from a router for `target`, with the
// target link-layer address option (RFC 4861 §4.4, §7.2.4); returns its length.
std::size_t write_neighbor_advert(std::span<std::byte> out, const Ipv6Address& target, const MacAddress& mac,
                                  bool solicited);
constexpr std::size_t kNeighborAdvertSize = 4 + 4 + 16 + 8;

// Ethernet + IPv6 around an ICMPv6 message already at
// out[kEthernetHeaderSize + kIpv6HeaderSize], whose checksum it fills in;
// returns the frame's length.
std::size_t write_icmpv6_frame(std::span<std::byte> out, MacAddress dst_mac, MacAddress src_mac,
                               const Ipv6Address& src, const Ipv6Address& dst, std::uint8_t hop_limit,
                               std::size_t message_len);

}  // namespace vnk::packet
