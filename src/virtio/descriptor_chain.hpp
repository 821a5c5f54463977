// Walking one split-virtqueue descriptor chain (virtio 1.2 §2.7.5, §2.7.5.3).
//
// Every field comes from the guest and is hostile. The walker copies each
// 16-byte descriptor out of guest memory once and checks, in this order:
//   - a `next` index must be < queue size;
//   - at most `queue size` descriptors are visited in total (the TTL), so a
//     chain that loops back on itself terminates (§2.7.5.3.1: a chain is never
//     longer than the queue size);
//   - an INDIRECT descriptor is only legal when VIRTIO_RING_F_INDIRECT_DESC was
//     negotiated, must not also carry NEXT, must have a length that is a
//     non-zero multiple of 16, must be mapped, and must not appear inside an
//     indirect table (no nesting); its table's own `next` links must stay
//     inside the table;
//   - the sum of lengths must fit in 32 bits (the used element's len field).
// Directions are reported, not enforced: the net engines decide what a TX or
// RX chain may contain.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string_view>

#include "base/guest_address.hpp"
#include "memory/guest_memory.hpp"

namespace vnk::virtio {

struct Descriptor {
  GuestAddress addr;
  std::uint32_t len = 0;
  bool write_only = false;  // VIRTQ_DESC_F_WRITE: device writes, driver reads
};

enum class ChainError : std::uint8_t {
  next_out_of_range,     // `next` >= queue (or indirect table) size
  too_long,              // more descriptors than the TTL allows: a loop
  indirect_not_offered,  // INDIRECT flag without the negotiated feature
  indirect_with_next,    // INDIRECT and NEXT set on the same descriptor
  indirect_bad_length,   // table length zero or not a multiple of 16
  indirect_nested,       // INDIRECT inside an indirect table
  indirect_unmapped,     // table not fully in guest memory
  length_overflow,       // descriptor lengths sum past 2^32 - 1
};

[[nodiscard]] std::string_view to_string(ChainError e) noexcept;

class DescriptorChain {
 public:
  // `table_host`: the ring's descriptor table in host memory when it lies in
  // one region (Virtqueue checks that once), else nullptr.
  DescriptorChain(const GuestMemory& mem, GuestAddress table, std::uint16_t queue_size, std::uint16_t head,
                  bool indirect_allowed, const std::byte* table_host = nullptr) noexcept
      : mem_(&mem),
        table_(table),
        table_host_(table_host),
        table_size_(queue_size),
        ttl_(queue_size),
        head_(head),
        next_(head),
        indirect_allowed_(indirect_allowed) {}

  [[nodiscard]] std::uint16_t head() const noexcept { return head_; }

  // The next descriptor, std::nullopt at the end of the chain, or why the
  // chain is malformed. After an error the chain yields nothing more.
  std::expected<std::optional<Descriptor>, ChainError> next();

  // Sum of lengths of the descriptors yielded so far.
  [[nodiscard]] std::uint32_t total_len() const noexcept { return total_len_; }

 private:
  static constexpr std::uint16_t kFlagNext = 1;
  static constexpr std::uint16_t kFlagWrite = 2;
  static constexpr std::uint16_t kFlagIndirect = 4;

  const GuestMemory* mem_;
  GuestAddress table_;        // current table: the ring's, or an indirect one
  const std::byte* table_host_;  // the current table in host memory, or nullptr: read through mem_
  std::uint32_t table_size_;  // entries in the current table
  std::uint32_t ttl_;         // descriptors still allowed
  std::uint16_t head_;
  std::uint32_t next_;  // index into the current table
  bool in_indirect_ = false;
  bool indirect_allowed_;
  bool done_ = false;
  std::uint32_t total_len_ = 0;
};

}  // namespace vnk::virtio
