// virtio-net feature bits (virtio 1.2 §5.1.3) and link status bits (§5.1.4).
#pragma once

#include <cstdint>

namespace vnk::net {

constexpr unsigned kFeatureCsum = 0;        // VIRTIO_NET_F_CSUM: driver may leave TX checksums partial
constexpr unsigned kFeatureGuestCsum = 1;   // VIRTIO_NET_F_GUEST_CSUM
constexpr unsigned kFeatureMtu = 3;         // VIRTIO_NET_F_MTU
constexpr unsigned kFeatureMac = 5;         // VIRTIO_NET_F_MAC
constexpr unsigned kFeatureGuestTso4 = 7;   // VIRTIO_NET_F_GUEST_TSO4: the driver takes TCPv4 GSO frames
constexpr unsigned kFeatureGuestTso6 = 8;   // VIRTIO_NET_F_GUEST_TSO6: and TCPv6 ones
constexpr unsigned kFeatureHostTso4 = 11;   // VIRTIO_NET_F_HOST_TSO4
constexpr unsigned kFeatureHostTso6 = 12;   // VIRTIO_NET_F_HOST_TSO6
constexpr unsigned kFeatureHostEcn = 13;    // VIRTIO_NET_F_HOST_ECN: TSO frames may carry ECN (CWR)
constexpr unsigned kFeatureHostUfo = 14;    // VIRTIO_NET_F_HOST_UFO
constexpr unsigned kFeatureMrgRxbuf = 15;   // VIRTIO_NET_F_MRG_RXBUF
constexpr unsigned kFeatureStatus = 16;     // VIRTIO_NET_F_STATUS
constexpr unsigned kFeatureCtrlVq = 17;     // VIRTIO_NET_F_CTRL_VQ
constexpr unsigned kFeatureMq = 22;         // VIRTIO_NET_F_MQ
constexpr unsigned kFeatureHostUso = 56;    // VIRTIO_NET_F_HOST_USO

constexpr std::uint16_t kStatusLinkUp = 1;  // VIRTIO_NET_S_LINK_UP

constexpr std::uint32_t kDeviceIdNet = 1;

}  // namespace vnk::net
