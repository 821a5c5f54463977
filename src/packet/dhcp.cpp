#include "packet/dhcp.hpp"

#include <algorithm>
#include <array>

#include "base/byte_order.hpp"

namespace vnk::packet {

namespace {
constexpr std::uint32_t kMagicCookie = 0x63825363;
constexpr std::size_t kChaddr = 28, kCookie = 236;
}  // namespace

std::expected<DhcpMessage, ParseError> parse_dhcp(std::span<const std::byte> b) {
  if (b.size() < kDhcpFixedSize) return std::unexpected(ParseError::truncated);
  DhcpMessage m;
  m.op = static_cast<std::uint8_t>(b[0]);
  // htype 1 (Ethernet), hlen 6.
  if ((m.op != 1 && m.op != 2) || b[1] != std::byte{1} || b[2] != std::byte{6})
    return std::unexpected(ParseError::unsupported);
  if (load_be<std::uint32_t>(b.data() + kCookie) != kMagicCookie) return std::unexpected(ParseError::bad_version);
  m.xid = load_be<std::uint32_t>(b.data() + 4);
  m.flags = load_be<std::uint16_t>(b.data() + 10);
  m.ciaddr = Ipv4Address{load_be<std::uint32_t>(b.data() + 12)};
  m.yiaddr = Ipv4Address{load_be<std::uint32_t>(b.data() + 16)};
  m.siaddr = Ipv4Address{load_be<std::uint32_t>(b.data() + 20)};
  m.giaddr = Ipv4Address{load_be<std::uint32_t>(b.data() + 24)};
  for (std::size_t i = 0; i < 6; ++i) m.chaddr.octets[i] = static_cast<std::uint8_t>(b[kChaddr + i]);

  std::size_t i = kDhcpFixedSize;
  while (i < b.size()) {
    const auto code = static_cast<std::uint8_t>(b[i]);
    if (code == dhcp_option::kEnd) break;
    if (code == dhcp_option::kPad) {
      ++i;
      continue;
    }
    if (i + 2 > b.size()) return std::unexpected(ParseError::truncated);
    const auto len = static_cast<std::size_t>(b[i + 1]);
    if (i + 2 + len > b.size()) return std::unexpected(ParseError::bad_length);
    const auto v = b.subspan(i + 2, len);
    switch (code) {
      case dhcp_option::kMessageType:
        if (len != 1) return std::unexpected(ParseError::bad_length);
        m.message_type = static_cast<std::uint8_t>(v[0]);
        break;
      case dhcp_option::kRequestedIp:
        if (len != 4) return std::unexpected(ParseError::bad_length);
        m.requested_ip = Ipv4Address{load_be<std::uint32_t>(v.data())};
        break;
      case dhcp_option::kServerId:
        if (len != 4) return std::unexpected(ParseError::bad_length);
        m.server_id = Ipv4Address{load_be<std::uint32_t>(v.data())};
        break;
      default: break;
    }
    i += 2 + len;
  }
  return m;
}

DhcpWriter::DhcpWriter(std::span<std::byte> out, const DhcpMessage& req, std::uint8_t type, Ipv4Address yiaddr,
                       Ipv4Address siaddr)
    : out_(out) {
  if (out_.size() < kDhcpFixedSize + 3) {
    overflow_ = true;
    return;
  }
  std::fill_n(out_.begin(), kDhcpFixedSize, std::byte{0});
  out_[0] = std::byte{2};  // BOOTREPLY
  out_[1] = std::byte{1};
  out_[2] = std::byte{6};
  store_be<std::uint32_t>(out_.data() + 4, req.xid);
  store_be<std::uint16_t>(out_.data() + 10, req.flags);
  store_be<std::uint32_t>(out_.data() + 16, yiaddr.value);
  store_be<std::uint32_t>(out_.data() + 20, siaddr.value);
  store_be<std::uint32_t>(out_.data() + 24, req.giaddr.value);
  for (std::size_t i = 0; i < 6; ++i) out_[kChaddr + i] = static_cast<std::byte>(req.chaddr.octets[i]);
  store_be<std::uint32_t>(out_.data() + kCookie, kMagicCookie);
  option_u8(dhcp_option::kMessageType, type);
}

void DhcpWriter::option(std::uint8_t code, std::span<const std::byte> value) {
  // Room for this option and the END byte after it.
  if (overflow_ || value.size() > 255 || pos_ + 2 + value.size() + 1 > out_.size()) {
    overflow_ = true;
    return;
  }
  out_[pos_] = static_cast<std::byte>(code);
  out_[pos_ + 1] = static_cast<std::byte>(value.size());
  std::copy(value.begin(), value.end(), out_.begin() + static_cast<std::ptrdiff_t>(pos_ + 2));
  pos_ += 2 + value.size();
}

void DhcpWriter::option_u8(std::uint8_t code, std::uint8_t v) {
  const std::array<std::byte, 1> b{static_cast<std::byte>(v)};
  option(code, b);
}

void DhcpWriter::option_u16(std::uint8_t code, std::uint16_t v) {
  std::array<std::byte, 2> b{};
  store_be<std::uint16_t>(b.data(), v);
  option(code, b);
}

void DhcpWriter::option_u32(std::uint8_t code, std::uint32_t v) {
  std::array<std::byte, 4> b{};
  store_be<std::uint32_t>(b.data(), v);
  option(code, b);
}

std::size_t DhcpWriter::finish() {
  if (overflow_) return 0;
  out_[pos_++] = static_cast<std::byte>(dhcp_option::kEnd);
  // BOOTP clients expect at least 300 bytes.
  while (pos_ < 300 && pos_ < out_.size()) out_[pos_++] = std::byte{0};
  return pos_;
}

}  // namespace vnk::packet
