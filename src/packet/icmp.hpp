// ICMPv4 echo (RFC 792): the only ICMP usernet relays. The message is the
// 8-byte header (type, code, checksum, identifier, sequence) and the data.
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
}  // namespace icmp_type

struct IcmpEcho {
  std::uint8_t type = 0, code = 0;
  std::uint16_t id = 0, seq = 0;
};
// Parses an echo request or reply whose message is whole in ip.payload and
// checks its checksum; other types are ParseError::unsupported.
std::expected<IcmpEcho, ParseError> parse_icmp_echo(const Ipv4& ip);

}  // namespace vnk::packet
