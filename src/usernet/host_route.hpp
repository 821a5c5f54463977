// Where a guest's packet goes on the host -- the reachability policy (the
// README has it as a table): the gateway address means the host's own
// 127.0.0.1 (unless switched off), the DNS address on port 53 the upstream
// resolver; other addresses of the guest's network, 0/8, 127/8, multicast,
// reserved and broadcast go nowhere; link-local 169.254/16 -- where clouds
// serve instance metadata and credentials with the host's identity -- is
// refused unless allowed; everything else is itself.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <expected>

#include "usernet/usernet_config.hpp"

namespace vnk::usernet {

enum class RouteRefusal : std::uint8_t {
  no_route,    // nowhere to send it (counted as drop_no_route)
  link_local,  // refused by policy (drop_link_local): the guest is told (RST, ICMP unreachable)
};

// `port` is the destination port (0 for ICMP).
std::expected<sockaddr_in, RouteRefusal> host_destination(const UsernetConfig& cfg, std::uint8_t protocol,
                                                          Ipv4Address dst, std::uint16_t port) noexcept;

}  // namespace vnk::usernet
