// DHCPv6 (RFC 8415) as the server of a one-guest link needs it: the fields
// of a client's message (its type, transaction, Client and Server
// Identifiers, the first IA_NA it asks for, Rapid Commit) and a writer for
// the server's messages and their options, nested ones (IA_NA holding
// IAADDR or a Status Code) included.
//
// The parser walks the option list with every length checked against the
// bytes present; options it does not use are skipped, a list that runs past
// its end refuses the message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string_view>

#include "packet/headers.hpp"
#include "packet/ipv6_address.hpp"

namespace vnk::packet {

constexpr std::uint16_t kDhcpv6ClientPort = 546;
constexpr std::uint16_t kDhcpv6ServerPort = 547;
// ff02::1:2, All_DHCP_Relay_Agents_and_Servers: where clients send.
inline constexpr Ipv6Address kDhcpv6Servers{{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2}};

namespace dhcpv6_type {
constexpr std::uint8_t kSolicit = 1;
constexpr std::uint8_t kAdvertise = 2;
constexpr std::uint8_t kRequest = 3;
constexpr std::uint8_t kConfirm = 4;
constexpr std::uint8_t kRenew = 5;
constexpr std::uint8_t kRebind = 6;
constexpr std::uint8_t kReply = 7;
constexpr std::uint8_t kRelease = 8;
constexpr std::uint8_t kDecline = 9;
constexpr std::uint8_t kInformationRequest = 11;
}  // namespace dhcpv6_type

namespace dhcpv6_option {
constexpr std::uint16_t kClientId = 1;
constexpr std::uint16_t kServerId = 2;
constexpr std::uint16_t kIaNa = 3;
constexpr std::uint16_t kIaAddr = 5;
constexpr std::uint16_t kStatusCode = 13;
constexpr std::uint16_t kRapidCommit = 14;
constexpr std::uint16_t kDnsServers = 23;    // RFC 3646
constexpr std::uint16_t kDomainList = 24;    // RFC 3646
constexpr std::uint16_t kInformationRefreshTime = 32;
}  // namespace dhcpv6_option

namespace dhcpv6_status {
constexpr std::uint16_t kSuccess = 0;
constexpr std::uint16_t kNoAddrsAvail = 2;
}  // namespace dhcpv6_status

// A DUID is at most 128 bytes (RFC 8415 §11.1).
constexpr std::size_t kMaxDuidSize = 128;

struct Dhcpv6Message {
  std::uint8_t type = 0;
  std::uint32_t transaction = 0;  // 24 bits
  std::optional<std::span<const std::byte>> client_id;  // the DUID, as sent
  std::optional<std::span<const std::byte>> server_id;
  std::optional<std::uint32_t> ia_na;  // the IAID of the first IA_NA
  bool rapid_commit = false;
};
// `bytes` is the UDP payload. Refuses (ParseError) a message shorter than
// its 4-byte header, an option list that does not fit, an IA_NA shorter
// than its 12 fixed bytes and a DUID that is empty or over kMaxDuidSize.
std::expected<Dhcpv6Message, ParseError> parse_dhcpv6(std::span<const std::byte> bytes);

// Builds a server message into `out`; every call checks room, and ok()
// turns false for good once something did not fit.
class Dhcpv6Writer {
 public:
  Dhcpv6Writer(std::span<std::byte> out, std::uint8_t type, std::uint32_t transaction);
  void option(std::uint16_t code, std::span<const std::byte> value);
  void option_u32(std::uint16_t code, std::uint32_t value);
  // An option whose value is other options: begin() writes its header and
  // `fixed` leading bytes, end() sets its length once the inner ones are in.
  void begin(std::uint16_t code, std::span<const std::byte> fixed);
  void end();
  void status(std::uint16_t code, std::string_view message);
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  [[nodiscard]] std::size_t size() const noexcept { return ok_ ? n_ : 0; }

 private:
  std::byte* reserve(std::size_t n);
  std::span<std::byte> out_;
  std::size_t n_ = 0;
  std::size_t open_ = SIZE_MAX;  // offset of the option begin() started
  bool ok_ = true;
};

}  // namespace vnk::packet
