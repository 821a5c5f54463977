// Turning a descriptor chain into host iovecs for zero-copy I/O.
//
// Walks the whole chain, requires every descriptor to have the expected
// direction, translates each through GuestMemory (a descriptor may span
// regions, so one descriptor can yield several iovecs), and stops early once
// more than `max_bytes` were seen so a hostile multi-GiB chain costs nothing.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>

#include "memory/guest_memory.hpp"
#include "virtio/descriptor_chain.hpp"

namespace vnk::virtio {

enum class Direction : std::uint8_t { device_reads, device_writes };

enum class GatherError : std::uint8_t {
  wrong_direction,  // a descriptor of the other direction
  unmapped,         // a descriptor outside guest memory
  malformed,        // the chain itself is broken (see ChainError), or needs too many iovecs
  too_large,        // more than max_bytes
};

struct GatheredChain {
  std::span<iovec> iov;  // prefix of the caller's array
  std::uint64_t bytes = 0;
};

std::expected<GatheredChain, GatherError> gather_chain(const GuestMemory& mem, DescriptorChain& chain,
                                                       Direction direction, std::span<iovec> out,
                                                       std::uint64_t max_bytes);

}  // namespace vnk::virtio
