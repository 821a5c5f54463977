#include "cli/stats_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>
#include <memory>
#include <thread>
#include <vector>

#include "cli/metrics_reader.hpp"

namespace vnk::cli {

namespace {

struct StatsArgs {
  std::string source;
  double interval_s = 1.0;
  bool watch = false;
  unsigned count = 0;  // --watch rounds (0: until interrupted)
};

// Where each kind of attachment counts the guest's traffic: frames and
// bytes from the guest, then to it.
struct TrafficCounters {
  std::string_view what;
  std::string_view frames_in, bytes_in, frames_out, bytes_out;
};
constexpr TrafficCounters kTraffic[] = {
    {"vhost-user device", "net.tx_packets", "net.tx_bytes", "net.rx_packets", "net.rx_bytes"},
    {"frame socket", "link.frames_from_peer", "link.bytes_from_peer", "link.frames_to_peer", "link.bytes_to_peer"},
    {"namespace TAP", "tap.frames_from_tap", "tap.bytes_from_tap", "tap.frames_to_tap", "tap.bytes_to_tap"},
};

// Counters whose name says something went wrong: these are listed by reason.
bool is_trouble(std::string_view name) {
  const auto dot = name.find('.');
  const std::string_view counter = dot == std::string_view::npos ? name : name.substr(dot + 1);
  for (std::string_view w : {"drop", "error", "refused", "malformed", "exhausted", "full", "bad_", "failed", "timeout",
                             "rejected", "truncated", "evicted", "out_of_range"})
    if (counter.find(w) != std::string_view::npos) return true;
  return false;
}

std::uint64_t get(const MetricsSample& s, std::string_view name) {
  const auto it = s.find(name);
  return it == s.end() ? 0 : it->second;
}

std::string human_bytes(double b) {
  constexpr std::string_view units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  std::size_t u = 0;
  while (b >= 1024 && u + 1 < std::size(units)) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} {}", b, units[u]) : fmt::format("{:.1f} {}", b, units[u]);
}

// Now and `before` (interval_s earlier): rates are the difference.
std::string report(const std::string& source, const MetricsSample& now, const MetricsSample* before, double interval_s) {
  auto rate = [&](std::string_view name) {
    if (before == nullptr) return 0.0;
    const std::uint64_t a = get(*before, name), b = get(now, name);
    return b >= a ? static_cast<double>(b - a) / interval_s : 0.0;  // a restart counts from zero
  };
  std::string out = fmt::format("vnetkit stats: {}{}\n", source,
                                before ? fmt::format(" (rates over {:.1f} s)", interval_s) : std::string{});
  for (const TrafficCounters& t : kTraffic) {
    if (!now.contains(t.frames_in)) continue;
    out += fmt::format("  {:<20} {:>14} {:>12} {:>12} {:>12}\n", t.what, "frames", "frames/s", "bytes", "Mbit/s");
    out += fmt::format("  {:<20} {:>14} {:>12.0f} {:>12} {:>12.1f}\n", "from the guest", get(now, t.frames_in),
                       rate(t.frames_in), human_bytes(static_cast<double>(get(now, t.bytes_in))),
                       rate(t.bytes_in) * 8 / 1e6);
    out += fmt::format("  {:<20} {:>14} {:>12.0f} {:>12} {:>12.1f}\n", "to the guest", get(now, t.frames_out),
                       rate(t.frames_out), human_bytes(static_cast<double>(get(now, t.bytes_out))),
                       rate(t.bytes_out) * 8 / 1e6);
  }
  std::vector<std::string> facts;
  if (now.contains("server.link_up")) facts.push_back(get(now, "server.link_up") ? "link up" : "link DOWN");
  if (now.contains("switch.guests_attached")) facts.push_back(fmt::format("{} guests attached", get(now, "switch.guests_attached")));
  if (now.contains("backend.tcp_flows_opened")) {
    const std::uint64_t opened = get(now, "backend.tcp_flows_opened"), closed = get(now, "backend.tcp_flows_closed");
    facts.push_back(fmt::format("TCP flows {} open ({} opened, {:.1f}/s)", opened >= closed ? opened - closed : 0, opened,
                                rate("backend.tcp_flows_opened")));
    facts.push_back(fmt::format("UDP flows opened {}", get(now, "backend.udp_flows_opened")));
    facts.push_back(fmt::format("DHCP leases given {}", get(now, "backend.dhcp_acks")));
  }
  if (!facts.empty()) {
    out += "  ";
    for (std::size_t i = 0; i < facts.size(); ++i) out += (i ? "; " : "") + facts[i];
    out += "\n";
  }
  std::vector<std::pair<std::string, std::uint64_t>> trouble;
  for (const auto& [name, value] : now)
    if (value > 0 && is_trouble(name)) trouble.emplace_back(name, value);
  std::ranges::sort(trouble, [](const auto& a, const auto& b) { return a.second > b.second; });
  if (trouble.empty()) {
    out += "  no drops or errors\n";
  } else {
    out += fmt::format("  {:<44} {:>14} {:>10}\n", "drops and errors, by reason", "since start", "per s");
    for (const auto& [name, value] : trouble) out += fmt::format("  {:<44} {:>14} {:>10.1f}\n", name, value, rate(name));
  }
  return out;
}

// A file rewritten in place can, rarely, be read half-written: try again.
std::expected<MetricsSample, std::string> read_retrying(const std::string& source) {
  auto s = read_metrics(source);
  for (int i = 0; !s && i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    s = read_metrics(source);
  }
  return s;
}

int run_stats(const StatsArgs& a) {
  auto first = read_retrying(a.source);
  if (!first) {
    fmt::print(stderr, "vnetkit stats: {}\n", first.error());
    return 1;
  }
  const auto interval = std::chrono::duration<double>(a.interval_s);
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  MetricsSample before = std::move(*first);
  for (unsigned round = 0;; ++round) {
    std::this_thread::sleep_for(interval);
    auto now = read_retrying(a.source);
    if (!now) {
      fmt::print(stderr, "vnetkit stats: {}\n", now.error());
      return 1;
    }
    const std::string text = report(a.source, *now, &before, a.interval_s);
    // --watch on a terminal redraws in place; to a file or pipe it appends.
    fmt::print("{}{}", a.watch && tty ? "\x1b[H\x1b[2J" : (round > 0 ? "\n" : ""), text);
    std::fflush(stdout);
    if (!a.watch || (a.count != 0 && round + 1 >= a.count)) return 0;
    before = std::move(*now);
  }
}

}  // namespace

void add_stats_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<StatsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "stats", "Show a running vnetkit's traffic, rates, flows and drops by reason, from its metrics");
  cmd->add_option("source", args->source,
                  "A --metrics file (JSON or .prom), or a --metrics-listen endpoint: HOST:PORT or http://HOST:PORT/metrics")
      ->required();
  cmd->add_flag("-w,--watch", args->watch, "Keep showing, every --interval, until interrupted");
  cmd->add_option("-i,--interval", args->interval_s, "Seconds between the two samples rates come from")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("-n,--count", args->count, "With --watch: stop after this many reports (0: never)")->capture_default_str();
  cmd->footer(
      "Takes two samples --interval apart and prints the traffic both ways (frames, bytes, rates), the link, guests "
      "and flows, and every drop and error counter that is not zero, largest first. Exit status 1 when the source "
      "cannot be read.");
  cmd->callback([args, &exit_code] { exit_code = run_stats(*args); });
}

}  // namespace vnk::cli
