// Where a guest's packet goes on the host: the gateway address means the
// host's own 127.0.0.1 (unless switched off), the DNS address on port 53
// means the upstream resolver, other addresses of the guest's network and
// broadcast/multicast/loopback go nowhere, and everything else is itself.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <optional>

#include "usernet/usernet_config.hpp"

namespace vnk::usernet {

// `port` is the destination port (0 for ICMP). nullopt: drop the packet.
std::optional<sockaddr_in> host_destination(const UsernetConfig& cfg, std::uint8_t protocol, Ipv4Address dst,
                                            std::uint16_t port) noexcept;

}  // namespace vnk::usernet
