// Reading metrics back, for `vnetkit stats`: a --metrics file (JSON or
// Prometheus text) or a --metrics-listen endpoint (HTTP GET /metrics).
// Either way the result is "group.counter" -> value, the names of the JSON
// document (Prometheus names are mapped back: vnetkit_net_tx_packets_total
// is net.tx_packets).
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <string>
#include <string_view>

namespace vnk::cli {

using MetricsSample = std::map<std::string, std::uint64_t, std::less<>>;

// JSON ({"group": {"counter": n}}) or Prometheus text, told apart by the
// first non-blank character. The error is a sentence for the user.
std::expected<MetricsSample, std::string> parse_metrics(std::string_view text);

// `source`: a file path, or http://HOST:PORT[/PATH], or HOST:PORT (then
// /metrics). Waits at most 5 s for an endpoint.
std::expected<MetricsSample, std::string> read_metrics(const std::string& source);

}  // namespace vnk::cli
