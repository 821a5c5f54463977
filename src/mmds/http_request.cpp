#include "mmds/http_request.hpp"

#include <charconv>

namespace vnk::mmds {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

HttpParse parse_http_request(std::string_view buf, HttpRequest& out) {
  const std::size_t end = buf.find("\r\n\r\n");
  if (end == std::string_view::npos) return HttpParse::incomplete;
  std::string_view head = buf.substr(0, end + 2);
  const std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/1."))
    return HttpParse::bad;
  out = HttpRequest{line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1), {}, {}};
  if (out.path.empty() || out.path.front() != '/') return HttpParse::bad;
  std::size_t body = 0;
  head.remove_prefix(eol + 2);
  while (!head.empty()) {
    const std::size_t e = head.find("\r\n");
    const std::string_view h = head.substr(0, e);
    head.remove_prefix(e + 2);
    const std::size_t colon = h.find(':');
    if (colon == std::string_view::npos) return HttpParse::bad;
    const std::string_view name = trim(h.substr(0, colon)), value = trim(h.substr(colon + 1));
    if (iequals(name, "X-metadata-token-ttl-seconds")) out.ttl = value;
    else if (iequals(name, "X-metadata-token")) out.token = value;
    else if (iequals(name, "Content-Length")) {
      const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), body);
      if (ec != std::errc{} || p != value.data() + value.size() || body > 4096) return HttpParse::bad;
    }
  }
  return buf.size() >= end + 4 + body ? HttpParse::complete : HttpParse::incomplete;
}

}  // namespace vnk::mmds
