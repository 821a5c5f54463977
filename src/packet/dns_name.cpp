#include "packet/dns_name.hpp"

namespace vnk::packet {

std::size_t write_dns_name(std::span<std::byte> out, std::string_view name) {
  std::size_t n = 0;
  while (!name.empty()) {
    const std::size_t dot = name.find('.');
    const std::string_view label = name.substr(0, dot);
    if (label.empty() || label.size() > 63 || n + 1 + label.size() > out.size()) return 0;
    out[n++] = static_cast<std::byte>(label.size());
    for (char c : label) out[n++] = static_cast<std::byte>(c);
    name = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  }
  if (n == 0 || n + 1 > out.size() || n + 1 > 255) return 0;
  out[n++] = std::byte{0};
  return n;
}

}  // namespace vnk::packet
