// The DHCPv6 server of the user-mode network (RFC 8415), beside SLAAC: a
// guest configured by DHCPv6 gets the DNS address and search list
// (stateless: Information-Request) and, with --ipv6-dhcp-address, one
// address of its own (stateful: Solicit/Request/Renew/Rebind, Rapid Commit
// honoured). Each guest gets the address at its DHCPv4 pool index
// (UsernetConfig::ipv6.guest + index), so its two leases go together.
//
// Messages are validated as RFC 8415 §16 asks of a server: a Solicit or
// Information-Request naming a server is not for us, a Request, Renew,
// Release or Decline must name us, and everything but an
// Information-Request must identify its client. Replies go from the
// gateway's link-local address to the client's address and port 546.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "base/mac_address.hpp"
#include "packet/dhcpv6.hpp"
#include "packet/ipv6.hpp"
#include "usernet/usernet_config.hpp"
#include "usernet/usernet_counters.hpp"

namespace vnk::usernet {

class Dhcpv6Server {
 public:
  static constexpr std::uint32_t kPreferredSeconds = 14400;
  static constexpr std::uint32_t kValidSeconds = 86400;

  Dhcpv6Server(const UsernetConfig& cfg, UsernetCounters& counters);

  // A client message (`ip` and `udp` parsed from it, `guest_mac` its
  // Ethernet source, `guest_index` the pool index its MAC holds, nullopt
  // when the pool is full: no address then). Writes the reply frame (Ethernet, IPv6, UDP, DHCPv6)
  // into `out` and returns its size, or 0 when none is due (counted).
  std::size_t handle(const packet::Ipv6Address& client, std::uint16_t client_port, const packet::Dhcpv6Message& msg,
                     const MacAddress& guest_mac, std::optional<std::uint32_t> guest_index,
                     std::span<std::byte> out);

 private:
  // DUID-LL (RFC 8415 §11.4) from the gateway's MAC.
  std::array<std::byte, 10> duid_{};
  packet::Ipv6Address link_local_;
  const UsernetConfig& cfg_;
  UsernetCounters& counters_;
};

}  // namespace vnk::usernet
