#include "virtio/virtqueue.hpp"

#include <array>
#include <atomic>
#include <cstring>

#include "base/byte_order.hpp"

namespace vnk::virtio {
namespace {

std::expected<std::uint16_t, MemoryError> read_le16(const GuestMemory& mem, GuestAddress at) {
  std::array<std::byte, 2> raw{};
  if (auto r = mem.read(at, raw); !r) return std::unexpected(r.error());
  return load_le<std::uint16_t>(raw.data());
}

}  // namespace

std::string_view to_string(QueueError e) noexcept {
  switch (e) {
    case QueueError::bad_size: return "bad_size";
    case QueueError::misaligned: return "misaligned";
    case QueueError::ring_unmapped: return "ring_unmapped";
    case QueueError::avail_idx_jump: return "avail_idx_jump";
    case QueueError::head_out_of_range: return "head_out_of_range";
    case QueueError::used_unmapped: return "used_unmapped";
  }
  return "unknown";
}

bool rings_overlap(std::span<const QueueConfig> queues) noexcept {
  struct Range {
    std::uint64_t begin, end;
  };
  std::array<Range, 3 * 8> ranges{};  // vhost-user and MMIO net: 2 queues; room for 8
  std::size_t n = 0;
  // The addresses are the driver's, not yet checked against guest memory:
  // a range that would wrap past 2^64 ends there instead.
  auto range = [](std::uint64_t begin, std::uint64_t size) {
    return Range{begin, begin + size < begin ? UINT64_MAX : begin + size};
  };
  for (const QueueConfig& q : queues) {
    if (n + 3 > ranges.size()) return true;  // more queues than any device here has: refuse
    ranges[n++] = range(q.desc.value, Virtqueue::desc_table_size(q.size));
    ranges[n++] = range(q.avail.value, Virtqueue::avail_ring_size(q.size));
    ranges[n++] = range(q.used.value, Virtqueue::used_ring_size(q.size));
  }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = i + 1; j < n; ++j)
      if (ranges[i].begin < ranges[j].end && ranges[j].begin < ranges[i].end) return true;
  return false;
}

std::expected<Virtqueue, QueueError> Virtqueue::create(const QueueConfig& cfg, std::uint16_t max_size,
                                                       const GuestMemory& mem, bool event_idx, bool indirect) {
  const std::uint16_t n = cfg.size;
  if (n == 0 || n > max_size || (n & (n - 1)) != 0) return std::unexpected(QueueError::bad_size);
  if (!cfg.desc.is_aligned(16) || !cfg.avail.is_aligned(2) || !cfg.used.is_aligned(4))
    return std::unexpected(QueueError::misaligned);
  if (!mem.is_mapped(cfg.desc, desc_table_size(n)) || !mem.is_mapped(cfg.avail, avail_ring_size(n)) ||
      !mem.is_mapped(cfg.used, used_ring_size(n)))
    return std::unexpected(QueueError::ring_unmapped);

  Virtqueue q;
  q.desc_ = cfg.desc;
  q.avail_ = cfg.avail;
  q.used_ = cfg.used;
  q.size_ = n;
  q.event_idx_ = event_idx;
  q.indirect_ = indirect;
  return q;
}

std::expected<void, QueueError> Virtqueue::resume(const GuestMemory& mem, RingIndex next_avail) {
  auto used_idx = read_le16(mem, GuestAddress{used_.value + kRingIdx});
  if (!used_idx) return std::unexpected(QueueError::ring_unmapped);
  next_avail_ = next_avail;
  avail_seen_ = next_avail;
  next_used_ = published_used_ = RingIndex(*used_idx);
  // A server that busy-polled may have left VRING_USED_F_NO_NOTIFY set: the
  // first empty drain clears it.
  notify_off_ = !event_idx_;
  return {};
}

const Virtqueue::RingView& Virtqueue::view(const GuestMemory& mem) noexcept {
  if (view_.mem_id == mem.id()) return view_;
  auto aligned = [](std::byte* p, std::size_t a) { return p != nullptr && reinterpret_cast<std::uintptr_t>(p) % a == 0; };
  std::byte* avail = mem.host_range(avail_, avail_ring_size(size_));
  std::byte* used = mem.host_range(used_, used_ring_size(size_));
  view_ = RingView{mem.id(), mem.host_range(desc_, desc_table_size(size_)), aligned(avail, 2) ? avail : nullptr,
                   aligned(used, 4) ? used : nullptr};
  return view_;
}

std::expected<std::uint16_t, MemoryError> Virtqueue::avail_u16(const GuestMemory& mem, std::uint64_t offset,
                                                               bool acquire) {
  if (std::byte* p = view(mem).avail) {
    auto* v = reinterpret_cast<std::uint16_t*>(p + offset);
    // Little-endian host (checked in guest_memory.cpp), as GuestMemory's own accessors.
    return acquire ? std::atomic_ref<std::uint16_t>(*v).load(std::memory_order_acquire) : load_le<std::uint16_t>(p + offset);
  }
  const GuestAddress at{avail_.value + offset};
  return acquire ? mem.load_acquire_u16(at) : read_le16(mem, at);
}

