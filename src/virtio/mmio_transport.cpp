#include "virtio/mmio_transport.hpp"

#include <algorithm>
#include <array>

#include "base/byte_order.hpp"
#include "base/log.hpp"
#include "virtio/device_status.hpp"
#include "virtio/features.hpp"

namespace vnk::virtio {

using namespace status;

MmioTransport::MmioTransport(VirtioDevice& device, std::shared_ptr<const GuestMemory> memory, IrqCallback irq)
    : device_(device), memory_(std::move(memory)), irq_(std::move(irq)), queues_(device.num_queues()) {}

MmioTransport::~MmioTransport() {
  if (active_) device_.reset();
}

std::uint32_t MmioTransport::status() const noexcept {
  return driver_status_ | (needs_reset_.load() ? kNeedsReset : 0);
}

void MmioTransport::read(std::uint64_t offset, std::span<std::byte> data) {
  if (offset >= mmio::kConfig) {
    device_.read_config(offset - mmio::kConfig, data);
    return;
  }
  if (data.size() != 4) {
    counters_.bad_access_width.add();
    std::fill(data.begin(), data.end(), std::byte{0xff});
    return;
  }
  store_le<std::uint32_t>(data.data(), read_register(offset));
}

std::uint32_t MmioTransport::read_register(std::uint64_t offset) const {
  const std::uint64_t offered = device_.device_features();
  const QueueConfig* q = queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
  switch (offset) {
    case mmio::kMagicValue: return mmio::kMagic;
    case mmio::kVersionReg: return mmio::kVersion;
    case mmio::kDeviceId: return device_.device_id();
    case mmio::kVendorIdReg: return mmio::kVendorId;
    case mmio::kDeviceFeatures:
      if (device_features_sel_ == 0) return static_cast<std::uint32_t>(offered);
      if (device_features_sel_ == 1) return static_cast<std::uint32_t>(offered >> 32);
      return 0;
    case mmio::kQueueNumMax: return q ? device_.queue_max_size() : 0;
    case mmio::kQueueNum: return q ? q->size : 0;
    case mmio::kQueueReady: return q && q->ready ? 1 : 0;
    case mmio::kInterruptStatus: return interrupt_status_.load();
    case mmio::kStatus: return status();
    case mmio::kConfigGeneration: return config_generation_.load();
    // No shared memory regions: a length of -1 says "no such region".
    case mmio::kShmLenLow:
    case mmio::kShmLenHigh:
    case mmio::kShmBaseLow:
    case mmio::kShmBaseHigh: return 0xffffffff;
    default: return 0;
  }
}

void MmioTransport::write(std::uint64_t offset, std::span<const std::byte> data) {
  if (offset >= mmio::kConfig) {
    counters_.config_writes.add();
    device_.write_config(offset - mmio::kConfig, data);
    return;
  }
  if (data.size() != 4) {
    counters_.bad_access_width.add();
    return;
  }
  write_register(offset, load_le<std::uint32_t>(data.data()));
}

void MmioTransport::write_register(std::uint64_t offset, std::uint32_t value) {
  switch (offset) {
    case mmio::kDeviceFeaturesSel: device_features_sel_ = value; return;
    case mmio::kDriverFeaturesSel: driver_features_sel_ = value; return;
    case mmio::kDriverFeatures: {
      if ((driver_status_ & (kAcknowledge | kDriver)) != (kAcknowledge | kDriver) || (driver_status_ & kFeaturesOk)) {
        counters_.features_write_late.add();
        return;
      }
      if (driver_features_sel_ == 0) {
        driver_features_ = (driver_features_ & 0xffffffff00000000ULL) | value;
      } else if (driver_features_sel_ == 1) {
        driver_features_ = (driver_features_ & 0xffffffffULL) | (std::uint64_t{value} << 32);
      } else if (value != 0) {
        driver_features_beyond_64_ = true;  // nothing up there was offered
      }
      return;
    }
    case mmio::kQueueSel: queue_sel_ = value; return;
    case mmio::kQueueNotify:
      if (!active_) {
        if (counters_.notify_before_driver_ok.add() == 0)
          log::warn("virtio-mmio: queue notify before DRIVER_OK ignored (further ones only counted)");
        return;
      }
      if (value <= 0xffff) device_.queue_notify(static_cast<std::uint16_t>(value));
      return;
    case mmio::kInterruptAck: interrupt_status_.fetch_and(~value); return;
    case mmio::kStatus: write_status(value); return;
    case mmio::kShmSel: return;
    case mmio::kQueueNum:
    case mmio::kQueueReady:
    case mmio::kQueueDescLow:
    case mmio::kQueueDescHigh:
    case mmio::kQueueAvailLow:
    case mmio::kQueueAvailHigh:
    case mmio::kQueueUsedLow:
    case mmio::kQueueUsedHigh: write_queue_register(offset, value); return;
    default: counters_.unknown_register.add(); return;
  }
}

void MmioTransport::write_queue_register(std::uint64_t offset, std::uint32_t value) {
  // §4.2.2.3.2 and §3.1.1: queues are set up after FEATURES_OK and before
  // DRIVER_OK; changing a live queue under the engine is not allowed.
  const bool window = (driver_status_ & kFeaturesOk) && !(driver_status_ & kDriverOk);
  if (!window) {
    counters_.queue_write_outside_window.add();
    return;
  }
  if (queue_sel_ >= queues_.size()) {
    counters_.queue_sel_out_of_range.add();
    return;
  }
  QueueConfig& q = queues_[queue_sel_];
  auto set_low = [value](GuestAddress& a) { a.value = (a.value & 0xffffffff00000000ULL) | value; };
  auto set_high = [value](GuestAddress& a) { a.value = (a.value & 0xffffffffULL) | (std::uint64_t{value} << 32); };
  switch (offset) {
    case mmio::kQueueNum: q.size = static_cast<std::uint16_t>(std::min<std::uint32_t>(value, 0xffff)); break;
    case mmio::kQueueReady: q.ready = value == 1; break;
    case mmio::kQueueDescLow: set_low(q.desc); break;
    case mmio::kQueueDescHigh: set_high(q.desc); break;
    case mmio::kQueueAvailLow: set_low(q.avail); break;
    case mmio::kQueueAvailHigh: set_high(q.avail); break;
    case mmio::kQueueUsedLow: set_low(q.used); break;
    case mmio::kQueueUsedHigh: set_high(q.used); break;
    default: break;
  }
}

void MmioTransport::write_status(std::uint32_t value) {
  const StatusStep step = classify_status_write(driver_status_, value);
  switch (step) {
    case StatusStep::reset: reset(); return;
    case StatusStep::unchanged: return;
    case StatusStep::rejected_clear:
    case StatusStep::rejected_order:
      counters_.status_rejected.add();
      log::debug("virtio-mmio: status write {:#x} over {:#x} rejected ({})", value, driver_status_, to_string(step));
      return;
    case StatusStep::failed: driver_status_ |= kFailed; return;
    case StatusStep::features_ok: {
      const std::uint64_t offered = device_.device_features();
      const std::uint64_t unoffered = driver_features_ & ~offered;
      const bool version1 = (driver_features_ & bit(kFeatureVersion1)) != 0;
      if (unoffered != 0 || driver_features_beyond_64_ || !version1) {
        // §3.1.1 step 6: the device refuses FEATURES_OK; the driver sees it
        // missing on read-back. FAILED makes the refusal explicit.
        counters_.features_rejected.add();
        log::warn("virtio-mmio: FEATURES_OK refused (accepted {:#x}, offered {:#x}, VERSION_1 {})",
                  driver_features_, offered, version1 ? "yes" : "no");
        driver_status_ |= kFailed;
        return;
      }
      driver_status_ |= kFeaturesOk;
      return;
    }
    case StatusStep::driver_ok: {
      driver_status_ |= kDriverOk;
      auto r = device_.activate(Activation{memory_, driver_features_, queues_, this});
      if (!r) {
        counters_.activation_failed.add();
        log::warn("virtio-mmio: activation failed: {}", to_string(r.error()));
        needs_reset();
        return;
      }
      active_ = true;
      return;
    }
    case StatusStep::acknowledge: driver_status_ |= kAcknowledge; return;
    case StatusStep::driver: driver_status_ |= kDriver; return;
  }
}

void MmioTransport::reset() {
  counters_.resets.add();
  if (active_) device_.reset();
  active_ = false;
  driver_status_ = 0;
  needs_reset_.store(false);
  interrupt_status_.store(0);
  device_features_sel_ = 0;
  driver_features_sel_ = 0;
  driver_features_ = 0;
  driver_features_beyond_64_ = false;
  queue_sel_ = 0;
  std::fill(queues_.begin(), queues_.end(), QueueConfig{});
}

void MmioTransport::raise(std::uint32_t bits) {
  interrupt_status_.fetch_or(bits);
  counters_.interrupts.add();
  if (irq_) irq_();
}

void MmioTransport::queue_used(std::uint16_t) { raise(mmio::kIntVring); }

void MmioTransport::config_changed() {
  config_generation_.fetch_add(1);
  raise(mmio::kIntConfig);
}

void MmioTransport::needs_reset() {
  // The device calls this once per queue poison transition; each call is one
  // config interrupt (the driver re-reads status and sees NEEDS_RESET).
  needs_reset_.store(true);
  raise(mmio::kIntConfig);
}

}  // namespace vnk::virtio
