#include "memory/mapped_region.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"

namespace vnk {

std::expected<std::shared_ptr<MappedRegion>, MemoryError> MappedRegion::create_memfd(std::uint64_t size) {
  if (size == 0) return std::unexpected(MemoryError::bad_layout);
  UniqueFd fd(::memfd_create("vnetkit-guest", MFD_CLOEXEC));
  if (!fd.valid()) {
    log::error("memfd_create failed: {}", std::strerror(errno));
    return std::unexpected(MemoryError::map_failed);
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    log::error("ftruncate({}) failed: {}", size, std::strerror(errno));
    return std::unexpected(MemoryError::map_failed);
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) {
    log::error("mmap of {} bytes failed: {}", size, std::strerror(errno));
    return std::unexpected(MemoryError::map_failed);
  }
  return std::shared_ptr<MappedRegion>(new MappedRegion(static_cast<std::byte*>(p), size, std::move(fd)));
}

std::expected<std::shared_ptr<MappedRegion>, MemoryError> MappedRegion::map_fd(int fd, std::uint64_t offset,
                                                                               std::uint64_t size) {
  std::uint64_t end = 0;
  if (size == 0 || __builtin_add_overflow(offset, size, &end) || offset > static_cast<std::uint64_t>(INT64_MAX))
    return std::unexpected(MemoryError::bad_layout);
  // A file shorter than the mapping would SIGBUS on the first access past its
  // end; a frontend must not be able to arrange that.
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    log::error("fstat of fd {} failed: {}", fd, std::strerror(errno));
    return std::unexpected(MemoryError::map_failed);
  }
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) < end) {
    log::error("fd {} holds {} bytes, fewer than the {} the region needs", fd, st.st_size, end);
    return std::unexpected(MemoryError::bad_layout);
  }
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(offset));
  if (p == MAP_FAILED) {
    log::error("mmap of fd {} (offset {}, {} bytes) failed: {}", fd, offset, size, std::strerror(errno));
    return std::unexpected(MemoryError::map_failed);
  }
  return std::shared_ptr<MappedRegion>(new MappedRegion(static_cast<std::byte*>(p), size, UniqueFd{}));
}

MappedRegion::~MappedRegion() { ::munmap(base_, size_); }

}  // namespace vnk
