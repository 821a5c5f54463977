// The kernel end of a TAP device and the ioctls that set an interface up:
// what `ip link/addr/route` would do, without netlink or a helper binary.
//
// The TAP is opened with IFF_VNET_HDR: every read() and write() on its fd
// carries one Ethernet frame behind a 12-byte virtio-net header
// (TUNSETVNETHDRSZ), the same header the virtio device exchanges with a guest,
// so checksum and segmentation offloads can be turned on later without a
// change of framing.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>

#include "base/mac_address.hpp"
#include "base/unique_fd.hpp"

namespace vnk::netns {

// Creates the TAP device `name` in the calling thread's network namespace and
// returns its nonblocking fd. Errors are sentences for the user (a missing
// /dev/net/tun and a missing CAP_NET_ADMIN say how to fix them).
std::expected<UniqueFd, std::string> create_tap(const std::string& name);

// IPv4 addresses in host byte order.
struct InterfaceSettings {
  std::string name;
  MacAddress mac;
  std::uint16_t mtu = 1500;
  std::uint32_t address = 0;
  unsigned prefix = 24;
  std::optional<std::uint32_t> gateway;  // installed as the default route
  bool ipv6 = false;  // leave IPv6 on: the kernel configures itself from usernet's Router Advertisement
};

// Sets MAC, MTU, address and netmask, brings the interface up and adds the
// default route, in the calling thread's network namespace. Unless
// `ipv6`, IPv6 is switched off on the interface when the namespace allows it
// (router solicitations would only be counted and dropped).
std::expected<void, std::string> configure_interface(const InterfaceSettings& s);

// Brings `lo` up: a fresh namespace starts with it down.
std::expected<void, std::string> bring_up_loopback();

}  // namespace vnk::netns
