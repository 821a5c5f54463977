// `--metrics FILE`: the counters as one JSON document or in the Prometheus
// text format (cli/metrics_text.hpp), rewritten atomically (write to
// FILE.tmp, rename) so a reader never sees half a file.
//
// In the sandbox the file system is gone and only the file opened before
// remains (keep_open()): it is then rewritten in place by one pwrite, padded
// with empty lines to its longest size so it never shrinks (JSON and the
// Prometheus format both ignore them). A reader racing that write can,
// rarely, see a mix of two documents: re-read one that does not parse.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.hpp"
#include "cli/metrics_text.hpp"

namespace vnk::cli {

class MetricsFile {
 public:
  // `device` labels the Prometheus samples.
  MetricsFile(std::string path, std::vector<MetricsGroup> groups, MetricsFormat format = MetricsFormat::json,
              std::string device = {});
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
  MetricsFormat format_;
  std::string device_;
  UniqueFd file_;                        // with keep_open()
  mutable std::size_t longest_ = 0;      // bytes of the longest document written in place
  mutable bool warned_ = false;
};

}  // namespace vnk::cli
