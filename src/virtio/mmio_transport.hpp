// virtio-MMIO transport, version 2 (virtio 1.2 §4.2.2).
//
// Owns the register file and feature negotiation, holds queue configuration
// until DRIVER_OK, then activates the device and forwards queue notifies. It
// implements Interrupts for the device: INTERRUPT_STATUS bits plus one call of
// the IRQ callback (an irqfd write in a VMM; a flag in tests).
//
// Access rules, all counted when broken:
//   - registers (< 0x100) are 32-bit: other widths read all-ones, writes are
//     ignored;
//   - config space (>= 0x100) is read at any width; bytes past the populated
//     layout read zero;
//   - driver features may be written only in DRIVER state before FEATURES_OK;
//   - queue registers may be written only between FEATURES_OK and DRIVER_OK;
//   - QUEUE_NOTIFY before DRIVER_OK is ignored (§2.1.2: no queue processing
//     before DRIVER_OK).
// Reads, writes and notifies come from vCPU threads; needs_reset() and the
// interrupt bits may be set from a queue thread, hence the atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "base/counter_set.hpp"
#include "memory/guest_memory.hpp"
#include "virtio/device.hpp"

namespace vnk::virtio {

namespace mmio {
constexpr std::uint32_t kMagic = 0x74726976;  // "virt"
constexpr std::uint32_t kVersion = 2;
constexpr std::uint32_t kVendorId = 0x4b4e5600;  // "\0VNK"
constexpr std::uint64_t kRegionSize = 0x1000;

constexpr std::uint64_t kMagicValue = 0x000;
constexpr std::uint64_t kVersionReg = 0x004;
constexpr std::uint64_t kDeviceId = 0x008;
constexpr std::uint64_t kVendorIdReg = 0x00c;
constexpr std::uint64_t kDeviceFeatures = 0x010;
constexpr std::uint64_t kDeviceFeaturesSel = 0x014;
constexpr std::uint64_t kDriverFeatures = 0x020;
constexpr std::uint64_t kDriverFeaturesSel = 0x024;
constexpr std::uint64_t kQueueSel = 0x030;
constexpr std::uint64_t kQueueNumMax = 0x034;
constexpr std::uint64_t kQueueNum = 0x038;
constexpr std::uint64_t kQueueReady = 0x044;
constexpr std::uint64_t kQueueNotify = 0x050;
constexpr std::uint64_t kInterruptStatus = 0x060;
constexpr std::uint64_t kInterruptAck = 0x064;
constexpr std::uint64_t kStatus = 0x070;
constexpr std::uint64_t kQueueDescLow = 0x080;
constexpr std::uint64_t kQueueDescHigh = 0x084;
constexpr std::uint64_t kQueueAvailLow = 0x090;
constexpr std::uint64_t kQueueAvailHigh = 0x094;
constexpr std::uint64_t kQueueUsedLow = 0x0a0;
constexpr std::uint64_t kQueueUsedHigh = 0x0a4;
constexpr std::uint64_t kShmSel = 0x0ac;
constexpr std::uint64_t kShmLenLow = 0x0b0;
constexpr std::uint64_t kShmLenHigh = 0x0b4;
constexpr std::uint64_t kShmBaseLow = 0x0b8;
constexpr std::uint64_t kShmBaseHigh = 0x0bc;
constexpr std::uint64_t kConfigGeneration = 0x0fc;
constexpr std::uint64_t kConfig = 0x100;

constexpr std::uint32_t kIntVring = 1;
constexpr std::uint32_t kIntConfig = 2;
}  // namespace mmio

#define VNK_MMIO_COUNTERS(X)                                                                       \
  X(bad_access_width)      /* register access not 4 bytes wide */                                 \
  X(unknown_register)      /* write to an offset that is not a writable register */               \
  X(status_rejected)       /* status write out of order or clearing bits */                       \
  X(features_rejected)     /* FEATURES_OK refused: unoffered bit or no VERSION_1 */               \
  X(features_write_late)   /* driver features written outside DRIVER..FEATURES_OK */              \
  X(queue_write_outside_window) /* queue register written outside FEATURES_OK..DRIVER_OK */       \
  X(queue_sel_out_of_range)/* queue register written with QUEUE_SEL >= num_queues */              \
  X(notify_before_driver_ok) /* QUEUE_NOTIFY before the device was activated */                  \
  X(activation_failed)     /* DRIVER_OK with a queue configuration the device refused */          \
  X(config_writes)         /* writes to config space (passed to the device) */                    \
  X(interrupts)            /* IRQ callback invocations */                                          \
  X(resets)                /* status writes of 0 */

struct MmioCounters {
  VNK_MMIO_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_MMIO_COUNTERS)
};

class MmioTransport final : public Interrupts {
 public:
  using IrqCallback = std::function<void()>;

  MmioTransport(VirtioDevice& device, std::shared_ptr<const GuestMemory> memory, IrqCallback irq);
  ~MmioTransport();
  MmioTransport(const MmioTransport&) = delete;
  MmioTransport& operator=(const MmioTransport&) = delete;

  // A guest access at `offset` within the device's 4 KiB window.
  void read(std::uint64_t offset, std::span<std::byte> data);
  void write(std::uint64_t offset, std::span<const std::byte> data);

  [[nodiscard]] std::uint32_t status() const noexcept;
  [[nodiscard]] std::uint32_t interrupt_status() const noexcept { return interrupt_status_.load(); }
  [[nodiscard]] std::uint32_t config_generation() const noexcept { return config_generation_.load(); }
  [[nodiscard]] std::uint64_t driver_features() const noexcept { return driver_features_; }
  [[nodiscard]] const MmioCounters& counters() const noexcept { return counters_; }

  // Interrupts
  void queue_used(std::uint16_t queue) override;
  void config_changed() override;
  void needs_reset() override;

 private:
  [[nodiscard]] std::uint32_t read_register(std::uint64_t offset) const;
  void write_register(std::uint64_t offset, std::uint32_t value);
  void write_status(std::uint32_t value);
  void write_queue_register(std::uint64_t offset, std::uint32_t value);
  void reset();
  void raise(std::uint32_t bits);

  VirtioDevice& device_;
  std::shared_ptr<const GuestMemory> memory_;
  IrqCallback irq_;

  std::uint32_t driver_status_ = 0;  // driver-owned status bits
  std::atomic<bool> needs_reset_{false};
  std::atomic<std::uint32_t> interrupt_status_{0};
  std::atomic<std::uint32_t> config_generation_{0};
  bool active_ = false;

  std::uint32_t device_features_sel_ = 0;
  std::uint32_t driver_features_sel_ = 0;
  std::uint64_t driver_features_ = 0;
  bool driver_features_beyond_64_ = false;  // a non-zero write to page >= 2
  std::uint32_t queue_sel_ = 0;
  std::vector<QueueConfig> queues_;

  MmioCounters counters_;
};

}  // namespace vnk::virtio
