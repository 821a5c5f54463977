// The device side of one split virtqueue (virtio 1.2 §2.7).
//
// Layout in guest memory, all little-endian:
//   descriptor table  16 * size bytes, 16-byte aligned
//   avail ring        flags, idx, ring[size], used_event   (2-byte aligned)
//   used ring         flags, idx, {id, len}[size], avail_event (4-byte aligned)
//
// The device keeps two free-running indices: next_avail (the next avail slot
// it will consume) and next_used (the next used slot it will fill).
// Structural errors (the avail index jumping more than `size` ahead, a head
// index >= size, rings that are not readable) mean the driver and device no
// longer agree on the ring: the queue is poisoned and stays silent until a
// device reset. A malformed chain is not structural: the engine completes it
// with length 0 and carries on.
//
// Memory ordering, against Linux's virtio_ring.c:
//   - avail->idx is loaded with acquire before the ring entries it covers;
//   - used entries are written, then used->idx is stored with release;
//   - with EVENT_IDX, a full fence separates "used->idx stored" from "read
//     used_event" (needs_interrupt) and "avail_event stored" from "re-read
//     avail->idx" (enable_notification). Without these the device and driver
//     can each decide the other will act and both go to sleep.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string_view>

#include "base/guest_address.hpp"
#include "base/ring_index.hpp"
#include "memory/guest_memory.hpp"
#include "virtio/descriptor_chain.hpp"

namespace vnk::virtio {

// What a transport (MMIO registers, vhost-user messages) configures.
struct QueueConfig {
  std::uint16_t size = 0;
  bool ready = false;
  GuestAddress desc;
  GuestAddress avail;  // "driver area"
  GuestAddress used;   // "device area"
};

enum class QueueError : std::uint8_t {
  bad_size,         // zero, not a power of two, or above the maximum
  misaligned,       // desc not 16-, avail not 2-, used not 4-aligned
  ring_unmapped,    // a ring is not entirely in guest memory
  avail_idx_jump,   // avail->idx more than `size` ahead of next_avail
  head_out_of_range,// avail ring entry >= size
  used_unmapped,    // a used element or used->idx could not be written
};

[[nodiscard]] std::string_view to_string(QueueError e) noexcept;

// True when any two rings of `queues` -- descriptor tables, avail and used
// rings, within a queue or across queues -- share a byte of guest memory.
// A real driver never lays them out so; a hostile one does it to make the
// device's own used-ring writes look like new avail entries, so a drain
// never ends. Checked at activation, before any ring is touched.
[[nodiscard]] bool rings_overlap(std::span<const QueueConfig> queues) noexcept;

class Virtqueue {
 public:
  static constexpr std::uint16_t kAvailFlagNoInterrupt = 1;  // VRING_AVAIL_F_NO_INTERRUPT
  static constexpr std::uint16_t kUsedFlagNoNotify = 1;      // VRING_USED_F_NO_NOTIFY

  // Bytes each ring of `n` entries occupies, used_event / avail_event
  // included: they exist whether or not EVENT_IDX is negotiated (§2.7.6, §2.7.8).
  static constexpr std::uint64_t desc_table_size(std::uint16_t n) noexcept { return 16 * std::uint64_t{n}; }
  static constexpr std::uint64_t avail_ring_size(std::uint16_t n) noexcept { return 6 + 2 * std::uint64_t{n}; }
  static constexpr std::uint64_t used_ring_size(std::uint16_t n) noexcept { return 6 + 8 * std::uint64_t{n}; }

  // Validates `cfg` against `max_size` and `mem`. `event_idx` and `indirect`
  // are the negotiated ring features.
  static std::expected<Virtqueue, QueueError> create(const QueueConfig& cfg, std::uint16_t max_size,
                                                     const GuestMemory& mem, bool event_idx, bool indirect);

  [[nodiscard]] std::uint16_t size() const noexcept { return size_; }
  [[nodiscard]] bool event_idx() const noexcept { return event_idx_; }

  // Next available chain, nullopt when the driver has posted nothing new, or
  // a structural error (the caller poisons the queue).
  std::expected<std::optional<DescriptorChain>, QueueError> pop(const GuestMemory& mem);
  // Gives back the last `n` chains pop() returned (RX found nothing to
  // deliver, or a merged frame needed fewer buffers than were popped).
  void undo_pops(std::uint16_t n = 1) noexcept { next_avail_ = RingIndex(static_cast<std::uint16_t>(next_avail_.value() - n)); }

