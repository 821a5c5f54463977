// User-facing configuration of one virtio-net device.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "base/mac_address.hpp"

namespace vnk::net {

using vnk::MacAddress;

// Locally administered, unicast, the conventional first NIC.
inline constexpr MacAddress kDefaultMac{{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}};

constexpr std::uint16_t kMinQueuePairs = 1;
constexpr std::uint16_t kMaxQueuePairs = 256;
constexpr std::uint16_t kMinMtu = 68;  // RFC 791 minimum; Linux ignores a smaller device MTU

struct NetConfig {
  MacAddress mac = kDefaultMac;
  std::optional<std::uint16_t> mtu;  // offered as VIRTIO_NET_F_MTU when set
  std::uint16_t queue_pairs = 1;     // clamped to [1, 256]
  bool link_up = true;               // VIRTIO_NET_F_STATUS link state at start
  // Offer checksum and TCP segmentation offloads: GUEST_CSUM,
  // GUEST_TSO4 and GUEST_TSO6 (frames toward the guest may carry partial
  // checksums and be
  // GSO frames of up to 64 KiB: NetBackend::set_rx_offloads), and where the
  // backend takes them (NetBackend::tx_offloads) CSUM, HOST_TSO4 and HOST_TSO6.
  bool guest_offloads = true;
  // Offer MRG_RXBUF: one frame may span several posted RX buffers, so a
  // driver posting page-sized buffers still takes 64 KiB GSO frames.
  bool mergeable_rx = true;
};

// Clamps queue_pairs and rejects what no guest could use (a multicast MAC, an
// MTU below 68). The error is a sentence for the user.
std::expected<NetConfig, std::string> normalize(NetConfig cfg);

}  // namespace vnk::net
