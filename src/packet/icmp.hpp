// ICMPv4 echo (RFC 792): the only ICMP usernet relays. The message is the
// 8-byte header (type, code, checksum, identifier, sequence) and the data.
// usernet also writes Destination Unreachable toward the guest when it
// refuses a datagram flow.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>

#include "packet/headers.hpp"

namespace vnk::packet {

constexpr std::size_t kIcmpHeaderSize = 8;
namespace icmp_type {
constexpr std::uint8_t kEchoReply = 0;
constexpr std::uint8_t kEchoRequest = 8;
constexpr std::uint8_t kDestUnreachable = 3;
}  // namespace icmp_type
namespace icmp_unreachable {
constexpr std::uint8_t kAdminProhibited = 13;  // RFC 1812 §5.2.7.1: refused by policy
}  // namespace icmp_unreachable

// The bytes of the offending datagram a Destination Unreachable quotes: its
// IP header and the first 8 bytes of its payload (RFC 792).
constexpr std::size_t kIcmpQuoteMax = kIpv4MaxHeaderSize + 8;

// Writes a Destination Unreachable message with `code` quoting `original`
// (at most kIcmpQuoteMax bytes are used) into `out`; returns its length, or
// 0 when `out` is too small.
std::size_t write_icmp_unreachable(std::span<std::byte> out, std::uint8_t code, std::span<const std::byte> original);

struct IcmpEcho {
  std::uint8_t type = 0, code = 0;
  std::uint16_t id = 0, seq = 0;
};
// Parses an echo request or reply whose message is whole in ip.payload and
// checks its checksum; other types are ParseError::unsupported.
std::expected<IcmpEcho, ParseError> parse_icmp_echo(const Ipv4& ip);

}  // namespace vnk::packet
