#include "virtio/descriptor_chain.hpp"

#include <array>
#include <cstring>

#include "base/byte_order.hpp"

namespace vnk::virtio {

std::string_view to_string(ChainError e) noexcept {
  switch (e) {
    case ChainError::next_out_of_range: return "next_out_of_range";
    case ChainError::too_long: return "too_long";
    case ChainError::indirect_not_offered: return "indirect_not_offered";
    case ChainError::indirect_with_next: return "indirect_with_next";
    case ChainError::indirect_bad_length: return "indirect_bad_length";
    case ChainError::indirect_nested: return "indirect_nested";
    case ChainError::indirect_unmapped: return "indirect_unmapped";
    case ChainError::length_overflow: return "length_overflow";
  }
  return "unknown";
}

std::expected<std::optional<Descriptor>, ChainError> DescriptorChain::next() {
  auto fail = [this](ChainError e) -> std::expected<std::optional<Descriptor>, ChainError> {
    done_ = true;
    return std::unexpected(e);
  };
  for (;;) {
    if (done_) return std::nullopt;
    if (next_ >= table_size_) return fail(ChainError::next_out_of_range);
    if (ttl_ == 0) return fail(ChainError::too_long);
    --ttl_;

    // struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }
    std::array<std::byte, 16> raw{};
    const auto at = GuestAddress{table_.value + std::uint64_t{next_} * 16};  // table mapped: no overflow
    if (table_host_ != nullptr) {
      std::memcpy(raw.data(), table_host_ + std::uint64_t{next_} * 16, raw.size());
    } else if (!mem_->read(at, raw)) {
      // The ring's table was validated when the queue was created, so only an
      // indirect table (or a swapped memory layout) can fail here.
      return fail(ChainError::indirect_unmapped);
    }
    const auto addr = load_le<std::uint64_t>(raw.data());
    const auto len = load_le<std::uint32_t>(raw.data() + 8);
    const auto flags = load_le<std::uint16_t>(raw.data() + 12);
    const auto link = load_le<std::uint16_t>(raw.data() + 14);

    if (flags & kFlagIndirect) {
      if (in_indirect_) return fail(ChainError::indirect_nested);
      if (!indirect_allowed_) return fail(ChainError::indirect_not_offered);
      if (flags & kFlagNext) return fail(ChainError::indirect_with_next);
      if (len == 0 || len % 16 != 0) return fail(ChainError::indirect_bad_length);
      if (!mem_->is_mapped(GuestAddress{addr}, len)) return fail(ChainError::indirect_unmapped);
      // Switch to the indirect table; the TTL keeps counting across it.
      table_ = GuestAddress{addr};
      table_host_ = mem_->host_range(table_, len);
      table_size_ = len / 16;
      next_ = 0;
      in_indirect_ = true;
      continue;
    }

    std::uint32_t total = 0;
    if (__builtin_add_overflow(total_len_, len, &total)) return fail(ChainError::length_overflow);
    total_len_ = total;

    if (flags & kFlagNext) {
      next_ = link;
    } else {
      done_ = true;
    }
    return Descriptor{GuestAddress{addr}, len, (flags & kFlagWrite) != 0};
  }
}

}  // namespace vnk::virtio
