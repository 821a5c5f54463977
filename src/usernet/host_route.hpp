// Where a guest's packet goes on the host -- the reachability policy (the
// README has it as a table), for both families.
//
// IPv4: the gateway address means the host's own 127.0.0.1 (unless switched
// off), the DNS address on port 53 the upstream resolver; other addresses
// of the guest's network, 0/8, 127/8, multicast, reserved and broadcast go
// nowhere; link-local 169.254/16 -- where clouds serve instance metadata
// and credentials with the host's identity -- is refused unless allowed;
// everything else is itself.
//
// IPv6 the same way: the gateway's IPv6 address is the host's ::1, the DNS
// one the resolver (of either family); the guest's prefix, multicast, ::,
// ::1 and IPv4-compatible addresses go nowhere, IPv4-mapped ones take the
// IPv4 rules (an IpAddress holds IPv4 that way; usernet drops IPv6 packets
// that carry one); link-local fe80::/10, the
// metadata service's fd00:ec2::254 and a NAT64 address (64:ff9b::/96)
// embedding 169.254/16 are refused unless link-local is allowed.
#pragma once

#include <cstdint>
#include <expected>

#include "packet/ip_address.hpp"
#include "usernet/socket_address.hpp"
#include "usernet/usernet_config.hpp"

namespace vnk::usernet {

enum class RouteRefusal : std::uint8_t {
  no_route,    // nowhere to send it (counted as drop_no_route)
  link_local,  // refused by policy (drop_link_local): the guest is told (RST, ICMP unreachable)
};

// `dst` is of the guest packet's family; the answer may be of the other
// (the DNS resolver's). `port` is the destination port (0 for ICMP).
std::expected<SocketAddress, RouteRefusal> host_destination(const UsernetConfig& cfg, std::uint8_t protocol,
                                                            const packet::IpAddress& dst, std::uint16_t port) noexcept;

}  // namespace vnk::usernet
