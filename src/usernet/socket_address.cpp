#include "usernet/socket_address.hpp"

#include <arpa/inet.h>

#include <cstring>
#include <string>

namespace vnk::usernet {

SocketAddress::SocketAddress(const packet::IpAddress& address, std::uint16_t port) noexcept {
  if (address.is_v4()) {
    sa_.v4.sin_family = AF_INET;
    sa_.v4.sin_addr.s_addr = htonl(address.ipv4().value);
    sa_.v4.sin_port = htons(port);
  } else {
    sa_.v6.sin6_family = AF_INET6;
    std::memcpy(&sa_.v6.sin6_addr, address.bytes.data(), 16);
    sa_.v6.sin6_port = htons(port);
  }
}

packet::IpAddress SocketAddress::address() const noexcept {
  if (family() == AF_INET) return packet::Ipv4Address{ntohl(sa_.v4.sin_addr.s_addr)};
  packet::IpAddress a;
  if (family() == AF_INET6) std::memcpy(a.bytes.data(), &sa_.v6.sin6_addr, 16);
  return a;
}

std::uint16_t SocketAddress::port() const noexcept {
  if (family() == AF_INET) return ntohs(sa_.v4.sin_port);
  if (family() == AF_INET6) return ntohs(sa_.v6.sin6_port);
  return 0;
}

std::string SocketAddress::to_string() const { return address().to_uri_host() + ":" + std::to_string(port()); }

}  // namespace vnk::usernet
