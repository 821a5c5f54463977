// What the guest has told us it holds beyond its cumulative ACK (its SACK
// blocks, RFC 2018), so that after a loss only the holes are sent again
// (in the spirit of RFC 6675's scoreboard).
//
// Blocks come from the guest and are checked against the data in flight
// before they are kept; the board holds a few disjoint ranges, ascending,
// and when it is full the highest range gives way (the holes near the
// cumulative ACK matter first).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "packet/tcp.hpp"

namespace vnk::usernet {

class SackScoreboard {
 public:
  static constexpr std::size_t kMaxRanges = 8;

  // Adds the guest's blocks. A block wholly below snd_una reports data that
  // arrived twice (a D-SACK, RFC 2883) and tells nothing about holes; any
  // other block outside [snd_una, sent_end] (sent_end: one past the last
  // sequence number sent, our FIN included), or empty, is invalid. Both are
  // left out, and counted. Blocks are kept cut at data_end (one past the
  // last data byte): a guest's block may cover our FIN, the board holds data.
  struct Added {
    std::size_t duplicates = 0;  // D-SACK blocks
    std::size_t invalid = 0;
  };
  Added add(std::span<const packet::SackBlock> blocks, std::uint32_t snd_una, std::uint32_t sent_end,
            std::uint32_t data_end) noexcept;
  // The cumulative ACK moved to `snd_una`: ranges below it go.
  void advance(std::uint32_t snd_una) noexcept;
  // The first hole at or after `from`: bytes not SACKed, below the highest
  // SACKed byte. nullopt when there is none.
  [[nodiscard]] std::optional<packet::SackBlock> next_hole(std::uint32_t from) const noexcept;
  // The end of the range holding `seq`, when one does.
  [[nodiscard]] std::optional<std::uint32_t> range_end(std::uint32_t seq) const noexcept;
  // Bytes SACKed in all.
  [[nodiscard]] std::uint32_t bytes() const noexcept;
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::span<const packet::SackBlock> ranges() const noexcept { return std::span(ranges_).first(count_); }
  void clear() noexcept { count_ = 0; }

 private:
  void insert(packet::SackBlock b) noexcept;

  std::array<packet::SackBlock, kMaxRanges> ranges_{};
  std::size_t count_ = 0;
};

}  // namespace vnk::usernet
