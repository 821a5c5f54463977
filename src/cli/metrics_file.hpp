// `--metrics FILE`: the server's counters as one JSON document, rewritten
// atomically (write to FILE.tmp, rename) so a reader never sees half a file.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace vnk::cli {

// Visits one group of counters: call emit(name, value) for each.
using CounterVisitor = std::function<void(const std::function<void(std::string_view, std::uint64_t)>& emit)>;

struct MetricsGroup {
  std::string name;  // "net", "vhost_user", "backend", ...
  CounterVisitor visit;
};

// A group for a counter set with for_each (base/counter_set.hpp); `c` must
// outlive the group.
template <typename Counters>
MetricsGroup group_of(std::string name, const Counters& c) {
  return {std::move(name), [&c](const auto& emit) { c.for_each(emit); }};
}

class MetricsFile {
 public:
  MetricsFile(std::string path, std::vector<MetricsGroup> groups);
  // Adds a group (before the first write).
  void add(MetricsGroup group) { groups_.push_back(std::move(group)); }
  // Writes the current values; returns false (and logs once) on an I/O error.
  bool write() const;

 private:
  std::string path_;
  std::vector<MetricsGroup> groups_;
  mutable bool warned_ = false;
};

}  // namespace vnk::cli