  // Writes {head, len} into the next used slot. The driver sees it only after
  // publish_used(): a drain publishes once, and the buffers of one merged
  // frame (MRG_RXBUF) appear together. Failure is counted by the caller but
  // does not poison: the used ring might become writable again.
  std::expected<void, QueueError> add_used(const GuestMemory& mem, std::uint16_t head, std::uint32_t len);
  // Stores used->idx (release) to cover every element add_used() wrote.
  std::expected<void, QueueError> publish_used(const GuestMemory& mem);

  // After a drain that published used entries: should the driver be interrupted?
  // Honours used_event (EVENT_IDX) or VRING_AVAIL_F_NO_INTERRUPT, and counts
  // from the last interrupt so one drain raises at most one.
  [[nodiscard]] bool needs_interrupt(const GuestMemory& mem);

  // Asks the driver to notify on its next post (EVENT_IDX: once it posts
  // past next_avail; without it: clears VRING_USED_F_NO_NOTIFY if
  // disable_notification() set it), then reports whether chains arrived
  // meanwhile (the caller drains again).
  [[nodiscard]] bool enable_notification(const GuestMemory& mem);
  // Tells a driver without EVENT_IDX not to notify (VRING_USED_F_NO_NOTIFY)
  // while the device busy-polls; a no-op with EVENT_IDX. A hint only: the
  // driver may notify anyway.
  void disable_notification(const GuestMemory& mem);

  // Poison state: a structural error was seen. Returns true only on the
  // false -> true transition, so the caller signals exactly once.
  bool poison() noexcept {
    const bool was = poisoned_;
    poisoned_ = true;
    return !was;
  }
  [[nodiscard]] bool poisoned() const noexcept { return poisoned_; }

  // vhost-user SET_VRING_BASE / GET_VRING_BASE.
  [[nodiscard]] RingIndex next_avail() const noexcept { return next_avail_; }
  // Picks up a ring another device model was serving (vhost-user restart):
  // consume from `next_avail`, fill used slots from the ring's own used->idx.
  std::expected<void, QueueError> resume(const GuestMemory& mem, RingIndex next_avail);

 private:
  Virtqueue() = default;

  // Byte offsets of the fields in the avail ring (flags, idx, ring[],
  // used_event) and the used ring (flags, idx, ring[], avail_event).
  static constexpr std::uint64_t kAvailFlags = 0;
  static constexpr std::uint64_t kUsedFlags = 0;
  static constexpr std::uint64_t kRingIdx = 2;  // avail->idx and used->idx alike
  [[nodiscard]] std::uint64_t avail_slot(RingIndex i) const noexcept { return 4 + 2 * std::uint64_t{i.slot(size_)}; }
  [[nodiscard]] std::uint64_t used_event() const noexcept { return 4 + 2 * std::uint64_t{size_}; }
  [[nodiscard]] std::uint64_t used_slot(RingIndex i) const noexcept { return 4 + 8 * std::uint64_t{i.slot(size_)}; }
  [[nodiscard]] std::uint64_t avail_event() const noexcept { return 4 + 8 * std::uint64_t{size_}; }

  // Host pointers to the rings in the layout `mem_id` (0: none yet), each
  // nullptr when its ring crosses a region boundary or is misaligned on the
  // host; the checked GuestMemory accessors serve that ring then. Rebuilt
  // when the layout changes (vhost-user SET_MEM_TABLE).
  struct RingView {
    std::uint64_t mem_id = 0;
    const std::byte* desc = nullptr;
    std::byte* avail = nullptr;
    std::byte* used = nullptr;
  };
  const RingView& view(const GuestMemory& mem) noexcept;
  // A 16-bit field `offset` bytes into the avail ring (acquire for the index).
  std::expected<std::uint16_t, MemoryError> avail_u16(const GuestMemory& mem, std::uint64_t offset, bool acquire);
  // Writes into the used ring `offset` bytes in; false when unmapped.
  bool used_write(const GuestMemory& mem, std::uint64_t offset, std::span<const std::byte> bytes);

  RingView view_;
  GuestAddress desc_;
  GuestAddress avail_;
  GuestAddress used_;
  std::uint16_t size_ = 0;
  bool event_idx_ = false;
  bool indirect_ = false;
  bool poisoned_ = false;
  bool notify_off_ = false;  // we set VRING_USED_F_NO_NOTIFY (no EVENT_IDX)
  RingIndex next_avail_;
  RingIndex avail_seen_;  // avail->idx as last read (acquire); pop() trusts it while ahead
  RingIndex next_used_;
  RingIndex published_used_;  // used->idx as last stored
  // used->idx at the last interrupt we raised (EVENT_IDX bookkeeping as in
  // vhost's vhost_notify): nullopt until the first one.
  std::optional<RingIndex> signalled_used_;
};

}  // namespace vnk::virtio
