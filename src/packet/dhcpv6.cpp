#include "packet/dhcpv6.hpp"

#include <algorithm>

#include "base/byte_order.hpp"

namespace vnk::packet {

std::expected<Dhcpv6Message, ParseError> parse_dhcpv6(std::span<const std::byte> b) {
  if (b.size() < 4) return std::unexpected(ParseError::truncated);
  Dhcpv6Message m;
  m.type = static_cast<std::uint8_t>(b[0]);
  m.transaction = load_be<std::uint32_t>(b.data()) & 0xffffff;
  for (std::size_t i = 4; i < b.size();) {
    if (i + 4 > b.size()) return std::unexpected(ParseError::truncated);
    const std::uint16_t code = load_be<std::uint16_t>(b.data() + i);
    const std::size_t len = load_be<std::uint16_t>(b.data() + i + 2);
    if (i + 4 + len > b.size()) return std::unexpected(ParseError::bad_length);
    const auto value = b.subspan(i + 4, len);
    switch (code) {
      case dhcpv6_option::kClientId:
      case dhcpv6_option::kServerId:
        if (len == 0 || len > kMaxDuidSize) return std::unexpected(ParseError::bad_length);
        (code == dhcpv6_option::kClientId ? m.client_id : m.server_id) = value;
        break;
      case dhcpv6_option::kIaNa:
        if (len < 12) return std::unexpected(ParseError::bad_length);  // IAID, T1, T2
        if (!m.ia_na) m.ia_na = load_be<std::uint32_t>(value.data());
        break;
      case dhcpv6_option::kRapidCommit: m.rapid_commit = true; break;
      default: break;
    }
    i += 4 + len;
  }
  return m;
}

Dhcpv6Writer::Dhcpv6Writer(std::span<std::byte> out, std::uint8_t type, std::uint32_t transaction) : out_(out) {
  if (std::byte* p = reserve(4)) store_be<std::uint32_t>(p, std::uint32_t{type} << 24 | (transaction & 0xffffff));
}

std::byte* Dhcpv6Writer::reserve(std::size_t n) {
  if (!ok_ || out_.size() - n_ < n) {
    ok_ = false;
    return nullptr;
  }
  std::byte* p = out_.data() + n_;
  n_ += n;
  return p;
}

void Dhcpv6Writer::option(std::uint16_t code, std::span<const std::byte> value) {
  std::byte* p = reserve(4 + value.size());
  if (p == nullptr) return;
  store_be<std::uint16_t>(p, code);
  store_be<std::uint16_t>(p + 2, static_cast<std::uint16_t>(value.size()));
  std::copy(value.begin(), value.end(), p + 4);
}

void Dhcpv6Writer::option_u32(std::uint16_t code, std::uint32_t value) {
  std::array<std::byte, 4> v{};
  store_be<std::uint32_t>(v.data(), value);
  option(code, v);
}

void Dhcpv6Writer::begin(std::uint16_t code, std::span<const std::byte> fixed) {
  const std::size_t at = n_;
  option(code, fixed);
  if (ok_) open_ = at;
}

void Dhcpv6Writer::end() {
  if (!ok_ || open_ == SIZE_MAX) return;
  store_be<std::uint16_t>(out_.data() + open_ + 2, static_cast<std::uint16_t>(n_ - open_ - 4));
  open_ = SIZE_MAX;
}

void Dhcpv6Writer::status(std::uint16_t code, std::string_view message) {
  std::byte* p = reserve(6 + message.size());
  if (p == nullptr) return;
  store_be<std::uint16_t>(p, dhcpv6_option::kStatusCode);
  store_be<std::uint16_t>(p + 2, static_cast<std::uint16_t>(2 + message.size()));
  store_be<std::uint16_t>(p + 4, code);
  std::transform(message.begin(), message.end(), p + 6, [](char c) { return static_cast<std::byte>(c); });
}

}  // namespace vnk::packet
