// An event counter readable from any thread without a lock.
//
// Counters are 1:1 with events (docs/DESIGN.md): each drop, malformed chain and
// poison bumps exactly one. Relaxed atomics: a reader sees each counter
// monotonic, not a consistent snapshot across counters.
#pragma once

#include <atomic>
#include <cstdint>

namespace vnk {

class Counter {
 public:
  // Returns the value before the increment, so a caller can act on the first
  // occurrence (e.g. log a hostile-guest event once).
  std::uint64_t add(std::uint64_t n = 1) noexcept { return v_.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

}  // namespace vnk
