#include "cli/metrics_reader.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/unique_fd.hpp"

namespace vnk::cli {

namespace {

// The groups vnetkit exports (metrics_text.hpp); the longest that prefixes a
// Prometheus name is its group.
constexpr std::string_view kGroups[] = {"vhost_user", "metrics_http", "server", "switch", "backend",
                                        "link",       "mmds",         "net",    "tap"};

std::string from_prometheus_name(std::string_view name) {
  if (!name.starts_with("vnetkit_")) return std::string(name);
  name.remove_prefix(8);
  if (name.ends_with("_total")) name.remove_suffix(6);
  for (std::string_view g : kGroups)
    if (name.starts_with(g) && name.size() > g.size() && name[g.size()] == '_')
      return fmt::format("{}.{}", g, name.substr(g.size() + 1));
  return std::string(name);
}

std::expected<MetricsSample, std::string> parse_prometheus(std::string_view text) {
  MetricsSample out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    // name{labels} value [timestamp]
    const auto name_end = line.find_first_of("{ ");
    if (name_end == std::string_view::npos) return std::unexpected(fmt::format("line {}: no value", line_no));
    std::string_view rest = line.substr(name_end);
    if (rest.front() == '{') {
      // Label values are quoted and may hold } , or an escaped quote.
      std::size_t i = 1;
      bool quoted = false;
      for (; i < rest.size(); ++i) {
        if (quoted && rest[i] == '\\') ++i;
        else if (rest[i] == '"') quoted = !quoted;
        else if (!quoted && rest[i] == '}') break;
      }
      if (i >= rest.size()) return std::unexpected(fmt::format("line {}: unclosed labels", line_no));
      rest = rest.substr(i + 1);
    }
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    rest = rest.substr(0, rest.find(' '));
    double value = 0;
    if (rest.starts_with('+')) rest.remove_prefix(1);  // "+Inf" (from_chars takes no sign)
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec != std::errc{} || end != rest.data() + rest.size())
      return std::unexpected(fmt::format("line {}: '{}' is not a number", line_no, rest));
    const std::string name = from_prometheus_name(line.substr(0, name_end));
    // Counters are whole and non-negative; anything else (NaN, -1, 1e30,
    // +Inf) is clamped into range rather than converted out of it.
    constexpr double kMax = 18446744073709549568.0;  // the largest double below 2^64
    const std::uint64_t whole = !(value > 0) ? 0 : value >= kMax ? UINT64_MAX : static_cast<std::uint64_t>(value);
    if (name != "build_info") out[name] = whole;
  }
  return out;
}

std::expected<MetricsSample, std::string> parse_json(std::string_view text) {
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return std::unexpected("not a JSON object");
  MetricsSample out;
  for (const auto& [group, counters] : doc.items()) {
    if (!counters.is_object()) continue;
    for (const auto& [name, value] : counters.items())
      if (value.is_number_unsigned()) out[group + "." + name] = value.get<std::uint64_t>();
  }
  return out;
}

// A minimal HTTP/1.0 GET: the whole body, read until the server closes.
std::expected<std::string, std::string> http_get(std::string host, const std::string& port, const std::string& path) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return std::unexpected(fmt::format("{}: {}", host, ::gai_strerror(rc)));
  UniqueFd s;
  int err = ECONNREFUSED;
  for (addrinfo* ai = res; ai != nullptr && !s.valid(); ai = ai->ai_next) {
    UniqueFd c(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0));
    if (c.valid() && ::connect(c.get(), ai->ai_addr, ai->ai_addrlen) == 0) s = std::move(c);
    else err = errno;
  }
  ::freeaddrinfo(res);
  if (!s.valid()) return std::unexpected(std::strerror(err));
  const std::string request = fmt::format("GET {} HTTP/1.0\r\nHost: {}\r\nAccept: text/plain\r\n\r\n", path, host);
  if (::send(s.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size()))
    return std::unexpected(std::strerror(errno));
  std::string response;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::array<char, 16384> buf{};
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{s.get(), POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) return std::unexpected("no answer in 5 s");
    const ssize_t n = ::recv(s.get(), buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected(std::strerror(errno));
    if (n == 0) break;
    response.append(buf.data(), static_cast<std::size_t>(n));
    if (response.size() > (16u << 20)) return std::unexpected("answer larger than 16 MiB");
  }
  const auto head_end = response.find("\r\n\r\n");
  if (!response.starts_with("HTTP/1.") || head_end == std::string::npos) return std::unexpected("not an HTTP answer");
  const std::string status = response.substr(9, 3);
  if (status != "200") return std::unexpected(fmt::format("HTTP {}", response.substr(9, response.find('\r') - 9)));
  return response.substr(head_end + 4);
}

}  // namespace

std::expected<MetricsSample, std::string> parse_metrics(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') return parse_json(text);
  return parse_prometheus(text);
}

std::expected<MetricsSample, std::string> read_metrics(const std::string& source) {
  std::string text;
  std::string_view where = source;
  const bool url = where.starts_with("http://");
  if (url) where.remove_prefix(7);
  // HOST:PORT[/PATH] unless it names a file.
  const auto slash = where.find('/');
  const std::string_view authority = where.substr(0, slash);
  const auto colon = authority.rfind(':');
  const bool endpoint = url || (!std::ifstream(source).good() && colon != std::string_view::npos && colon + 1 < authority.size() &&
                                authority.substr(colon + 1).find_first_not_of("0123456789") == std::string_view::npos);
  if (endpoint) {
    if (colon == std::string_view::npos) return std::unexpected(fmt::format("{}: expected http://HOST:PORT/metrics", source));
    const std::string path = slash == std::string_view::npos ? "/metrics" : std::string(where.substr(slash));
    auto body = http_get(std::string(authority.substr(0, colon)), std::string(authority.substr(colon + 1)), path);
    if (!body) return std::unexpected(fmt::format("{}: {}", source, body.error()));
    text = std::move(*body);
  } else {
    std::ifstream in(source);
    if (!in) return std::unexpected(fmt::format("{}: {}", source, std::strerror(errno)));
    std::ostringstream all;
    all << in.rdbuf();
    text = all.str();
  }
  auto sample = parse_metrics(text);
  if (!sample) return std::unexpected(fmt::format("{}: {}", source, sample.error()));
  return sample;
}

}  // namespace vnk::cli
