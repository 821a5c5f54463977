// `--metrics FILE`: the server's counters as one JSON document, rewritten
// atomically (write to FILE.tmp, rename) so a reader never sees half a file.
//
// In the sandbox the file system is gone and only the file opened before
// remains (keep_open()): it is then rewritten in place by one pwrite, padded
// with spaces to its longest size so it never shrinks. A reader racing that
// write can, rarely, see a mix of two documents: re-read one that does not
// parse.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.hpp"

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
  // Opens (creates) the file now and from then on rewrites it in place,
  // never by path. The error is a sentence for the user.
  [[nodiscard]] std::expected<void, std::string> keep_open();

 private:
  bool write_in_place(const std::string& text) const;
  bool replace_by_rename(const std::string& text) const;

  std::string path_;
  std::vector<MetricsGroup> groups_;
  UniqueFd file_;                        // with keep_open()
  mutable std::size_t longest_ = 0;      // bytes of the longest document written in place
  mutable bool warned_ = false;
};

}  // namespace vnk::cli
