// The driver side of one split virtqueue, laid out the way Linux's
// virtio_ring.c does it for virtio-mmio (vring_init with 4096 alignment):
//   desc at base, avail right after it, used at the next 4 KiB boundary.
// Descriptors come from a free list threaded through `next`, as in
// virtqueue_add_split; completed chains go back to it.
//
// Tests also reach past the polite API (raw descriptors, avail idx, ring
// slots) to play a hostile driver.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "memory/guest_memory.hpp"

namespace vnk::test {

struct Buffer {
  GuestAddress addr;
  std::uint32_t len = 0;
  bool device_writes = false;
};

struct RawDesc {
  std::uint64_t addr = 0;
  std::uint32_t len = 0;
  std::uint16_t flags = 0;
  std::uint16_t next = 0;
};

struct UsedElem {
  std::uint32_t id = 0;
  std::uint32_t len = 0;
};

constexpr std::uint16_t kDescNext = 1;
constexpr std::uint16_t kDescWrite = 2;
constexpr std::uint16_t kDescIndirect = 4;

class DriverQueue {
 public:
  // Bytes a queue of `size` entries needs from `base` (Linux vring_size).
  static std::uint64_t footprint(std::uint16_t size);

  DriverQueue(const GuestMemory& mem, GuestAddress base, std::uint16_t size);

  [[nodiscard]] std::uint16_t size() const noexcept { return size_; }
  [[nodiscard]] GuestAddress desc() const noexcept { return desc_; }
  [[nodiscard]] GuestAddress avail() const noexcept { return avail_; }
  [[nodiscard]] GuestAddress used() const noexcept { return used_; }

  // Chains `bufs` through the free list (readable first, as the spec asks),
  // puts the head in the avail ring and publishes avail idx. With `indirect`
  // the buffers go into a table at `indirect_table` and one descriptor points
  // at it. Returns the head, or nullopt when the free list is too short.
  std::optional<std::uint16_t> add(std::span<const Buffer> bufs, std::optional<GuestAddress> indirect_table = {});
  // Next completed chain, returning its descriptors to the free list.
  std::optional<UsedElem> pop_used();
  [[nodiscard]] std::uint16_t used_idx() const;
  [[nodiscard]] std::uint16_t num_free() const noexcept { return num_free_; }
  [[nodiscard]] std::uint16_t next_free_head() const noexcept { return free_head_; }

  // EVENT_IDX fields.
  void set_used_event(std::uint16_t v);
  [[nodiscard]] std::uint16_t avail_event() const;
  // used->flags as the device left them (VRING_USED_F_NO_NOTIFY).
  [[nodiscard]] std::uint16_t used_flags() const;
  void set_avail_flags(std::uint16_t flags);

  // Raw access for hostile-guest tests.
  void write_desc(std::uint16_t index, const RawDesc& d);
  void write_desc_at(GuestAddress table, std::uint16_t index, const RawDesc& d);
  void set_avail_slot(std::uint16_t slot, std::uint16_t head);
  void set_avail_idx(std::uint16_t idx);
  [[nodiscard]] std::uint16_t avail_idx() const noexcept { return avail_idx_; }
  // Publishes `head` directly (no free-list bookkeeping).
  void push_head(std::uint16_t head);

 private:
  void write_u16(GuestAddress a, std::uint16_t v) const;
  [[nodiscard]] std::uint16_t read_u16(GuestAddress a) const;

  const GuestMemory& mem_;
  std::uint16_t size_;
  GuestAddress desc_, avail_, used_;
  std::uint16_t free_head_ = 0;
  std::uint16_t num_free_;
  std::uint16_t avail_idx_ = 0;
  std::uint16_t last_used_ = 0;
  std::vector<std::uint16_t> chain_len_;  // per head: descriptors to free
  std::vector<std::uint16_t> next_;       // driver's shadow of desc.next
};

}  // namespace vnk::test
