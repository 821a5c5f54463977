#include "cli/metrics_text.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace vnk::cli {

namespace {

struct CounterHelp {
  std::string_view list, counter, help;
};
constexpr CounterHelp kCounterHelp[] = {
#include "counter_help.inc"
};

// Label values escape \, " and newline; HELP text escapes \ and newline.
std::string escape(std::string_view text, bool quote) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quote) out += "\\\"";
    else out += c;
  }
  return out;
}

// Metric names are [a-zA-Z_:][a-zA-Z0-9_:]*; ours are built from C++
// identifiers, but a group name comes from a string: keep it to that.
std::string metric_name(std::string_view group, std::string_view counter) {
  std::string name = fmt::format("vnetkit_{}_{}", group, counter);
  for (char& c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
  return name;
}

}  // namespace

std::string_view counter_help(std::string_view counter_list, std::string_view counter) {
  for (const CounterHelp& h : kCounterHelp)
    if (h.list == counter_list && h.counter == counter) return h.help;
  return {};
}

MetricsFormat metrics_format_for(std::string_view format, std::string_view path) {
  if (format == "prometheus") return MetricsFormat::prometheus;
  if (format == "json") return MetricsFormat::json;
  return path.ends_with(".prom") ? MetricsFormat::prometheus : MetricsFormat::json;
}

std::string render_json(const std::vector<MetricsGroup>& groups) {
  nlohmann::ordered_json doc;
  for (const MetricsGroup& g : groups) {
    nlohmann::ordered_json& section = doc[g.name];
    section = nlohmann::ordered_json::object();
    g.visit([&](std::string_view name, std::uint64_t value) { section[std::string(name)] = value; });
  }
  return doc.dump(2) + "\n";
}

std::string render_prometheus(const std::vector<MetricsGroup>& groups, std::string_view device) {
  const std::string label = fmt::format("{{device=\"{}\"}}", escape(device, true));
  std::string out;
  out.reserve(32 * 1024);
  fmt::format_to(std::back_inserter(out),
                 "# HELP vnetkit_build_info The vnetkit version serving these metrics.\n"
                 "# TYPE vnetkit_build_info gauge\n"
                 "vnetkit_build_info{{device=\"{}\",version=\"{}\"}} 1\n",
                 escape(device, true), VNETKIT_VERSION);
  for (const MetricsGroup& g : groups) {
    g.visit([&](std::string_view counter, std::uint64_t value) {
      const auto gauge = std::ranges::find(g.gauges, counter, &MetricsGroup::Gauge::name);
      const bool is_gauge = gauge != g.gauges.end();
      const std::string name = metric_name(g.name, counter) + (is_gauge ? "" : "_total");
      std::string_view help = is_gauge ? gauge->help : counter_help(g.counter_list, counter);
      const std::string fallback = fmt::format("{} of the {} group", counter, g.name);
      if (help.empty()) help = fallback;
      fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n{}{} {}\n", name, escape(help, false), name,
                     is_gauge ? "gauge" : "counter", name, label, value);
    });
  }
  return out;
}

}  // namespace vnk::cli
