// Why a guest-memory access or mapping was refused.
#pragma once

#include <cstdint>
#include <string_view>

namespace vnk {

enum class MemoryError : std::uint8_t {
  unmapped,        // some byte of the range lies outside every region
  overflow,        // address + length wraps past 2^64
  misaligned,      // an atomic access at an address not aligned to its size
  too_many_spans,  // the range needs more iovecs than the caller's array holds
  bad_layout,      // zero-sized or overlapping regions, offset/size overflow
  map_failed,      // memfd_create/ftruncate/mmap failed (errno was logged)
};

[[nodiscard]] constexpr std::string_view to_string(MemoryError e) noexcept {
  switch (e) {
    case MemoryError::unmapped: return "unmapped";
    case MemoryError::overflow: return "overflow";
    case MemoryError::misaligned: return "misaligned";
    case MemoryError::too_many_spans: return "too_many_spans";
    case MemoryError::bad_layout: return "bad_layout";
    case MemoryError::map_failed: return "map_failed";
  }
  return "unknown";
}

}  // namespace vnk
