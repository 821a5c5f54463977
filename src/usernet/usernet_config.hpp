// Addressing of the user-mode network. The defaults are QEMU's user
// networking, which users already know: 10.0.2.0/24, gateway 10.0.2.2, DNS
// 10.0.2.3, the guest's lease 10.0.2.15.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/host_features.hpp"
#include "base/mac_address.hpp"
#include "packet/ip_address.hpp"
#include "packet/ipv4_address.hpp"
#include "packet/ipv6_address.hpp"

namespace vnk::usernet {

using packet::IpAddress;
using packet::Ipv4Address;

struct UsernetConfig {
  Ipv4Address network = Ipv4Address::of(10, 0, 2, 0);
  unsigned prefix = 24;
  Ipv4Address gateway = Ipv4Address::of(10, 0, 2, 2);
  Ipv4Address dns = Ipv4Address::of(10, 0, 2, 3);
  Ipv4Address guest = Ipv4Address::of(10, 0, 2, 15);
  // Guests on the link at once (vnetkit serve --guests). DHCP leases
  // `guest` and the next guests - 1 addresses, one per client MAC; with one
  // guest any MAC gets `guest` (a guest that comes back with a new MAC keeps
  // its address). Forwards reach `guest`.
  unsigned guests = 1;
  static constexpr unsigned kMaxGuests = 64;
  // The gateway's (and DNS address's) MAC, as QEMU's slirp uses.
  MacAddress gateway_mac{{0x52, 0x55, 0x0a, 0x00, 0x02, 0x02}};
  // The guest's MAC when known before it sends a frame (a TAP device in a
  // namespace); otherwise it is learned from the guest's first frame. Needed
  // before the guest speaks only by inbound port forwards.
  std::optional<MacAddress> guest_mac;
  // Handed out by DHCP (option 26). Large, so bulk transfers need few frames.
  std::uint16_t mtu = 65520;
  std::uint32_t lease_seconds = 86400;
  std::string hostname;  // DHCP option 12, when set
  std::string domain;    // DHCP option 15, when set
  // Connections and pings to the gateway reach the host's 127.0.0.1.
  bool map_gateway_to_loopback = true;
  // Only the gateway (host loopback) and DNS addresses are reachable: no
  // connection, datagram or ping goes to any other address.
  bool host_only = false;
  // Link-local 169.254.0.0/16 (the cloud's instance metadata and credential
  // services) is reachable through host sockets. Off: refused and counted.
  bool allow_link_local = false;
  // Where queries to the DNS address (UDP and TCP port 53) are forwarded;
  // the first is used. Empty: DNS is not served.
  struct Upstream {
    IpAddress address;  // either family
    std::uint16_t port = 53;
  };
  std::vector<Upstream> dns_upstreams;
  // Inbound port forwards: a host socket on host_address:host_port whose
  // connections (TCP) or datagrams (UDP) reach the guest's guest_port, from
  // the gateway address.
  struct Forward {
    std::uint8_t protocol = 6;  // packet::ip_proto::kTcp or kUdp
    IpAddress host_address = Ipv4Address::of(127, 0, 0, 1);  // either family
    std::uint16_t host_port = 0;
    std::uint16_t guest_port = 0;
  };
  std::vector<Forward> forwards;
  // IPv6 on the link: Neighbor Discovery (Router Advertisements for SLAAC,
  // Neighbor Advertisements for the gateway's addresses), DHCPv6, and TCP,
  // UDP and ICMPv6 echo through host sockets.
  struct Ipv6 {
    bool enabled = false;
    packet::Ipv6Address prefix{{0xfd, 0x00}};                                         // fd00::/64
    packet::Ipv6Address gateway{{0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}};  // fd00::2
    packet::Ipv6Address dns{{0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3}};      // fd00::3
    // DHCPv6 hands out this address (stateful) when dhcp_address is set;
    // otherwise it answers with the DNS servers and search list only
    // (stateless) and the guest configures itself by SLAAC.
    bool dhcp_address = false;
    packet::Ipv6Address guest{{0xfd, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x15}};  // fd00::15
  };
  Ipv6 ipv6;
  // When set, every frame both ways is written to this pcap file.
  std::string pcap_path;
  // What the host kernel offers (SO_PEEK_OFF on TCP, ping sockets, ...);
  // probed at start-up when unset. Tests set it to run each fallback.
  std::optional<HostFeatures> host;
  // Milliseconds on a monotonic clock: CLOCK_MONOTONIC unless a test sets
  // its own, to drive timers (retransmission, probes, idle flows) without
  // waiting.
  std::uint64_t (*clock)() noexcept = nullptr;
  // Sockets the guest's flows may hold at once; from RLIMIT_NOFILE less a
  // reserve (FdBudget) when unset.
  std::optional<std::size_t> flow_fds;

  [[nodiscard]] Ipv4Address netmask() const noexcept {
    return Ipv4Address{prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix)};
  }
  [[nodiscard]] Ipv4Address broadcast() const noexcept { return Ipv4Address{network.value | ~netmask().value}; }
};

// Checks that the addresses fit together: prefix 8..30, gateway, DNS and the
// guests' addresses (guest .. guest + guests - 1) distinct, inside the
// network, and neither its network nor broadcast address; MTU 576..65520. The error is a sentence for the user.
std::expected<UsernetConfig, std::string> validate(UsernetConfig cfg);

// The "nameserver" lines of a resolv.conf text, IPv4 ones first.
std::vector<UsernetConfig::Upstream> parse_resolv_conf(std::string_view text);
// "tcp:HOSTPORT:GUESTPORT", "udp:…", or with the host address first,
// "tcp:ADDRESS:HOSTPORT:GUESTPORT" ("tcp:[::1]:8080:80"); nullopt when
// malformed.
std::optional<UsernetConfig::Forward> parse_forward(std::string_view text);
// "IP", "IP:PORT", "IPV6" or "[IPV6]:PORT"; nullopt when malformed.
std::optional<UsernetConfig::Upstream> parse_upstream(std::string_view text);

}  // namespace vnk::usernet
