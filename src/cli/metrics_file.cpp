#include "cli/metrics_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/log.hpp"

namespace vnk::cli {

MetricsFile::MetricsFile(std::string path, std::vector<MetricsGroup> groups)
    : path_(std::move(path)), groups_(std::move(groups)) {}

bool MetricsFile::write() const {
  nlohmann::ordered_json doc;
  for (const MetricsGroup& g : groups_) {
    nlohmann::ordered_json& section = doc[g.name];
    section = nlohmann::ordered_json::object();
    g.visit([&](std::string_view name, std::uint64_t value) { section[std::string(name)] = value; });
  }
  const std::string text = doc.dump(2) + "\n";
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
  if (!ok && !warned_) {
    log::warn("cannot write metrics to {}: {} (further failures are not reported)", path_, std::strerror(err));
    warned_ = true;
  }
  return ok;
}

}  // namespace vnk::cli
