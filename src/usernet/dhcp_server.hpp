// The DHCPv4 server of the user-mode network. One guest, one lease: the
// configured guest address, as QEMU's user networking does. Answers
// DISCOVER with OFFER, REQUEST with ACK (or NAK for another address),
// INFORM with ACK (no lease), and takes note of RELEASE/DECLINE.
#pragma once

#include <cstddef>
#include <span>

#include "packet/dhcp.hpp"
#include "usernet/usernet_config.hpp"
#include "usernet/usernet_counters.hpp"

namespace vnk::usernet {

class DhcpServer {
 public:
  DhcpServer(const UsernetConfig& cfg, UsernetCounters& counters) : cfg_(cfg), counters_(counters) {}

  // Handles a client message; writes the whole reply frame (Ethernet, IPv4,
  // UDP, DHCP) into `out` and returns its size, or 0 when no reply is due.
  std::size_t handle(const packet::DhcpMessage& msg, std::span<std::byte> out);

  [[nodiscard]] bool leased() const noexcept { return leased_; }

 private:
  std::size_t reply(const packet::DhcpMessage& msg, std::uint8_t type, std::span<std::byte> out);

  const UsernetConfig& cfg_;
  UsernetCounters& counters_;
  bool leased_ = false;
};

}  // namespace vnk::usernet
