// Guest memory: the one door through which vnetkit touches a guest's RAM.
//
// A GuestMemory is an immutable layout of regions, each a piece of
// guest-physical address space backed by memory mapped into this process.
// Regions come from a memfd created here (the mock driver, a future microVM)
// or from fds a vhost-user frontend sends (SET_MEM_TABLE). vhost-user gives
// ring addresses in the frontend's own virtual addresses, so each region also
// records its frontend virtual base and user_to_guest() translates those.
//
// Every access is bounds- and overflow-checked and returns std::expected: a
// guest-chosen address or length is never trusted. Contents are shared with a
// running guest, so reads may race with guest writes; callers copy what they
// validate (e.g. read a descriptor once, then use the copy).
//
// To replace the layout while queue threads run, owners hold a
// std::shared_ptr<const GuestMemory> and swap it; a thread finishes its
// current drain on the snapshot it started with.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <expected>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "base/guest_address.hpp"
#include "memory/mapped_region.hpp"
#include "memory/memory_error.hpp"

namespace vnk {

// A region to create anew (zero-filled memfd).
struct RegionSpec {
  GuestAddress gpa;
  std::uint64_t size = 0;
  std::uint64_t user_addr = 0;  // frontend virtual address of gpa, if any
};

// A region received as an fd (vhost-user SET_MEM_TABLE fields).
struct FdRegionSpec {
  int fd = -1;  // not owned; may be closed after from_fds() returns
  GuestAddress gpa;
  std::uint64_t size = 0;
  std::uint64_t user_addr = 0;
  std::uint64_t mmap_offset = 0;
};

class GuestMemory {
 public:
  struct Region {
    GuestAddress gpa;
    std::uint64_t size;
    std::uint64_t user_addr;
    std::byte* host;
    std::shared_ptr<MappedRegion> mapping;  // keeps `host` valid
  };

  static std::expected<GuestMemory, MemoryError> create(std::span<const RegionSpec> specs);
  static std::expected<GuestMemory, MemoryError> from_fds(std::span<const FdRegionSpec> specs);

  [[nodiscard]] std::span<const Region> regions() const noexcept { return regions_; }

  std::expected<void, MemoryError> read(GuestAddress addr, std::span<std::byte> out) const;
  std::expected<void, MemoryError> write(GuestAddress addr, std::span<const std::byte> in) const;
  std::expected<void, MemoryError> fill(GuestAddress addr, std::uint64_t len, std::byte value) const;

  template <typename T>
    requires std::is_trivially_copyable_v<T>
  std::expected<T, MemoryError> read_obj(GuestAddress addr) const {
    T v;
    auto r = read(addr, std::as_writable_bytes(std::span(&v, 1)));
    if (!r) return std::unexpected(r.error());
    return v;
  }
  template <typename T>
    requires std::is_trivially_copyable_v<T>
  std::expected<void, MemoryError> write_obj(GuestAddress addr, const T& v) const {
    return write(addr, std::as_bytes(std::span(&v, 1)));
  }

  // Ring index accesses (virtio 1.2 §2.7.13: the driver publishes avail->idx
  // after the entries it covers; the device publishes used->idx the same way).
  // Little-endian host assumed for these, checked at compile time in the .cpp.
  std::expected<std::uint16_t, MemoryError> load_acquire_u16(GuestAddress addr) const;
  std::expected<void, MemoryError> store_release_u16(GuestAddress addr, std::uint16_t v) const;

  // Host iovecs covering [addr, addr+len), split at region boundaries, for
  // zero-copy readv/writev/recvmsg. Returns how many entries of `out` it used.
  std::expected<std::size_t, MemoryError> translate(GuestAddress addr, std::uint64_t len,
                                                    std::span<iovec> out) const;

  // True when every byte of [addr, addr+len) is mapped.
  [[nodiscard]] bool is_mapped(GuestAddress addr, std::uint64_t len) const;
  // Host pointer for [addr, addr+len) when it lies inside one region, else
  // nullptr. For hot paths that check a range once (a ring, a descriptor
  // table) and then access it directly; valid while this layout lives.
  [[nodiscard]] std::byte* host_range(GuestAddress addr, std::uint64_t len) const noexcept;
  // Identifies this layout (copies share it; a new layout never reuses
  // one), so a cache of host_range() results can tell it is still valid.
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

  // Frontend virtual address -> guest-physical address (vhost-user rings).
  // The whole [uva, uva+len) must lie in one region.
  std::expected<GuestAddress, MemoryError> user_to_guest(std::uint64_t uva, std::uint64_t len) const;

 private:
  explicit GuestMemory(std::vector<Region> regions);
  static std::expected<GuestMemory, MemoryError> from_regions(std::vector<Region> regions);

  // Region containing `gpa`, or nullptr.
  [[nodiscard]] const Region* find(std::uint64_t gpa) const noexcept;

  template <typename F>
  std::expected<void, MemoryError> for_each_span(GuestAddress addr, std::uint64_t len, F&& f) const;

  std::vector<Region> regions_;  // sorted by gpa, non-overlapping
  std::uint64_t id_;
};

}  // namespace vnk
