#include "packet/icmp.hpp"

#include <algorithm>

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

std::size_t write_icmp_unreachable(std::span<std::byte> out, std::uint8_t code, std::span<const std::byte> original) {
  const std::size_t quote = std::min(original.size(), kIcmpQuoteMax);
  const std::size_t len = kIcmpHeaderSize + quote;
  if (out.size() < len) return 0;
  std::fill_n(out.begin(), kIcmpHeaderSize, std::byte{0});  // the 4 bytes after the checksum are unused
  out[0] = std::byte{icmp_type::kDestUnreachable};
  out[1] = std::byte{code};
  std::copy_n(original.begin(), quote, out.begin() + kIcmpHeaderSize);
  store_be<std::uint16_t>(out.data() + 2, internet_checksum(out.first(len)));
  return len;
}

}  // namespace vnk::packet
