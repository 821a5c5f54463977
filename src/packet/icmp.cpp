#include "packet/icmp.hpp"

#include "base/byte_order.hpp"
#include "packet/checksum.hpp"

namespace vnk::packet {

std::expected<IcmpEcho, ParseError> parse_icmp_echo(const Ipv4& ip) {
  const auto b = ip.payload;
  if (ip.payload_len < kIcmpHeaderSize || b.size() < ip.payload_len) return std::unexpected(ParseError::truncated);
  IcmpEcho e{static_cast<std::uint8_t>(b[0]), static_cast<std::uint8_t>(b[1]), load_be<std::uint16_t>(b.data() + 4),
             load_be<std::uint16_t>(b.data() + 6)};
  if ((e.type != icmp_type::kEchoRequest && e.type != icmp_type::kEchoReply) || e.code != 0)
    return std::unexpected(ParseError::unsupported);
  if (internet_checksum(b) != 0) return std::unexpected(ParseError::bad_checksum);
  return e;
}

}  // namespace vnk::packet
