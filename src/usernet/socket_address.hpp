// A host socket's address of either family, in the form the socket calls
// take: the destination host_destination() chooses, a forward's listener,
// the peer a datagram came from. A guest flow's family and its host
// socket's family may differ (a guest's IPv6 query to the DNS address may
// reach an IPv4 resolver), so flows keep one of these beside their key.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>

#include "packet/ip_address.hpp"

namespace vnk::usernet {

class SocketAddress {
 public:
  SocketAddress() noexcept { sa_.v4.sin_family = AF_UNSPEC; }
  SocketAddress(const packet::IpAddress& address, std::uint16_t port) noexcept;

  [[nodiscard]] int family() const noexcept { return sa_.any.sa_family; }
  [[nodiscard]] socklen_t length() const noexcept {
    return family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  }
  [[nodiscard]] const sockaddr* get() const noexcept { return &sa_.any; }
  // For recvmsg()/accept() to fill: room for either family, length capacity().
  [[nodiscard]] sockaddr* buffer() noexcept { return &sa_.any; }
  static constexpr socklen_t capacity() noexcept { return sizeof(sockaddr_in6); }
  // IPv4-mapped for AF_INET; what an AF_INET6 socket reports as is.
  [[nodiscard]] packet::IpAddress address() const noexcept;
  [[nodiscard]] std::uint16_t port() const noexcept;
  // "a.b.c.d:port" or "[v6]:port".
  [[nodiscard]] std::string to_string() const;
  // Same family, address and port.
  friend bool operator==(const SocketAddress& a, const SocketAddress& b) noexcept {
    return a.family() == b.family() && a.port() == b.port() && a.address() == b.address();
  }

 private:
  union {
    sockaddr any;
    sockaddr_in v4;
    sockaddr_in6 v6;
  } sa_{};
};

}  // namespace vnk::usernet
