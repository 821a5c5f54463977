#include "memory/guest_memory.hpp"

#include <algorithm>
#include <atomic>
#include <bit>

namespace vnk {

static_assert(std::endian::native == std::endian::little,
              "ring index atomics assume a little-endian host (virtio rings are little-endian)");

GuestMemory::GuestMemory(std::vector<Region> regions) : regions_(std::move(regions)) {
  static std::atomic<std::uint64_t> next_id{1};
  id_ = next_id.fetch_add(1, std::memory_order_relaxed);
}

std::expected<GuestMemory, MemoryError> GuestMemory::from_regions(std::vector<Region> regions) {
  std::sort(regions.begin(), regions.end(), [](const Region& a, const Region& b) { return a.gpa < b.gpa; });
  for (std::size_t i = 0; i < regions.size(); ++i) {
    const Region& r = regions[i];
    std::uint64_t end = 0;
    if (r.size == 0 || __builtin_add_overflow(r.gpa.value, r.size - 1, &end))
      return std::unexpected(MemoryError::bad_layout);
    std::uint64_t uend = 0;
    if (__builtin_add_overflow(r.user_addr, r.size - 1, &uend)) return std::unexpected(MemoryError::bad_layout);
    if (i > 0) {
      const Region& prev = regions[i - 1];
      if (prev.gpa.value + (prev.size - 1) >= r.gpa.value) return std::unexpected(MemoryError::bad_layout);
    }
  }
  return GuestMemory(std::move(regions));
}

std::expected<GuestMemory, MemoryError> GuestMemory::create(std::span<const RegionSpec> specs) {
  std::vector<Region> regions;
  regions.reserve(specs.size());
  for (const RegionSpec& s : specs) {
    auto m = MappedRegion::create_memfd(s.size);
    if (!m) return std::unexpected(m.error());
    regions.push_back(Region{s.gpa, s.size, s.user_addr, (*m)->data(), std::move(*m)});
  }
  return from_regions(std::move(regions));
}

std::expected<GuestMemory, MemoryError> GuestMemory::from_fds(std::span<const FdRegionSpec> specs) {
  std::vector<Region> regions;
  regions.reserve(specs.size());
  for (const FdRegionSpec& s : specs) {
    // Map from offset 0 so mmap_offset needs no page alignment; the region
    // starts mmap_offset bytes into the mapping.
    std::uint64_t span_len = 0;
    if (s.size == 0 || __builtin_add_overflow(s.mmap_offset, s.size, &span_len))
      return std::unexpected(MemoryError::bad_layout);
    auto m = MappedRegion::map_fd(s.fd, 0, span_len);
    if (!m) return std::unexpected(m.error());
    std::byte* host = (*m)->data() + s.mmap_offset;
    regions.push_back(Region{s.gpa, s.size, s.user_addr, host, std::move(*m)});
  }
  return from_regions(std::move(regions));
}

const GuestMemory::Region* GuestMemory::find(std::uint64_t gpa) const noexcept {
  // First region whose start is > gpa, then step back one.
  auto it = std::upper_bound(regions_.begin(), regions_.end(), gpa,
                             [](std::uint64_t a, const Region& r) { return a < r.gpa.value; });
  if (it == regions_.begin()) return nullptr;
  --it;
  return gpa - it->gpa.value < it->size ? &*it : nullptr;
}

std::byte* GuestMemory::host_range(GuestAddress addr, std::uint64_t len) const noexcept {
  const Region* r = find(addr.value);
  if (r == nullptr) return nullptr;
  const std::uint64_t off = addr.value - r->gpa.value;
  if (len > r->size - off) return nullptr;
  return r->host + off;
}

template <typename F>
std::expected<void, MemoryError> GuestMemory::for_each_span(GuestAddress addr, std::uint64_t len, F&& f) const {
  if (len == 0) return {};
  std::uint64_t last = 0;
  if (__builtin_add_overflow(addr.value, len - 1, &last)) return std::unexpected(MemoryError::overflow);
  std::uint64_t cur = addr.value;
  std::uint64_t done = 0;
  while (done < len) {
    const Region* r = find(cur);
    if (r == nullptr) return std::unexpected(MemoryError::unmapped);
    const std::uint64_t off = cur - r->gpa.value;
    const std::uint64_t n = std::min(len - done, r->size - off);
    if (auto res = f(r->host + off, done, n); !res) return res;
    done += n;
    cur += n;  // cannot wrap: cur + n - 1 <= last
  }
  return {};
}

std::expected<void, MemoryError> GuestMemory::read(GuestAddress addr, std::span<std::byte> out) const {
  return for_each_span(addr, out.size(),
                       [&](std::byte* host, std::uint64_t done, std::uint64_t n) -> std::expected<void, MemoryError> {
                         std::memcpy(out.data() + done, host, n);
                         return {};
                       });
}

std::expected<void, MemoryError> GuestMemory::write(GuestAddress addr, std::span<const std::byte> in) const {
  return for_each_span(addr, in.size(),
                       [&](std::byte* host, std::uint64_t done, std::uint64_t n) -> std::expected<void, MemoryError> {
                         std::memcpy(host, in.data() + done, n);
                         return {};
                       });
}

std::expected<void, MemoryError> GuestMemory::fill(GuestAddress addr, std::uint64_t len, std::byte value) const {
  return for_each_span(addr, len,
                       [&](std::byte* host, std::uint64_t, std::uint64_t n) -> std::expected<void, MemoryError> {
                         std::memset(host, std::to_integer<int>(value), n);
                         return {};
                       });
}

namespace {

// An aligned guest address is not enough: a frontend may describe a region
// whose guest and host addresses disagree in their low bits (an odd
// guest_phys_addr or mmap_offset), and atomic access needs host alignment.
bool host_aligned_u16(const std::byte* p) noexcept {
  return reinterpret_cast<std::uintptr_t>(p) % alignof(std::uint16_t) == 0;
}

}  // namespace

std::expected<std::uint16_t, MemoryError> GuestMemory::load_acquire_u16(GuestAddress addr) const {
  if (!addr.is_aligned(2)) return std::unexpected(MemoryError::misaligned);
  std::byte* p = host_range(addr, 2);
  if (p == nullptr) return std::unexpected(MemoryError::unmapped);
  if (!host_aligned_u16(p)) return std::unexpected(MemoryError::misaligned);
  // Acquire pairs with the driver's write barrier before it bumps the index:
  // entries read after this load are at least as new as the index.
  return std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(p)).load(std::memory_order_acquire);
}

