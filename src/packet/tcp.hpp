// TCP (RFC 9293) header parsing and writing for usernet.
//
// The parser reads the fixed header and the options usernet uses (MSS,
// window scale and SACK-permitted on SYNs; SACK blocks on ACKs); it needs only the header bytes, since the payload
// may stay in guest memory. The writer fills the header, with options on
// SYNs; the checksum covers the payload, so the caller finishes it with
// tcp_checksum() once the payload is in place.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>

#include "packet/checksum.hpp"
#include "packet/headers.hpp"

namespace vnk::packet {

constexpr std::size_t kTcpHeaderSize = 20;     // without options
constexpr std::size_t kTcpMaxHeaderSize = 60;  // data offset 15
namespace tcp_flag {
constexpr std::uint8_t kFin = 0x01;
constexpr std::uint8_t kSyn = 0x02;
constexpr std::uint8_t kRst = 0x04;
constexpr std::uint8_t kPsh = 0x08;
constexpr std::uint8_t kAck = 0x10;
constexpr std::uint8_t kUrg = 0x20;
}  // namespace tcp_flag

// One SACK block (RFC 2018): bytes [left, right) received beyond the ACK.
struct SackBlock {
  std::uint32_t left = 0, right = 0;
};
// Blocks usernet writes in its ACKs (with the timestamp-free header, three fit).
constexpr std::size_t kMaxSackBlocks = 3;

struct Tcp {
  std::uint16_t src_port = 0, dst_port = 0;
  std::uint32_t seq = 0, ack = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  std::uint8_t header_len = 0;       // bytes, including options
  std::size_t payload_len = 0;       // segment bytes after the header
  std::optional<std::uint16_t> mss;  // option 2
  std::optional<std::uint8_t> wscale;  // option 3, clamped to 14 (RFC 7323)
  bool sack_permitted = false;         // option 4 (RFC 2018), on SYNs
  // Option 5 (RFC 2018): up to four SACK blocks, as sent (not yet checked
  // against any connection's sequence space).
  std::array<SackBlock, 4> sack{};
  std::uint8_t sack_count = 0;
  [[nodiscard]] bool has(std::uint8_t f) const noexcept { return (flags & f) != 0; }
};
// `ip.payload` must hold at least the TCP header; the segment's length comes
// from ip.payload_len. The checksum is not verified here (see tcp_checksum).
std::expected<Tcp, ParseError> parse_tcp(const IpPacket& ip);
inline std::expected<Tcp, ParseError> parse_tcp(const Ipv4& ip) { return parse_tcp(ip_packet(ip)); }


struct TcpFields {
  std::uint16_t src_port = 0, dst_port = 0;
  std::uint32_t seq = 0, ack = 0;
  std::uint8_t flags = 0;
  std::uint16_t window = 0;
  std::optional<std::uint16_t> mss;    // written when set (SYN only)
  std::optional<std::uint8_t> wscale;  // written when set (SYN only)
  bool sack_permitted = false;         // written when set (SYN only)
  std::span<const SackBlock> sack;     // at most kMaxSackBlocks, written when not empty (ACKs)
};
// Bytes write_tcp() will write for these fields.
[[nodiscard]] std::size_t tcp_header_size(const TcpFields& f) noexcept;
// Writes the header with a zero checksum; returns its size.
std::size_t write_tcp(std::span<std::byte> out, const TcpFields& f);
// Ethernet + IP + TCP headers of a whole frame whose `payload_len` payload
// bytes lie elsewhere (or follow at out[return value]) with checksum
// `payload_sum` (Checksum over the payload from its first byte). Writes the
// headers, checksum included; returns their size.
struct TcpEndpoints {
  MacAddress dst_mac, src_mac;
  IpAddress src, dst;  // of one family
};
std::size_t write_tcp_frame_headers(std::span<std::byte> out, const TcpEndpoints& e, const TcpFields& t,
                                    std::size_t payload_len, const Checksum& payload_sum, std::uint16_t ip_id);
// Stores the checksum for a segment whose header is at `tcp_header` (its
// checksum field zero) and whose sum over header + payload `sum` already
// holds, given the pseudo-header fields.
void store_tcp_checksum(std::span<std::byte> tcp_header, Checksum sum, const IpAddress& src, const IpAddress& dst,
                        std::size_t segment_len) noexcept;

}  // namespace vnk::packet
