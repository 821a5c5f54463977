// The DHCPv4 server of the user-mode network. Answers DISCOVER with OFFER,
// REQUEST with ACK (or NAK for an address that is not the client's), INFORM
// with ACK (no lease), and frees the lease on RELEASE/DECLINE.
//
// Leases: with one guest (the default) the configured guest address goes to
// whichever MAC asks, as QEMU's user networking does. With several
// (UsernetConfig::guests) each client MAC holds one address of the pool
// guest .. guest + guests - 1 until it releases it or the lease runs out; an
// offer not taken up is held for kOfferMs. A new MAC finds the lowest free
// address -- or the one it asks for, when that is free (a guest rebooting
// after vnetkit restarted keeps its address) -- or, when all are held,
// no answer (counted in dhcp_pool_exhausted).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/mac_address.hpp"
#include "packet/dhcp.hpp"
#include "usernet/usernet_config.hpp"
#include "usernet/usernet_counters.hpp"

namespace vnk::usernet {

class DhcpServer {
 public:
  static constexpr std::uint64_t kOfferMs = 60'000;

  DhcpServer(const UsernetConfig& cfg, UsernetCounters& counters);

  // Handles a client message at `now_ms` (monotonic milliseconds); writes
  // the whole reply frame (Ethernet, IPv4, UDP, DHCP) into `out` and returns
  // its size, or 0 when no reply is due.
  std::size_t handle(const packet::DhcpMessage& msg, std::uint64_t now_ms, std::span<std::byte> out);

  // Some client holds a lease it asked for (REQUEST acknowledged).
  [[nodiscard]] bool leased() const noexcept;
  // The pool index `mac` holds, reserving a free one for it (as offered)
  // when it holds none: the DHCPv6 server hands out the IPv6 address of the
  // same index. nullopt when the pool is full.
  std::optional<std::uint32_t> guest_index(const MacAddress& mac, std::uint64_t now_ms);
  // The address bound to `mac`, if any.
  [[nodiscard]] std::optional<packet::Ipv4Address> lease_of(const MacAddress& mac) const noexcept;

 private:
  struct Lease {
    MacAddress mac;
    std::uint64_t expires_ms = 0;
    bool held = false;   // offered or bound to `mac`
    bool bound = false;  // acknowledged
  };
  // The pool index `mac` holds, or a free one (`wanted` if that is free)
  // it now holds as offered; nullopt when none is free.
  std::optional<std::size_t> place(const MacAddress& mac, std::optional<packet::Ipv4Address> wanted,
                                   std::uint64_t now_ms);
  [[nodiscard]] std::optional<std::size_t> index_of(packet::Ipv4Address ip) const noexcept;
  std::size_t reply(const packet::DhcpMessage& msg, std::uint8_t type, packet::Ipv4Address yiaddr,
                    std::span<std::byte> out);

  const UsernetConfig& cfg_;
  UsernetCounters& counters_;
  std::vector<Lease> pool_;  // index i is cfg_.guest + i
};

}  // namespace vnk::usernet
