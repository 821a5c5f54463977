// DHCPv4 (RFC 2131, options RFC 2132): the fields a server needs from a
// client's message, and a writer for replies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>

#include "base/mac_address.hpp"
#include "packet/headers.hpp"
#include "packet/ipv4_address.hpp"

namespace vnk::packet {

constexpr std::uint16_t kDhcpServerPort = 67;
constexpr std::uint16_t kDhcpClientPort = 68;
constexpr std::size_t kDhcpFixedSize = 240;  // BOOTP fields + magic cookie

namespace dhcp_type {
constexpr std::uint8_t kDiscover = 1;
constexpr std::uint8_t kOffer = 2;
constexpr std::uint8_t kRequest = 3;
constexpr std::uint8_t kDecline = 4;
constexpr std::uint8_t kAck = 5;
constexpr std::uint8_t kNak = 6;
constexpr std::uint8_t kRelease = 7;
constexpr std::uint8_t kInform = 8;
}  // namespace dhcp_type

namespace dhcp_option {
constexpr std::uint8_t kPad = 0;
constexpr std::uint8_t kSubnetMask = 1;
constexpr std::uint8_t kRouter = 3;
constexpr std::uint8_t kDns = 6;
constexpr std::uint8_t kHostname = 12;
constexpr std::uint8_t kDomainName = 15;
constexpr std::uint8_t kInterfaceMtu = 26;
constexpr std::uint8_t kBroadcast = 28;
constexpr std::uint8_t kRequestedIp = 50;
constexpr std::uint8_t kLeaseTime = 51;
constexpr std::uint8_t kMessageType = 53;
constexpr std::uint8_t kServerId = 54;
constexpr std::uint8_t kParameterList = 55;
constexpr std::uint8_t kRenewalTime = 58;
constexpr std::uint8_t kRebindingTime = 59;
constexpr std::uint8_t kEnd = 255;
}  // namespace dhcp_option

struct DhcpMessage {
  std::uint8_t op = 0;  // 1 request (client), 2 reply
  std::uint32_t xid = 0;
  std::uint16_t flags = 0;  // bit 15: broadcast
  Ipv4Address ciaddr, yiaddr, siaddr, giaddr;
  MacAddress chaddr;
  std::uint8_t message_type = 0;  // option 53; 0 when absent (plain BOOTP)
  std::optional<Ipv4Address> requested_ip;
  std::optional<Ipv4Address> server_id;
};

// Validates the fixed part (op, Ethernet htype/hlen, magic cookie) and walks
// the options with every length checked; unknown options are skipped.
std::expected<DhcpMessage, ParseError> parse_dhcp(std::span<const std::byte> bytes);

// Builds a reply into `out` (at least kDhcpFixedSize + room for options).
class DhcpWriter {
 public:
  // Writes the fixed part copied from `request` (xid, flags, giaddr, chaddr).
  DhcpWriter(std::span<std::byte> out, const DhcpMessage& request, std::uint8_t type, Ipv4Address yiaddr,
             Ipv4Address siaddr);
  void option(std::uint8_t code, std::span<const std::byte> value);
  void option_u8(std::uint8_t code, std::uint8_t v);
  void option_u16(std::uint8_t code, std::uint16_t v);
  void option_u32(std::uint8_t code, std::uint32_t v);
  void option_ip(std::uint8_t code, Ipv4Address ip) { option_u32(code, ip.value); }
  // Writes the END option; returns the message size, or 0 if some option did
  // not fit (the reply must then not be sent).
  [[nodiscard]] std::size_t finish();

 private:
  std::span<std::byte> out_;
  std::size_t pos_ = kDhcpFixedSize;
  bool overflow_ = false;
};

}  // namespace vnk::packet
