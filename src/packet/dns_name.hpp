// Domain names in DNS wire form (RFC 1035 §3.1): length-prefixed labels
// and a zero byte, as the DNSSL option of Router Advertisements (RFC 8106)
// and DHCPv6's Domain Search List (RFC 3646) carry them.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace vnk::packet {

// Writes `name` ("example.internal", no trailing dot) at `out`; returns the
// bytes written, or 0 when it does not fit or is not a valid name (an empty
// label, a label over 63 bytes, over 255 bytes in all).
std::size_t write_dns_name(std::span<std::byte> out, std::string_view name);

}  // namespace vnk::packet
