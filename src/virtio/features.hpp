// Transport-independent virtio feature bits and device status bits
// (virtio 1.2 §2.1, §6). Device-type bits live with their device (net/).
#pragma once

#include <cstdint>

namespace vnk::virtio {

constexpr std::uint64_t bit(unsigned n) { return std::uint64_t{1} << n; }

constexpr unsigned kFeatureRingIndirectDesc = 28;  // VIRTIO_RING_F_INDIRECT_DESC
constexpr unsigned kFeatureRingEventIdx = 29;      // VIRTIO_RING_F_EVENT_IDX
constexpr unsigned kFeatureVersion1 = 32;          // VIRTIO_F_VERSION_1

// Device status register bits (§2.1).
namespace status {
constexpr std::uint32_t kAcknowledge = 1;
constexpr std::uint32_t kDriver = 2;
constexpr std::uint32_t kDriverOk = 4;
constexpr std::uint32_t kFeaturesOk = 8;
constexpr std::uint32_t kNeedsReset = 0x40;
constexpr std::uint32_t kFailed = 0x80;
}  // namespace status

}  // namespace vnk::virtio
