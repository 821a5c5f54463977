// The gateway's side of IPv6 Neighbor Discovery (RFC 4861): it answers the
// guest's Router Solicitations with a Router Advertisement (the prefix for
// SLAAC, the MTU, RDNSS and DNSSL of RFC 8106) and Neighbor Solicitations
// for the gateway's and DNS server's addresses with Neighbor
// Advertisements, and learns the addresses the guest uses.
#pragma once

#include <array>
#include <cstddef>
#include <span>

#include "base/mac_address.hpp"
#include "packet/icmpv6.hpp"
#include "usernet/usernet_config.hpp"
#include "usernet/usernet_counters.hpp"

namespace vnk::usernet {

class NdpResponder {
 public:
  NdpResponder(const UsernetConfig& cfg, UsernetCounters& counters);

  // One ICMPv6 NDP message from the guest (`guest_mac` its Ethernet
  // source). Writes the answer frame into `out` and returns its length, or
  // 0 when there is none (counted as ignored or malformed).
  std::size_t handle(const packet::Ipv6& ip, const packet::Icmpv6& msg, const MacAddress& guest_mac,
                     std::span<std::byte> out);

  // Is `a` one of the gateway's addresses (global, link-local) or the DNS address?
  [[nodiscard]] bool owns(const packet::Ipv6Address& a) const noexcept;
  // The guest's addresses seen so far as sources (link-local, SLAAC, ...),
  // the most recent last; at most kMaxGuestAddresses.
  static constexpr std::size_t kMaxGuestAddresses = 4;
  [[nodiscard]] std::span<const packet::Ipv6Address> guest_addresses() const noexcept {
    return std::span(guest_addresses_.data(), guest_address_count_);
  }
  // Notes a source address the guest used (unicast only).
  void learn(const packet::Ipv6Address& a) noexcept;

 private:
  std::size_t router_advert(const packet::Ipv6& ip, const packet::Icmpv6& msg, const MacAddress& guest_mac,
                            std::span<std::byte> out);
  std::size_t neighbor_advert(const packet::Ipv6& ip, const packet::Icmpv6& msg, const MacAddress& guest_mac,
                              std::span<std::byte> out);

  const UsernetConfig& cfg_;
  UsernetCounters& counters_;
  packet::Ipv6Address link_local_;  // the gateway's: the source of its advertisements, the guest's next hop
  std::array<packet::Ipv6Address, kMaxGuestAddresses> guest_addresses_{};
  std::size_t guest_address_count_ = 0;
};

}  // namespace vnk::usernet