bool Virtqueue::used_write(const GuestMemory& mem, std::uint64_t offset, std::span<const std::byte> bytes) {
  if (std::byte* p = view(mem).used) {
    std::memcpy(p + offset, bytes.data(), bytes.size());
    return true;
  }
  return mem.write(GuestAddress{used_.value + offset}, bytes).has_value();
}

std::expected<std::optional<DescriptorChain>, QueueError> Virtqueue::pop(const GuestMemory& mem) {
  // avail->idx is read again only when the chains it announced are used up:
  // the line it sits on is the one the driver writes for every post, so a
  // read per chain would pull it across CPUs for each frame.
  std::uint16_t pending = next_avail_.distance_to(avail_seen_);
  if (pending == 0 || pending > size_) {
    auto idx = avail_u16(mem, kRingIdx, /*acquire=*/true);
    if (!idx) return std::unexpected(QueueError::ring_unmapped);
    avail_seen_ = RingIndex(*idx);
    pending = next_avail_.distance_to(avail_seen_);
    if (pending == 0) return std::nullopt;
    // §2.7.13.3: the driver never has more than `size` chains outstanding.
    // An index further ahead is corrupt or hostile; trusting it would make
    // us walk stale slots as if they were new.
    if (pending > size_) return std::unexpected(QueueError::avail_idx_jump);
  }

  auto head = avail_u16(mem, avail_slot(next_avail_), /*acquire=*/false);
  if (!head) return std::unexpected(QueueError::ring_unmapped);
  const std::uint16_t h = *head;
  // A head >= size cannot be completed either: the driver would reject the
  // used element (virtio_ring.c marks the ring broken), so this is structural.
  if (h >= size_) return std::unexpected(QueueError::head_out_of_range);
  ++next_avail_;
  return DescriptorChain(mem, desc_, size_, h, indirect_, view(mem).desc);
}

std::expected<void, QueueError> Virtqueue::add_used(const GuestMemory& mem, std::uint16_t head, std::uint32_t len) {
  std::array<std::byte, 8> elem{};
  store_le<std::uint32_t>(elem.data(), head);
  store_le<std::uint32_t>(elem.data() + 4, len);
  if (!used_write(mem, used_slot(next_used_), elem))
    return std::unexpected(QueueError::used_unmapped);
  ++next_used_;
  return {};
}

std::expected<void, QueueError> Virtqueue::publish_used(const GuestMemory& mem) {
  if (published_used_ == next_used_) return {};
  // Release store: the elements written before are visible before the new index.
  if (std::byte* p = view(mem).used) {
    std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(p + kRingIdx)).store(next_used_.value(), std::memory_order_release);
  } else if (!mem.store_release_u16(GuestAddress{used_.value + kRingIdx}, next_used_.value())) {
    return std::unexpected(QueueError::used_unmapped);
  }
  published_used_ = next_used_;
  return {};
}

bool Virtqueue::needs_interrupt(const GuestMemory& mem) {
  // Pairs with the driver's mb() between writing used_event (or the avail
  // flags) and re-reading used->idx in virtqueue_enable_cb.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!event_idx_) {
    auto flags = avail_u16(mem, kAvailFlags, false);
    // Unreadable flags: interrupt anyway; a spurious interrupt is harmless.
    return !flags || (*flags & kAvailFlagNoInterrupt) == 0;
  }
  const RingIndex now = next_used_;
  const std::optional<RingIndex> old = signalled_used_;
  signalled_used_ = now;
  if (!old) return true;
  auto ev = avail_u16(mem, used_event(), false);
  if (!ev) return true;
  // vring_need_event(): interrupt if used_event lies in [old, now).
  const RingIndex event(*ev);
  const auto since_event = static_cast<std::uint16_t>(event.distance_to(now) - 1);
  return since_event < old->distance_to(now);
}

void Virtqueue::disable_notification(const GuestMemory& mem) {
  // With EVENT_IDX an avail_event left behind is enough: the driver kicks
  // only when its index crosses it.
  if (event_idx_ || notify_off_) return;
  std::array<std::byte, 2> raw{};
  store_le<std::uint16_t>(raw.data(), kUsedFlagNoNotify);
  notify_off_ = used_write(mem, kUsedFlags, raw);
}

bool Virtqueue::enable_notification(const GuestMemory& mem) {
  std::array<std::byte, 2> raw{};
  if (event_idx_) {
    // Unwritable avail_event: the driver keeps notifying on every post,
    // which is safe, so there is nothing to report.
    store_le<std::uint16_t>(raw.data(), next_avail_.value());
    if (!used_write(mem, avail_event(), raw)) return false;
  } else {
    if (!notify_off_) return false;  // never turned off: the driver notifies on every post
    if (!used_write(mem, kUsedFlags, raw)) return false;
    notify_off_ = false;
  }
  // Pairs with the driver's mb() between publishing avail->idx and reading
  // avail_event (or used->flags) in virtqueue_kick_prepare.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  auto idx = avail_u16(mem, kRingIdx, /*acquire=*/true);
  if (!idx) return false;
  avail_seen_ = RingIndex(*idx);
  return avail_seen_ != next_avail_;
}

}  // namespace vnk::virtio
