// The metrics options `serve` and `netns` share, and what they set up:
//   --metrics FILE            JSON or Prometheus text, rewritten every interval
//   --metrics-format FORMAT   auto (by extension: *.prom is Prometheus), json, prometheus
//   --metrics-listen ADDR     GET /metrics over HTTP (cli/metrics_endpoint.hpp)
//   --metrics-device NAME     the `device` label of the Prometheus samples
//   --metrics-interval MS
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/metrics_endpoint.hpp"
#include "cli/metrics_file.hpp"
#include "cli/metrics_text.hpp"

namespace vnk::cli {

struct MetricsArgs {
  std::string path;
  std::string format = "auto";
  std::string listen;
  std::string device;
  unsigned interval_ms = 1000;
};

void add_metrics_options(CLI::App& cmd, MetricsArgs& args);

// The counters a command exports, to a file, an HTTP endpoint, both or
// neither. Open it before the sandbox; add the groups once their owners
// exist (before the loop runs).
class MetricsExport {
 public:
  // Binds the HTTP listener when asked. `device` labels the samples unless
  // --metrics-device names another. The error is a sentence for the user.
  static std::expected<std::unique_ptr<MetricsExport>, std::string> open(const MetricsArgs& args, std::string device);

  void add(MetricsGroup group);
  // Rewrites the file (if any): every interval and at exit.
  void tick();
  [[nodiscard]] bool writes_file() const noexcept { return file_ != nullptr; }
  [[nodiscard]] std::chrono::milliseconds interval() const noexcept { return interval_; }
  // The HTTP endpoint's fd for the loop to watch (-1: none), and its handler.
  [[nodiscard]] int http_fd() const noexcept { return endpoint_ ? endpoint_->fd() : -1; }
  void on_http_ready() {
    if (endpoint_) endpoint_->on_ready();
  }
  // Before the sandbox: the file is then rewritten in place (MetricsFile::keep_open).
  [[nodiscard]] std::expected<void, std::string> keep_open();

 private:
  MetricsExport() = default;

  std::vector<MetricsGroup> groups_;
  std::string device_;
  std::unique_ptr<MetricsFile> file_;
  std::unique_ptr<MetricsEndpoint> endpoint_;
  std::chrono::milliseconds interval_{1000};
};

}  // namespace vnk::cli
