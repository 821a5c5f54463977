// One mmap'd piece of guest memory owned by this process: created here from a
// memfd, or mapped from an fd a vhost-user frontend sent us. Unmapped once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>

#include "base/unique_fd.hpp"
#include "memory/memory_error.hpp"

namespace vnk {

class MappedRegion {
 public:
  // A new shared memfd of `size` bytes, zero-filled. The fd is kept so the
  // region can later be shared with another process.
  static std::expected<std::shared_ptr<MappedRegion>, MemoryError> create_memfd(std::uint64_t size);
  // Maps `size` bytes at `offset` of `fd` (which stays owned by the caller).
  static std::expected<std::shared_ptr<MappedRegion>, MemoryError> map_fd(int fd, std::uint64_t offset,
                                                                         std::uint64_t size);

  MappedRegion(const MappedRegion&) = delete;
  MappedRegion& operator=(const MappedRegion&) = delete;
  ~MappedRegion();

  [[nodiscard]] std::byte* data() const noexcept { return base_; }
  [[nodiscard]] std::uint64_t size() const noexcept { return size_; }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

 private:
  MappedRegion(std::byte* base, std::uint64_t size, UniqueFd fd) : base_(base), size_(size), fd_(std::move(fd)) {}

  std::byte* base_;
  std::uint64_t size_;
  UniqueFd fd_;
};

}  // namespace vnk
