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
  //
  // Each counter has one writer (the thread that owns its engine), so the
  // increment is a plain load and store: no locked read-modify-write on the
  // per-frame path. Readers on other threads still see whole values.
  std::uint64_t add(std::uint64_t n = 1) noexcept {
    const std::uint64_t before = v_.load(std::memory_order_relaxed);
    v_.store(before + n, std::memory_order_relaxed);
    return before;
  }
  [[nodiscard]] std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

}  // namespace vnk
