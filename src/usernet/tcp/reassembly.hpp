// Out-of-order data from the guest, held until the hole before it is filled.
//
// A guest segment beyond the next expected byte (one before it was lost, or
// frames were reordered on the way) is copied here instead of being dropped,
// and reported back to the guest in SACK blocks (RFC 2018) so it resends
// only the holes. When the hole is filled the stored bytes go to the host
// socket in order. Bounded twice: per connection (kMaxFlowBytes,
// kMaxSegments) and for all connections together (ReassemblyBudget, 16 MiB
// by default). When a bound is hit, the data furthest ahead goes first (it
// is the least useful until every hole before it is filled), and the drop is
// counted; nothing grows without bound.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "packet/tcp.hpp"

namespace vnk::usernet {

// Bytes stored across all connections.
struct ReassemblyBudget {
  std::size_t limit = 16u << 20;
  std::size_t used = 0;
};

class ReassemblyQueue {
 public:
  static constexpr std::size_t kMaxFlowBytes = 4u << 20;
  static constexpr std::size_t kMaxSegments = 256;

  struct Insert {
    std::size_t stored = 0;   // new bytes kept
    std::size_t dropped = 0;  // bytes refused or evicted for the bounds
  };
  // Keeps bytes [seq, seq + len) of a segment (`payload`, in guest memory),
  // all beyond `rcv_nxt`, except those already held.
  Insert insert(std::uint32_t rcv_nxt, std::uint32_t seq, std::span<const iovec> payload, ReassemblyBudget& budget);

  // The bytes at `rcv_nxt`, if held (the rest of the first segment once the
  // hole before it is filled); empty when the next byte is still missing.
  // Segments wholly before `rcv_nxt` are released.
  std::span<const std::byte> ready(std::uint32_t rcv_nxt, ReassemblyBudget& budget);

  // Up to packet::kMaxSackBlocks blocks: the one holding the most recently
  // stored bytes first (RFC 2018 §4), then the others from the lowest.
  std::size_t sack_blocks(std::span<packet::SackBlock> out) const;

  void clear(ReassemblyBudget& budget);
  [[nodiscard]] bool empty() const noexcept { return segments_.empty(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

 private:
  struct Segment {
    std::uint32_t seq;
    std::vector<std::byte> data;
    [[nodiscard]] std::uint32_t end() const noexcept { return seq + static_cast<std::uint32_t>(data.size()); }
  };
  void evict_last(ReassemblyBudget& budget);

  std::vector<Segment> segments_;  // ascending, disjoint
  std::size_t bytes_ = 0;
  std::uint32_t last_seq_ = 0;     // start of the most recent insert
};

}  // namespace vnk::usernet
