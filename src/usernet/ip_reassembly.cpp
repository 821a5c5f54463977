#include "usernet/ip_reassembly.hpp"

#include <algorithm>

#include "memory/iovec_ops.hpp"

namespace vnk::usernet {

IpReassembly::IpReassembly(UsernetCounters& counters, std::size_t headroom)
    : counters_(counters), headroom_(headroom), entries_(kMaxDatagrams) {}

void IpReassembly::free(Entry& e) {
  bytes_ -= e.data.size();
  e = Entry{};  // gives the memory back: a held datagram may have been 64 KiB
  --live_;
}

void IpReassembly::drop(Entry& e) {
  counters_.ip_fragments_dropped.add();
  free(e);
}

IpReassembly::Entry* IpReassembly::find_or_open(const Key& key, std::uint64_t now_ms) {
  Entry* empty = nullptr;
  Entry* oldest = nullptr;
  for (Entry& e : entries_) {
    if (!e.live) {
      if (empty == nullptr) empty = &e;
      continue;
    }
    if (e.key == key) return &e;
    if (oldest == nullptr || e.first_ms < oldest->first_ms) oldest = &e;
  }
  if (empty == nullptr) {  // full: the oldest datagram gives way
    drop(*oldest);
    empty = oldest;
  }
  empty->key = key;
  empty->live = true;
  empty->first_ms = now_ms;
  ++live_;
  return empty;
}

IpReassembly::Outcome IpReassembly::add(const Key& key, const Fragment& f, std::uint64_t now_ms) {
  expire(now_ms);
  Entry& e = *find_or_open(key, now_ms);
  const std::size_t end = f.offset + f.length;
  // Every fragment but the last carries a multiple of 8 bytes; nothing ends
  // past 65535; the last fixes the end, which no fragment may pass.
  const bool shape_ok = end <= kMaxPayload && (!f.more || (f.length > 0 && f.length % 8 == 0));
  const bool end_ok = e.total ? end <= *e.total && (f.more || end == *e.total)
                              : f.more || std::ranges::all_of(e.ranges, [&](const Range& r) { return r.end <= end; });
  if (!shape_ok || !end_ok || e.ranges.size() == kMaxFragments) {
    drop(e);
    return Outcome::dropped;
  }
  const auto begin = static_cast<std::uint32_t>(f.offset);
  const auto stop = static_cast<std::uint32_t>(end);
  auto it = std::ranges::lower_bound(e.ranges, begin, {}, &Range::begin);
  if (it != e.ranges.end() && it->begin == begin && it->end == stop) return Outcome::held;  // an exact duplicate
  const bool overlaps = (it != e.ranges.end() && it->begin < stop) || (it != e.ranges.begin() && std::prev(it)->end > begin);
  const std::size_t size = headroom_ + end;
  const std::size_t growth = size > e.data.size() ? size - e.data.size() : 0;
  if (overlaps || bytes_ + growth > kMaxBytes) {
    drop(e);
    return Outcome::dropped;
  }
  if (growth) {
    e.data.resize(size);
    bytes_ += growth;
  }
  // `length` is the guest's IP header's word; the bytes must be there too.
  if (iov_read(f.data, 0, std::span(e.data).subspan(headroom_ + f.offset, f.length)) != f.length) {
    drop(e);
    return Outcome::dropped;
  }
  e.ranges.insert(it, Range{begin, stop});
  if (!f.more) e.total = stop;
  if (f.offset == 0) e.header.assign(f.header.begin(), f.header.end());

  // Complete when the ranges run from 0 to the end without a gap.
  if (!e.total || e.header.empty()) return Outcome::held;
  std::uint32_t covered = 0;
  for (const Range& r : e.ranges) {
    if (r.begin != covered) return Outcome::held;
    covered = r.end;
  }
  if (covered != *e.total) return Outcome::held;
  bytes_ -= e.data.size();
  done_header_ = std::move(e.header);
  done_ = std::move(e.data);
  e = Entry{};
  --live_;
  counters_.ip_reassembled.add();
  return Outcome::complete;
}

void IpReassembly::expire(std::uint64_t now_ms) {
  if (live_ == 0) return;
  for (Entry& e : entries_) {
    if (!e.live || now_ms - e.first_ms < kTimeoutMs) continue;
    counters_.ip_reassembly_timeouts.add();
    free(e);
  }
}

}  // namespace vnk::usernet
