#include "net/net_header.hpp"

#include "base/byte_order.hpp"
#include "net/net_features.hpp"
#include "virtio/features.hpp"

namespace vnk::net {

NetHeader NetHeader::parse(std::span<const std::byte, kNetHeaderSize> raw) noexcept {
  NetHeader h;
  h.flags = std::to_integer<std::uint8_t>(raw[0]);
  h.gso_type = std::to_integer<std::uint8_t>(raw[1]);
  h.hdr_len = load_le<std::uint16_t>(raw.data() + 2);
  h.gso_size = load_le<std::uint16_t>(raw.data() + 4);
  h.csum_start = load_le<std::uint16_t>(raw.data() + 6);
  h.csum_offset = load_le<std::uint16_t>(raw.data() + 8);
  h.num_buffers = load_le<std::uint16_t>(raw.data() + 10);
  return h;
}

std::array<std::byte, kNetHeaderSize> NetHeader::serialize() const noexcept {
  std::array<std::byte, kNetHeaderSize> raw{};
  raw[0] = std::byte{flags};
  raw[1] = std::byte{gso_type};
  store_le<std::uint16_t>(raw.data() + 2, hdr_len);
  store_le<std::uint16_t>(raw.data() + 4, gso_size);
  store_le<std::uint16_t>(raw.data() + 6, csum_start);
  store_le<std::uint16_t>(raw.data() + 8, csum_offset);
  store_le<std::uint16_t>(raw.data() + 10, num_buffers);
  return raw;
}

TxHeaderCheck check_tx_header(const NetHeader& h, std::uint64_t features, std::size_t frame_len) noexcept {
  using virtio::bit;
  const bool csum = (h.flags & NetHeader::kFlagNeedsCsum) != 0;
  if (csum && !(features & bit(kFeatureCsum))) return TxHeaderCheck::not_negotiated;
  if (h.gso_type != NetHeader::kGsoNone) {
    const std::uint64_t gso = bit(kFeatureHostTso4) | bit(kFeatureHostTso6) | bit(kFeatureHostUfo) |
                              bit(kFeatureHostUso);
    if (!(features & gso)) return TxHeaderCheck::not_negotiated;
    const bool ecn_ok = (features & bit(kFeatureHostEcn)) != 0;
    const auto type = static_cast<std::uint8_t>(h.gso_type & (ecn_ok ? ~NetHeader::kGsoEcn : 0xff));
    const bool tcp4 = type == NetHeader::kGsoTcpV4 && (features & bit(kFeatureHostTso4)) != 0;
    const bool tcp6 = type == NetHeader::kGsoTcpV6 && (features & bit(kFeatureHostTso6)) != 0;
    if (!tcp4 && !tcp6) return TxHeaderCheck::bad_gso;
    if (!csum || h.gso_size == 0 || h.hdr_len > frame_len || frame_len > kEthernetHeaderSize + 65535)
      return TxHeaderCheck::bad_gso;
  }
  if (csum) {
    // Sizes are 16-bit and frame_len at most kMaxFrameSize: no overflow.
    const std::size_t field = std::size_t{h.csum_start} + h.csum_offset;
    if (h.csum_start < kEthernetHeaderSize || field + 2 > frame_len) return TxHeaderCheck::bad_checksum;
  }
  return TxHeaderCheck::ok;
}

}  // namespace vnk::net
