// ICMP or ICMPv6 echo through one raw socket per family, for hosts that do
// not permit ping sockets (a closed net.ipv4.ping_group_range: the default in a new network
// namespace, in most containers, and on Debian 12, whose systemd leaves it closed)
// while the process holds CAP_NET_RAW (root, root in a container, or the
// vnetkit-serve@ unit's ambient capability).
//
// A ping socket gives each flow its own identifier and only its own
// replies. A raw socket sees every ICMP message the host receives, so here
// usernet picks each flow's identifier itself, the socket's filter
// (ICMP_FILTER, ICMP6_FILTER) passes only echo replies, and DatagramFlows
// hands the guest a reply only when its identifier and source match a live
// flow; everything else the socket sees is counted and dropped. An IPv4 raw
// socket receives the IP header with each message, an IPv6 one the message
// alone (the source comes with recvfrom), and the kernel sums ICMPv6 itself.
#pragma once

#include <netinet/in.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/unique_fd.hpp"
#include "packet/ip_address.hpp"

#include "usernet/socket_address.hpp"

namespace vnk::usernet {

class RawIcmp {
 public:
  // Opens the socket of `family` (AF_INET, AF_INET6) and adds it to
  // `epoll_fd` with `tag`; false (errno set) when this process may not.
  bool open(int family, int epoll_fd, std::uint64_t tag);
  [[nodiscard]] bool valid() const noexcept { return sock_.valid(); }

  // Sends the guest's echo request (`length` bytes of ICMP message in
  // `message`, in guest memory) to `dst` with the identifier `id` in place
  // of the guest's. Its 8-byte header is read once, here, into host memory.
  bool send(const SocketAddress& dst, std::uint16_t id, std::span<const iovec> message, std::size_t length);

  struct Reply {
    packet::IpAddress src;
    std::uint16_t id = 0;
    std::span<std::byte> message;  // the whole ICMP message, in this object's buffer
  };
  // The next echo reply the socket holds; nullopt when none waits. Anything
  // that is not a well-formed echo reply is skipped and counted in `ignored`.
  std::optional<Reply> receive(std::uint64_t& ignored);

 private:
  std::optional<Reply> receive_v6(std::uint64_t& ignored);
  UniqueFd sock_;
  int family_ = AF_INET;
  std::vector<std::byte> packet_;  // one packet, allocated at open()
};

// RFC 1624 (eqn. 3): the checksum after one 16-bit word of the summed data
// changed from `old_word` to `new_word`.
[[nodiscard]] std::uint16_t checksum_adjust(std::uint16_t sum, std::uint16_t old_word, std::uint16_t new_word) noexcept;

}  // namespace vnk::usernet