std::expected<void, MemoryError> GuestMemory::store_release_u16(GuestAddress addr, std::uint16_t v) const {
  if (!addr.is_aligned(2)) return std::unexpected(MemoryError::misaligned);
  std::byte* p = host_range(addr, 2);
  if (p == nullptr) return std::unexpected(MemoryError::unmapped);
  if (!host_aligned_u16(p)) return std::unexpected(MemoryError::misaligned);
  // Release: the used entries written before are visible to a driver that
  // reads this index (it issues a read barrier after loading it).
  std::atomic_ref<std::uint16_t>(*reinterpret_cast<std::uint16_t*>(p)).store(v, std::memory_order_release);
  return {};
}

std::expected<std::size_t, MemoryError> GuestMemory::translate(GuestAddress addr, std::uint64_t len,
                                                               std::span<iovec> out) const {
  std::size_t used = 0;
  auto r = for_each_span(addr, len,
                         [&](std::byte* host, std::uint64_t, std::uint64_t n) -> std::expected<void, MemoryError> {
                           if (used == out.size()) return std::unexpected(MemoryError::too_many_spans);
                           out[used++] = iovec{host, static_cast<std::size_t>(n)};
                           return {};
                         });
  if (!r) return std::unexpected(r.error());
  return used;
}

bool GuestMemory::is_mapped(GuestAddress addr, std::uint64_t len) const {
  return for_each_span(addr, len,
                       [](std::byte*, std::uint64_t, std::uint64_t) -> std::expected<void, MemoryError> { return {}; })
      .has_value();
}

std::expected<GuestAddress, MemoryError> GuestMemory::user_to_guest(std::uint64_t uva, std::uint64_t len) const {
  std::uint64_t last = 0;
  if (__builtin_add_overflow(uva, len == 0 ? 0 : len - 1, &last)) return std::unexpected(MemoryError::overflow);
  for (const Region& r : regions_) {
    // last >= uva, so "last inside" and "uva >= start" put the whole range inside.
    if (uva >= r.user_addr && last - r.user_addr < r.size) return GuestAddress{r.gpa.value + (uva - r.user_addr)};
  }
  return std::unexpected(MemoryError::unmapped);
}

}  // namespace vnk
