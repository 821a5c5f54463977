#include "usernet/tcp/sack_scoreboard.hpp"

#include <algorithm>

#include "usernet/tcp/sequence.hpp"

namespace vnk::usernet {

using packet::SackBlock;

SackScoreboard::Added SackScoreboard::add(std::span<const SackBlock> blocks, std::uint32_t snd_una,
                                         std::uint32_t sent_end, std::uint32_t data_end) noexcept {
  Added out;
  for (const SackBlock& b : blocks) {
    // A D-SACK: a block already acknowledged, bounded to a window's worth
    // below snd_una.
    if (seq_lt(b.left, b.right) && seq_le(b.right, snd_una) && snd_una - b.left <= (1u << 30)) {
      ++out.duplicates;
      continue;
    }
    // Sequence numbers are compared relative to snd_una, so a block is kept
    // only when snd_una <= left < right <= sent_end.
    const std::uint32_t left = b.left - snd_una, right = b.right - snd_una, end = sent_end - snd_una;
    if (left >= right || right > end) {
      ++out.invalid;
      continue;
    }
    const std::uint32_t data = data_end - snd_una;
    if (left >= data) continue;  // our FIN alone
    insert(SackBlock{b.left, right > data ? data_end : b.right});
  }
  return out;
}

void SackScoreboard::insert(SackBlock b) noexcept {
  // Merge with every range it overlaps or touches, then place it in order.
  std::size_t out = 0;
  std::array<SackBlock, kMaxRanges + 1> merged{};
  bool placed = false;
  for (std::size_t i = 0; i < count_; ++i) {
    const SackBlock r = ranges_[i];
    if (seq_lt(r.right, b.left)) {
      merged[out++] = r;
    } else if (seq_lt(b.right, r.left)) {
      if (!placed) merged[out++] = b, placed = true;
      merged[out++] = r;
    } else {
      b.left = seq_lt(r.left, b.left) ? r.left : b.left;
      b.right = seq_lt(b.right, r.right) ? r.right : b.right;
    }
  }
  if (!placed) merged[out++] = b;
  count_ = std::min(out, kMaxRanges);  // full: the highest range gives way
  std::copy_n(merged.begin(), count_, ranges_.begin());
}

void SackScoreboard::advance(std::uint32_t snd_una) noexcept {
  std::size_t out = 0;
  for (std::size_t i = 0; i < count_; ++i) {
    SackBlock r = ranges_[i];
    if (seq_le(r.right, snd_una)) continue;
    if (seq_lt(r.left, snd_una)) r.left = snd_una;
    ranges_[out++] = r;
  }
  count_ = out;
}

std::optional<SackBlock> SackScoreboard::next_hole(std::uint32_t from) const noexcept {
  for (std::size_t i = 0; i < count_; ++i) {
    const SackBlock r = ranges_[i];
    if (seq_lt(from, r.left)) return SackBlock{from, r.left};
    if (seq_lt(from, r.right)) from = r.right;  // inside this range: the hole starts after it
  }
  return std::nullopt;
}

std::optional<std::uint32_t> SackScoreboard::range_end(std::uint32_t seq) const noexcept {
  for (std::size_t i = 0; i < count_; ++i)
    if (seq_le(ranges_[i].left, seq) && seq_lt(seq, ranges_[i].right)) return ranges_[i].right;
  return std::nullopt;
}

std::uint32_t SackScoreboard::bytes() const noexcept {
  std::uint32_t n = 0;
  for (std::size_t i = 0; i < count_; ++i) n += ranges_[i].right - ranges_[i].left;
  return n;
}

}  // namespace vnk::usernet
