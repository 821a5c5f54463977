#include "packet/ip_address.hpp"

namespace vnk::packet {

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    auto a = Ipv6Address::parse(text.substr(1, text.size() - 2));
    return a ? std::optional<IpAddress>(*a) : std::nullopt;
  }
  if (auto a = Ipv4Address::parse(text)) return IpAddress(*a);
  if (auto a = Ipv6Address::parse(text)) return IpAddress(*a);
  return std::nullopt;
}

std::string IpAddress::to_string() const { return is_v4() ? ipv4().to_string() : ipv6().to_string(); }

std::string IpAddress::to_uri_host() const { return is_v4() ? to_string() : "[" + to_string() + "]"; }

}  // namespace vnk::packet
