// The counters a command exports, and the two texts they are written as:
// one JSON document ({"group": {"counter": value}}) and the Prometheus text
// exposition format (version 0.0.4), for node_exporter's textfile collector
// or a scrape of --metrics-listen.
//
// Prometheus names: vnetkit_<group>_<counter>, with _total on counters (all
// but a group's gauges), one `device` label naming what is served, and the
// counter's comment in its declaration as # HELP (scripts/counter_help.py).
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
  // The X-macro list its counters were declared in (help text), if any.
  std::string_view counter_list;
  // Values that go up and down (link_up, guests_attached), with their help.
  // Everything else is a counter.
  struct Gauge {
    std::string_view name;
    std::string_view help;
  };
  std::vector<Gauge> gauges;
};

// A group for a counter set with for_each (base/counter_set.hpp); `c` must
// outlive the group.
template <typename Counters>
MetricsGroup group_of(std::string name, const Counters& c) {
  return {std::move(name), [&c](const auto& emit) { c.for_each(emit); }, Counters::kCounterList, {}};
}

enum class MetricsFormat { json, prometheus };

// "json" or "prometheus"; "auto" (or empty) picks by the file name: *.prom
// is Prometheus, anything else JSON.
[[nodiscard]] MetricsFormat metrics_format_for(std::string_view format, std::string_view path);

[[nodiscard]] std::string render_json(const std::vector<MetricsGroup>& groups);
// `device` is the label value every sample carries.
[[nodiscard]] std::string render_prometheus(const std::vector<MetricsGroup>& groups, std::string_view device);

// The help text of `counter` in the list `counter_list` ("" when unknown).
[[nodiscard]] std::string_view counter_help(std::string_view counter_list, std::string_view counter);

}  // namespace vnk::cli
