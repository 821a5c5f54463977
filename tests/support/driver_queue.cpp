#include "driver_queue.hpp"

#include <array>
#include <atomic>
#include <stdexcept>

#include "base/byte_order.hpp"

namespace vnk::test {

namespace {
constexpr std::uint64_t kAlign = 4096;
std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) & ~(a - 1); }
}  // namespace

std::uint64_t DriverQueue::footprint(std::uint16_t size) {
  const std::uint64_t avail_end = 16ull * size + 2ull * (3 + size);
  return align_up(avail_end, kAlign) + 2ull * 3 + 8ull * size;
}

DriverQueue::DriverQueue(const GuestMemory& mem, GuestAddress base, std::uint16_t size)
    : mem_(mem),
      size_(size),
      desc_(base),
      avail_{base.value + 16ull * size},
      used_{base.value + align_up(16ull * size + 2ull * (3 + size), kAlign)},
      num_free_(size),
      chain_len_(size, 0),
      next_(size, 0) {
  (void)mem_.fill(base, footprint(size), std::byte{0});
  for (std::uint16_t i = 0; i + 1 < size; ++i) next_[i] = static_cast<std::uint16_t>(i + 1);
}

void DriverQueue::write_u16(GuestAddress a, std::uint16_t v) const {
  std::array<std::byte, 2> raw{};
  store_le<std::uint16_t>(raw.data(), v);
  if (!mem_.write(a, raw)) throw std::runtime_error("driver queue: write outside guest memory");
}

std::uint16_t DriverQueue::read_u16(GuestAddress a) const {
  std::array<std::byte, 2> raw{};
  if (!mem_.read(a, raw)) throw std::runtime_error("driver queue: read outside guest memory");
  return load_le<std::uint16_t>(raw.data());
}

void DriverQueue::write_desc_at(GuestAddress table, std::uint16_t index, const RawDesc& d) {
  std::array<std::byte, 16> raw{};
  store_le<std::uint64_t>(raw.data(), d.addr);
  store_le<std::uint32_t>(raw.data() + 8, d.len);
  store_le<std::uint16_t>(raw.data() + 12, d.flags);
  store_le<std::uint16_t>(raw.data() + 14, d.next);
  if (!mem_.write(GuestAddress{table.value + 16ull * index}, raw))
    throw std::runtime_error("driver queue: descriptor outside guest memory");
}

void DriverQueue::write_desc(std::uint16_t index, const RawDesc& d) { write_desc_at(desc_, index, d); }

void DriverQueue::set_avail_slot(std::uint16_t slot, std::uint16_t head) {
  write_u16(GuestAddress{avail_.value + 4 + 2ull * (slot % size_)}, head);
}

void DriverQueue::set_avail_idx(std::uint16_t idx) {
  avail_idx_ = idx;
  // Linux: virtio_wmb() then the idx store; a release fence models it.
  std::atomic_thread_fence(std::memory_order_release);
  write_u16(GuestAddress{avail_.value + 2}, idx);
}

void DriverQueue::push_head(std::uint16_t head) {
  set_avail_slot(avail_idx_, head);
  set_avail_idx(static_cast<std::uint16_t>(avail_idx_ + 1));
}

std::optional<std::uint16_t> DriverQueue::add(std::span<const Buffer> bufs, std::optional<GuestAddress> indirect) {
  const std::uint16_t needed = indirect ? 1 : static_cast<std::uint16_t>(bufs.size());
  if (bufs.empty() || needed > num_free_) return std::nullopt;
  const std::uint16_t head = free_head_;
  if (indirect) {
    for (std::size_t i = 0; i < bufs.size(); ++i) {
      const bool last = i + 1 == bufs.size();
      write_desc_at(*indirect, static_cast<std::uint16_t>(i),
                    RawDesc{bufs[i].addr.value, bufs[i].len,
                            static_cast<std::uint16_t>((bufs[i].device_writes ? kDescWrite : 0) | (last ? 0 : kDescNext)),
                            static_cast<std::uint16_t>(last ? 0 : i + 1)});
    }
    write_desc(head, RawDesc{indirect->value, static_cast<std::uint32_t>(16 * bufs.size()), kDescIndirect, 0});
    free_head_ = next_[head];
  } else {
    std::uint16_t i = head;
    for (std::size_t k = 0; k < bufs.size(); ++k) {
      const bool last = k + 1 == bufs.size();
      const std::uint16_t n = next_[i];
      write_desc(i, RawDesc{bufs[k].addr.value, bufs[k].len,
                            static_cast<std::uint16_t>((bufs[k].device_writes ? kDescWrite : 0) | (last ? 0 : kDescNext)),
                            last ? std::uint16_t{0} : n});
      if (last) free_head_ = n;
      i = n;
    }
  }
  num_free_ = static_cast<std::uint16_t>(num_free_ - needed);
  chain_len_[head] = needed;
  push_head(head);
  return head;
}

std::uint16_t DriverQueue::used_idx() const { return read_u16(GuestAddress{used_.value + 2}); }

std::optional<UsedElem> DriverQueue::pop_used() {
  if (used_idx() == last_used_) {
    // Drained: re-arm the callback as virtqueue_enable_cb does with EVENT_IDX
    // ("interrupt me at the next used entry").
    set_used_event(last_used_);
    return std::nullopt;
  }
  std::atomic_thread_fence(std::memory_order_acquire);
  std::array<std::byte, 8> raw{};
  if (!mem_.read(GuestAddress{used_.value + 4 + 8ull * (last_used_ % size_)}, raw))
    throw std::runtime_error("driver queue: used ring outside guest memory");
  ++last_used_;
  UsedElem e{load_le<std::uint32_t>(raw.data()), load_le<std::uint32_t>(raw.data() + 4)};
  // Return the chain's descriptors to the free list (detach_buf_split).
  if (e.id < size_ && chain_len_[e.id] > 0) {
    std::uint16_t last = static_cast<std::uint16_t>(e.id);
    for (std::uint16_t k = 1; k < chain_len_[e.id]; ++k) last = next_[last];
    next_[last] = free_head_;
    free_head_ = static_cast<std::uint16_t>(e.id);
    num_free_ = static_cast<std::uint16_t>(num_free_ + chain_len_[e.id]);
    chain_len_[e.id] = 0;
  }
  return e;
}

void DriverQueue::set_used_event(std::uint16_t v) { write_u16(GuestAddress{avail_.value + 4 + 2ull * size_}, v); }

std::uint16_t DriverQueue::used_flags() const { return read_u16(used_); }
std::uint16_t DriverQueue::avail_event() const { return read_u16(GuestAddress{used_.value + 4 + 8ull * size_}); }

void DriverQueue::set_avail_flags(std::uint16_t flags) { write_u16(avail_, flags); }

}  // namespace vnk::test
