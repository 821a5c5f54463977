#include "usernet/tcp/sack_scoreboard.hpp"

#include <algorithm>

#include "usernet/tcp/sequence.hpp"

namespace vnk::usernet {

using packet::SackBlock;

std::size_t SackScoreboard::add(std::span<const SackBlock> blocks, std::uint32_t snd_una,
                                std::uint32_t data_end) noexcept {
  std::size_t ignored = 0;
  for (const SackBlock& b : blocks) {
    // Sequence numbers are compared relative to snd_una, so a block is kept
    // only when snd_una <= left < right <= data_end.
    const std::uint32_t left = b.left - snd_una, right = b.right - snd_una, end = data_end - snd_una;
    if (left >= right || right > end) {
      ++ignored;
      continue;
    }
    insert(b);
  }
  return ignored;
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
