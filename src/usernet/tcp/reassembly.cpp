#include "usernet/tcp/reassembly.hpp"

#include <algorithm>

#include "memory/iovec_ops.hpp"
#include "usernet/tcp/sequence.hpp"

namespace vnk::usernet {

ReassemblyQueue::Insert ReassemblyQueue::insert(std::uint32_t rcv_nxt, std::uint32_t seq,
                                                std::span<const iovec> payload, ReassemblyBudget& budget) {
  Insert r;
  const auto len = static_cast<std::uint32_t>(iov_length(payload));
  std::uint32_t from = seq;
  const std::uint32_t to = seq + len;
  if (seq_lt(from, rcv_nxt)) from = rcv_nxt;  // the part before rcv_nxt is already in the socket
  last_seq_ = from;
  // Walk the holes between held segments that [from, to) overlaps.
  std::size_t i = 0;
  while (seq_lt(from, to)) {
    while (i < segments_.size() && seq_le(segments_[i].end(), from)) ++i;
    std::uint32_t hole_end = to;
    if (i < segments_.size()) {
      if (seq_le(segments_[i].seq, from)) {  // inside a held segment: skip it
        from = segments_[i].end();
        continue;
      }
      if (seq_lt(segments_[i].seq, hole_end)) hole_end = segments_[i].seq;
    }
    const std::size_t n = hole_end - from;
    auto fits = [&] {
      return bytes_ + n <= kMaxFlowBytes && budget.used + n <= budget.limit && segments_.size() < kMaxSegments;
    };
    // Make room by evicting what lies furthest ahead, never for data
    // further ahead than it.
    while (!fits() && !segments_.empty() && seq_lt(from, segments_.back().seq)) {
      r.dropped += segments_.back().data.size();
      evict_last(budget);
    }
    if (!fits()) {
      r.dropped += to - from;
      break;
    }
    Segment s{from, std::vector<std::byte>(n)};
    iov_read(payload, from - seq, s.data);
    i = std::min(i, segments_.size());
    segments_.insert(segments_.begin() + static_cast<std::ptrdiff_t>(i), std::move(s));
    bytes_ += n;
    budget.used += n;
    r.stored += n;
    from = hole_end;
  }
  return r;
}

std::span<const std::byte> ReassemblyQueue::ready(std::uint32_t rcv_nxt, ReassemblyBudget& budget) {
  while (!segments_.empty()) {
    Segment& s = segments_.front();
    if (seq_lt(rcv_nxt, s.seq)) return {};  // the hole is still there
    if (seq_lt(rcv_nxt, s.end())) return std::span<const std::byte>(s.data).subspan(rcv_nxt - s.seq);
    bytes_ -= s.data.size();
    budget.used -= s.data.size();
    segments_.erase(segments_.begin());
  }
  return {};
}

std::size_t ReassemblyQueue::sack_blocks(std::span<packet::SackBlock> out) const {
  // Blocks are runs of adjacent segments; the run holding last_seq_ goes
  // first, the others follow in order. Two passes, no allocation: this runs
  // for every duplicate ACK.
  auto holds_recent = [this](const packet::SackBlock& b) {
    return seq_le(b.left, last_seq_) && seq_lt(last_seq_, b.right);
  };
  auto for_each_block = [this](auto&& visit) {
    for (std::size_t i = 0; i < segments_.size();) {
      packet::SackBlock b{segments_[i].seq, segments_[i].end()};
      for (++i; i < segments_.size() && segments_[i].seq == b.right; ++i) b.right = segments_[i].end();
      if (!visit(b)) return;
    }
  };
  std::size_t n = 0;
  for_each_block([&](const packet::SackBlock& b) {
    if (holds_recent(b) && n < out.size()) out[n++] = b;
    return n == 0;
  });
  const bool recent_first = n == 1;
  for_each_block([&](const packet::SackBlock& b) {
    if (!(recent_first && holds_recent(b)) && n < out.size()) out[n++] = b;
    return n < out.size();
  });
  return n;
}

void ReassemblyQueue::evict_last(ReassemblyBudget& budget) {
  bytes_ -= segments_.back().data.size();
  budget.used -= segments_.back().data.size();
  segments_.pop_back();
}

void ReassemblyQueue::clear(ReassemblyBudget& budget) {
  budget.used -= bytes_;
  bytes_ = 0;
  segments_.clear();
}

}  // namespace vnk::usernet
