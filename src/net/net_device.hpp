// The virtio-net device (virtio 1.2 §5.1) as a VirtioDevice.
//
// Offers VERSION_1, MAC, STATUS, EVENT_IDX, INDIRECT_DESC, and MTU when one is
// configured. Queues: RX 0, TX 1 (Linux's init_vqs order). The config space is
// virtio_net_config up to `mtu` (12 bytes); later fields read as zero.
//
// Multiqueue needs the control queue and per-queue interrupt vectors; until
// that lands a single pair is served whatever queue_pairs says (MMIO has one
// interrupt line, so it is single-pair in any case).
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>

#include "net/net_backend.hpp"
#include "net/net_config.hpp"
#include "net/net_counters.hpp"
#include "net/net_queue_pair.hpp"
#include "virtio/device.hpp"

namespace vnk::net {

constexpr std::uint16_t kQueueMaxSize = 256;
constexpr std::size_t kConfigSpaceSize = 12;  // mac, status, max_virtqueue_pairs, mtu

// What the device offers for `cfg`, whatever the transport.
// `tx`: what the backend takes from the guest (CSUM, HOST_TSO4, HOST_TSO6 are offered
// only for a backend that takes them).
[[nodiscard]] std::uint64_t offered_features(const NetConfig& cfg, TxOffloads tx = {}) noexcept;
// What the negotiated `features` let a backend put in RX frames.
[[nodiscard]] RxOffloads rx_offloads_for(std::uint64_t features) noexcept;
// struct virtio_net_config up to `mtu`, little-endian.
[[nodiscard]] std::array<std::byte, kConfigSpaceSize> config_space(const NetConfig& cfg, bool link_up) noexcept;
// Copies `out.size()` config bytes from `offset`; bytes past the layout are 0.
void read_config_space(const NetConfig& cfg, bool link_up, std::uint64_t offset, std::span<std::byte> out) noexcept;

class NetDevice final : public virtio::VirtioDevice {
 public:
  // `cfg` must have been through normalize(). The backend and interceptor
  // must outlive the device.
  NetDevice(const NetConfig& cfg, NetBackend& backend, FrameInterceptor* interceptor = nullptr);

  // Bounded drain rounds per queue_notify()/backend_ready() (each a drain
  // budget per queue): far more than an honest driver's ring holds.
  static constexpr unsigned kMaxRounds = 256;

  [[nodiscard]] std::uint32_t device_id() const override;
  [[nodiscard]] std::uint64_t device_features() const override;
  [[nodiscard]] std::uint16_t num_queues() const override { return 2; }
  [[nodiscard]] std::uint16_t queue_max_size() const override { return kQueueMaxSize; }
  void read_config(std::uint64_t offset, std::span<std::byte> out) const override;
  void write_config(std::uint64_t offset, std::span<const std::byte> in) override;
  std::expected<void, virtio::ActivateError> activate(const virtio::Activation& a) override;
  void queue_notify(std::uint16_t queue) override;
  void reset() override;

  // The backend has frames (its rx_fd() became readable): deliver them.
  void backend_ready();

  // Link state seen by the driver (VIRTIO_NET_S_LINK_UP); a change while
  // active raises a config interrupt and bumps the config generation.
  void set_link_up(bool up);
  [[nodiscard]] bool link_up() const noexcept { return link_up_.load(); }

  [[nodiscard]] const NetConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] const NetCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] bool active() const noexcept { return pair_.has_value(); }
  // The active queue pair (tests, benchmarks, the vhost-user server).
  [[nodiscard]] NetQueuePair* queue_pair() noexcept { return pair_ ? &*pair_ : nullptr; }

 private:
  // Calls `round` until it reports nothing more, at most kMaxRounds times.
  void drain(bool (NetQueuePair::*round)());

  NetConfig cfg_;
  NetBackend& backend_;
  FrameInterceptor* interceptor_;
  NetCounters counters_;
  std::atomic<bool> link_up_;
  virtio::Interrupts* interrupts_ = nullptr;
  std::optional<NetQueuePair> pair_;
};

}  // namespace vnk::net
