// What a transport knows of a device, and how a device reaches its driver.
//
// Transports (virtio-MMIO here; vhost-user and PCI later) own the registers,
// feature negotiation and queue configuration. At DRIVER_OK they hand the
// device an Activation: the memory, the negotiated features, the queue
// configurations, and an Interrupts sink. The device's queue engines never see
// a register, so every transport drives the same engines.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string_view>

#include "memory/guest_memory.hpp"
#include "virtio/virtqueue.hpp"

namespace vnk::virtio {

// Implemented by each transport; called from the device's queue thread(s).
class Interrupts {
 public:
  // Queue `queue`'s used ring advanced and the driver asked to hear of it.
  virtual void queue_used(std::uint16_t queue) = 0;
  // The device changed its config space (e.g. link status).
  virtual void config_changed() = 0;
  // The device hit an error it cannot recover from without a reset
  // (a poisoned queue): set NEEDS_RESET and tell the driver once.
  virtual void needs_reset() = 0;

 protected:
  ~Interrupts() = default;
};

struct Activation {
  std::shared_ptr<const GuestMemory> memory;
  std::uint64_t features = 0;  // negotiated
  std::span<const QueueConfig> queues;
  Interrupts* interrupts = nullptr;
};

enum class ActivateError : std::uint8_t {
  queue_not_ready,  // a queue the device needs was not enabled
  queue_invalid,    // a ready queue failed Virtqueue::create
};

[[nodiscard]] constexpr std::string_view to_string(ActivateError e) noexcept {
  return e == ActivateError::queue_not_ready ? "queue_not_ready" : "queue_invalid";
}

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  [[nodiscard]] virtual std::uint32_t device_id() const = 0;
  [[nodiscard]] virtual std::uint64_t device_features() const = 0;
  [[nodiscard]] virtual std::uint16_t num_queues() const = 0;
  [[nodiscard]] virtual std::uint16_t queue_max_size() const = 0;

  // Config space (device-specific layout); bytes past the populated layout
  // read as zero.
  virtual void read_config(std::uint64_t offset, std::span<std::byte> out) const = 0;
  virtual void write_config(std::uint64_t offset, std::span<const std::byte> in) = 0;

  virtual std::expected<void, ActivateError> activate(const Activation& activation) = 0;
  // The driver notified `queue` (only after a successful activate()).
  virtual void queue_notify(std::uint16_t queue) = 0;
  // Back to the pre-activation state; counters survive.
  virtual void reset() = 0;
};

}  // namespace vnk::virtio
