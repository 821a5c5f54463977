#include "cli/metrics_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fmt/format.h>

#include "base/log.hpp"

namespace vnk::cli {

MetricsFile::MetricsFile(std::string path, std::vector<MetricsGroup> groups, MetricsFormat format, std::string device)
    : path_(std::move(path)), groups_(std::move(groups)), format_(format), device_(std::move(device)) {}

bool MetricsFile::write() const {
  const std::string text =
      format_ == MetricsFormat::prometheus ? render_prometheus(groups_, device_) : render_json(groups_);
  const bool ok = file_.valid() ? write_in_place(text) : replace_by_rename(text);
  if (!ok && !warned_) {
    log::warn("cannot write metrics to {}: {} (further failures are not reported)", path_, std::strerror(errno));
    warned_ = true;
  }
  return ok;
}

std::expected<void, std::string> MetricsFile::keep_open() {
  file_.reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!file_.valid()) return std::unexpected(fmt::format("--metrics {}: {}", path_, std::strerror(errno)));
  return {};
}

bool MetricsFile::write_in_place(const std::string& text) const {
  std::string padded = text;
  // Empty lines after the text: ignored by JSON and Prometheus readers.
  if (padded.size() < longest_) padded.append(longest_ - padded.size(), '\n');
  longest_ = padded.size();
  const ssize_t n = ::pwrite(file_.get(), padded.data(), padded.size(), 0);
  if (n == static_cast<ssize_t>(padded.size())) return true;
  if (n >= 0) errno = EIO;
  return false;
}

bool MetricsFile::replace_by_rename(const std::string& text) const {
  const std::string tmp = path_ + ".tmp";
  int err = 0;  // the first failure's errno, for the message
  auto check = [&err](bool ok) {
    if (!ok && err == 0) err = errno != 0 ? errno : EIO;
    return ok;
  };
  errno = 0;
  std::FILE* f = std::fopen(tmp.c_str(), "w");
  bool ok = check(f != nullptr);
  if (f) {
    ok = check(std::fwrite(text.data(), 1, text.size(), f) == text.size());
    ok = check(std::fclose(f) == 0) && ok;
  }
  ok = ok && check(std::rename(tmp.c_str(), path_.c_str()) == 0);
  errno = err;
  return ok;
}

}  // namespace vnk::cli
