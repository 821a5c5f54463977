#include "cli/metrics_options.hpp"

#include "base/log.hpp"

namespace vnk::cli {

void add_metrics_options(CLI::App& cmd, MetricsArgs& args) {
  cmd.add_option("--metrics", args.path,
                 "Write counters to this file every --metrics-interval (rewritten atomically): JSON, or the "
                 "Prometheus text format for a FILE ending in .prom (node_exporter's textfile collector)");
  cmd.add_option("--metrics-format", args.format, "Format of --metrics: auto (by the file's extension), json or prometheus")
      ->check(CLI::IsMember({"auto", "json", "prometheus"}))
      ->capture_default_str();
  cmd.add_option("--metrics-listen", args.listen,
                 "Serve the counters in the Prometheus text format at http://ADDR/metrics: PORT (on 127.0.0.1), "
                 "IPV4:PORT or [IPV6]:PORT");
  cmd.add_option("--metrics-device", args.device,
                 "The `device` label of the Prometheus samples (default: the socket path, or the namespace's TAP)");
  cmd.add_option("--metrics-interval", args.interval_ms, "Milliseconds between --metrics writes")
      ->check(CLI::Range(10u, 3'600'000u))
      ->capture_default_str();
}

std::expected<std::unique_ptr<MetricsExport>, std::string> MetricsExport::open(const MetricsArgs& args,
                                                                               std::string device) {
  std::unique_ptr<MetricsExport> m(new MetricsExport());
  m->device_ = args.device.empty() ? std::move(device) : args.device;
  m->interval_ = std::chrono::milliseconds(args.interval_ms);
  if (!args.path.empty())
    m->file_ = std::make_unique<MetricsFile>(args.path, std::vector<MetricsGroup>{},
                                             metrics_format_for(args.format, args.path), m->device_);
  if (!args.listen.empty()) {
    // The page is made from m's groups when a scrape comes: m outlives its
    // endpoint, which it owns.
    MetricsExport* self = m.get();
    auto e = MetricsEndpoint::listen(args.listen, [self] {
      std::vector<MetricsGroup> groups = self->groups_;
      groups.push_back(group_of("metrics_http", self->endpoint_->counters()));
      return render_prometheus(groups, self->device_);
    });
    if (!e) return std::unexpected(e.error());
    m->endpoint_ = std::move(*e);
    log::info("metrics: Prometheus at http://{}/metrics", m->endpoint_->where());
  }
  return m;
}

void MetricsExport::add(MetricsGroup group) {
  if (file_) file_->add(group);
  groups_.push_back(std::move(group));
}

void MetricsExport::tick() {
  if (file_) file_->write();
}

std::expected<void, std::string> MetricsExport::keep_open() {
  if (file_) return file_->keep_open();
  return {};
}

}  // namespace vnk::cli
