// The virtio-net header that precedes every frame (virtio 1.2 §5.1.6).
//
// With VIRTIO_F_VERSION_1 the header is always `struct virtio_net_hdr_v1`, 12
// bytes including num_buffers, whether or not MRG_RXBUF is negotiated (Linux
// virtnet_probe sets hdr_len to sizeof(virtio_net_hdr_mrg_rxbuf)). Fields are
// little-endian. On TX the driver's copy is parsed and stripped; on RX the
// device writes one with num_buffers = 1.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace vnk::net {

constexpr std::size_t kNetHeaderSize = 12;
// Largest frame after the header: Ethernet header (14) + two VLAN tags (8) +
// the largest MTU (65535), i.e. a QinQ frame at Linux's ETH_MAX_MTU.
constexpr std::size_t kMaxFrameSize = 65557;
constexpr std::size_t kEthernetHeaderSize = 14;

struct NetHeader {
  static constexpr std::uint8_t kFlagNeedsCsum = 1;
  static constexpr std::uint8_t kFlagDataValid = 2;
  static constexpr std::uint8_t kGsoNone = 0;
  static constexpr std::uint8_t kGsoTcpV4 = 1;
  static constexpr std::uint8_t kGsoTcpV6 = 4;
  static constexpr std::uint8_t kGsoEcn = 0x80;  // VIRTIO_NET_HDR_GSO_ECN, or'ed into a TCP type

  std::uint8_t flags = 0;
  std::uint8_t gso_type = kGsoNone;
  std::uint16_t hdr_len = 0;
  std::uint16_t gso_size = 0;
  std::uint16_t csum_start = 0;
  std::uint16_t csum_offset = 0;
  std::uint16_t num_buffers = 0;

  static NetHeader parse(std::span<const std::byte, kNetHeaderSize> raw) noexcept;
  [[nodiscard]] std::array<std::byte, kNetHeaderSize> serialize() const noexcept;
};

// What is wrong with a TX header from the guest, if anything, for a frame of
// `frame_len` bytes (header excluded). Every field is the guest's and
// untrusted (§5.1.6.2):
//   not_negotiated  a checksum offload without VIRTIO_NET_F_CSUM, a GSO type
//                   without the matching HOST_* feature;
//   bad_checksum    NEEDS_CSUM with csum_start inside the Ethernet header, or
//                   the checksum field (csum_start + csum_offset, 2 bytes)
//                   not inside the frame;
//   bad_gso         a GSO type other than TCPv4 (with the ECN bit only if
//                   HOST_ECN was negotiated), without NEEDS_CSUM, with gso_size 0, or
//                   hdr_len past the frame, or a frame larger than one
//                   IPv4 packet behind an Ethernet header.
enum class TxHeaderCheck { ok, not_negotiated, bad_checksum, bad_gso };
[[nodiscard]] TxHeaderCheck check_tx_header(const NetHeader& h, std::uint64_t features, std::size_t frame_len) noexcept;

}  // namespace vnk::net
