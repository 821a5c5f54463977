#include "net/net_device.hpp"

#include "base/byte_order.hpp"
#include "base/log.hpp"
#include "net/net_features.hpp"
#include "virtio/features.hpp"

namespace vnk::net {

using virtio::bit;

NetDevice::NetDevice(const NetConfig& cfg, NetBackend& backend, FrameInterceptor* interceptor)
    : cfg_(cfg), backend_(backend), interceptor_(interceptor), link_up_(cfg.link_up) {}

std::uint32_t NetDevice::device_id() const { return kDeviceIdNet; }

std::uint64_t offered_features(const NetConfig& cfg, TxOffloads tx) noexcept {
  std::uint64_t f = bit(virtio::kFeatureVersion1) | bit(virtio::kFeatureRingEventIdx) |
                    bit(virtio::kFeatureRingIndirectDesc) | bit(kFeatureMac) | bit(kFeatureStatus);
  if (cfg.mtu) f |= bit(kFeatureMtu);
  if (cfg.mergeable_rx) f |= bit(kFeatureMrgRxbuf);
  if (cfg.guest_offloads) {
    f |= bit(kFeatureGuestCsum) | bit(kFeatureGuestTso4) | bit(kFeatureGuestTso6);
    if (tx.partial_csum) f |= bit(kFeatureCsum);
    // A backend that takes TCP segments whole never needs the CWR flag cut
    // to the first segment: ECN-marked TSO frames are as good (HOST_ECN).
    if (tx.partial_csum && tx.tso4) f |= bit(kFeatureHostTso4) | bit(kFeatureHostEcn);
    if (tx.partial_csum && tx.tso6) f |= bit(kFeatureHostTso6) | bit(kFeatureHostEcn);
  }
  return f;
}

RxOffloads rx_offloads_for(std::uint64_t features) noexcept {
  const bool csum = (features & bit(kFeatureGuestCsum)) != 0;
  // GUEST_TSO4/6 without GUEST_CSUM is not a valid combination (§5.1.3.1): no TSO then.
  return RxOffloads{csum, csum && (features & bit(kFeatureGuestTso4)) != 0,
                    csum && (features & bit(kFeatureGuestTso6)) != 0};
}

std::array<std::byte, kConfigSpaceSize> config_space(const NetConfig& cfg, bool link_up) noexcept {
  // struct virtio_net_config: u8 mac[6]; le16 status; le16 max_virtqueue_pairs; le16 mtu
  std::array<std::byte, kConfigSpaceSize> raw{};
  for (std::size_t i = 0; i < 6; ++i) raw[i] = std::byte{cfg.mac.octets[i]};
  store_le<std::uint16_t>(raw.data() + 6, link_up ? kStatusLinkUp : 0);
  store_le<std::uint16_t>(raw.data() + 8, 1);
  store_le<std::uint16_t>(raw.data() + 10, cfg.mtu.value_or(0));
  return raw;
}

void read_config_space(const NetConfig& cfg, bool link_up, std::uint64_t offset, std::span<std::byte> out) noexcept {
  const auto raw = config_space(cfg, link_up);
  for (std::size_t i = 0; i < out.size(); ++i) {
    // Written so a huge offset cannot wrap around to a populated byte.
    out[i] = offset < raw.size() && i < raw.size() - offset ? raw[offset + i] : std::byte{0};
  }
}

std::uint64_t NetDevice::device_features() const { return offered_features(cfg_, backend_.tx_offloads()); }

void NetDevice::read_config(std::uint64_t offset, std::span<std::byte> out) const {
  read_config_space(cfg_, link_up_.load(), offset, out);
}

void NetDevice::write_config(std::uint64_t, std::span<const std::byte>) {
  // §5.1.4: every field is read-only for a VERSION_1 driver (the MAC is set
  // through the control queue, which is not offered).
  counters_.config_writes_ignored.add();
}

std::expected<void, virtio::ActivateError> NetDevice::activate(const virtio::Activation& a) {
  if (a.queues.size() < 2 || !a.queues[0].ready || !a.queues[1].ready)
    return std::unexpected(virtio::ActivateError::queue_not_ready);
  if (virtio::rings_overlap(a.queues.first(2))) {
    counters_.rings_overlap.add();
    log::warn("virtio-net: queue configuration refused: rings overlap");
    return std::unexpected(virtio::ActivateError::queue_invalid);
  }
  const bool event_idx = a.features & bit(virtio::kFeatureRingEventIdx);
  const bool indirect = a.features & bit(virtio::kFeatureRingIndirectDesc);
  auto rx = virtio::Virtqueue::create(a.queues[0], kQueueMaxSize, *a.memory, event_idx, indirect);
  auto tx = virtio::Virtqueue::create(a.queues[1], kQueueMaxSize, *a.memory, event_idx, indirect);
  if (!rx || !tx) {
    log::warn("virtio-net: queue configuration refused (rx: {}, tx: {})",
              rx ? "ok" : virtio::to_string(rx.error()), tx ? "ok" : virtio::to_string(tx.error()));
    return std::unexpected(virtio::ActivateError::queue_invalid);
  }
  interrupts_ = a.interrupts;
  backend_.set_rx_offloads(rx_offloads_for(a.features));
  EngineContext ctx{nullptr, &backend_, interceptor_, &counters_, a.interrupts, a.features};
  pair_.emplace(a.memory, ctx, std::move(*rx), std::move(*tx), 0);
  return {};
}

void NetDevice::queue_notify(std::uint16_t queue) {
  if (!pair_) return;
  // The notify comes on the vCPU thread, which has no loop of its own to
  // come back from: drain here, bounded in rounds so no ring layout can hold
  // the vCPU for ever; what is left waits for the next notify or
  // backend_ready().
  switch (queue) {
    case 0: drain(&NetQueuePair::on_rx_ready); return;
    case 1: drain(&NetQueuePair::on_tx_kick); return;
    default: counters_.notify_bad_queue.add(); return;
  }
}

void NetDevice::backend_ready() {
  if (pair_) drain(&NetQueuePair::on_rx_ready);
}

void NetDevice::drain(bool (NetQueuePair::*round)()) {
  for (unsigned i = 0; i < kMaxRounds && ((*pair_).*round)(); ++i) {
  }
}

void NetDevice::reset() {
  pair_.reset();
  interrupts_ = nullptr;
  backend_.set_rx_offloads({});  // until a driver negotiates again
}

void NetDevice::set_link_up(bool up) {
  if (link_up_.exchange(up) == up) return;
  if (interrupts_ != nullptr) interrupts_->config_changed();
}

}  // namespace vnk::net
