#include "virtio/chain_iovecs.hpp"

namespace vnk::virtio {

std::expected<GatheredChain, GatherError> gather_chain(const GuestMemory& mem, DescriptorChain& chain,
                                                       Direction direction, std::span<iovec> out,
                                                       std::uint64_t max_bytes) {
  std::size_t used = 0;
  std::uint64_t bytes = 0;
  for (;;) {
    auto d = chain.next();
    if (!d) return std::unexpected(GatherError::malformed);
    if (!*d) break;
    const Descriptor& desc = **d;
    if (desc.write_only != (direction == Direction::device_writes))
      return std::unexpected(GatherError::wrong_direction);
    bytes += desc.len;  // at most 2^32 in total: the walker checks the sum
    if (bytes > max_bytes) return std::unexpected(GatherError::too_large);
    auto n = mem.translate(desc.addr, desc.len, out.subspan(used));
    if (!n) {
      return std::unexpected(n.error() == MemoryError::too_many_spans ? GatherError::malformed
                                                                       : GatherError::unmapped);
    }
    used += *n;
  }
  return GatheredChain{out.first(used), bytes};
}

}  // namespace vnk::virtio
