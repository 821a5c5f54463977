#include "usernet/raw_icmp.hpp"

#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>

#include "base/byte_order.hpp"
#include "base/epoll_ops.hpp"
#include "memory/iovec_ops.hpp"
#include "packet/headers.hpp"
#include "packet/icmp.hpp"
#include "packet/icmpv6.hpp"

namespace vnk::usernet {

using namespace packet;

std::uint16_t checksum_adjust(std::uint16_t sum, std::uint16_t old_word, std::uint16_t new_word) noexcept {
  std::uint32_t s = static_cast<std::uint16_t>(~sum) + static_cast<std::uint32_t>(static_cast<std::uint16_t>(~old_word)) +
                    new_word;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(~s);
}

bool RawIcmp::open(int family, int epoll_fd, std::uint64_t tag) {
  const bool v6 = family == AF_INET6;
  UniqueFd s(::socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}));
  if (!s.valid()) return false;
  // The kernel drops every type but echo reply before it reaches us.
  if (v6) {
    icmp6_filter filter{};
    ICMP6_FILTER_SETBLOCKALL(&filter);
    ICMP6_FILTER_SETPASS(icmpv6_type::kEchoReply, &filter);
    if (::setsockopt(s.get(), IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) != 0) return false;
  } else {
    icmp_filter filter{~(1u << icmp_type::kEchoReply)};
    if (::setsockopt(s.get(), SOL_RAW, ICMP_FILTER, &filter, sizeof filter) != 0) return false;
  }
  family_ = family;
  if (!epoll_add(epoll_fd, s.get(), EPOLLIN, tag)) return false;
  packet_.resize(65535);
  sock_ = std::move(s);
  return true;
}

bool RawIcmp::send(const SocketAddress& dst, std::uint16_t id, std::span<const iovec> message, std::size_t length) {
  std::array<std::byte, kIcmpHeaderSize> h{};
  if (length < h.size() || iov_read(message, 0, h) != h.size()) return false;
  const auto guest_id = load_be<std::uint16_t>(h.data() + 4);
  // (ICMPv6: the kernel sums the message over its pseudo-header anyway.)
  store_be<std::uint16_t>(h.data() + 2, checksum_adjust(load_be<std::uint16_t>(h.data() + 2), guest_id, id));
  store_be<std::uint16_t>(h.data() + 4, id);
  std::array<iovec, 65> iov;  // our header, then the guest's data in place
  iov[0] = iovec{h.data(), h.size()};
  const std::size_t n = iov_slice(message, h.size(), length - h.size(), std::span(iov).subspan(1));
  msghdr m{};
  m.msg_name = const_cast<sockaddr*>(dst.get());
  m.msg_namelen = dst.length();
  m.msg_iov = iov.data();
  m.msg_iovlen = n + 1;
  return ::sendmsg(sock_.get(), &m, MSG_DONTWAIT | MSG_NOSIGNAL) == static_cast<ssize_t>(length);
}

std::optional<RawIcmp::Reply> RawIcmp::receive(std::uint64_t& ignored) {
  if (family_ == AF_INET6) return receive_v6(ignored);
  for (;;) {
    const ssize_t n = ::recv(sock_.get(), packet_.data(), packet_.size(), MSG_DONTWAIT);
    if (n < 0) return std::nullopt;  // EAGAIN: nothing more; other errors are not ours to report
    // A raw IPv4 socket receives the IP header too; the kernel has checked
    // it, but this is still input from the network: parse it like any other.
    auto ip = parse_ipv4(std::span(packet_).first(static_cast<std::size_t>(n)));
    if (!ip || ip->protocol != ip_proto::kIcmp) {
      ++ignored;
      continue;
    }
    auto echo = parse_icmp_echo(*ip);
    if (!echo || echo->type != icmp_type::kEchoReply || echo->code != 0) {
      ++ignored;
      continue;
    }
    const auto offset = static_cast<std::size_t>(ip->payload.data() - packet_.data());
    return Reply{ip->src, echo->id, std::span(packet_).subspan(offset, ip->payload.size())};
  }
}

std::optional<RawIcmp::Reply> RawIcmp::receive_v6(std::uint64_t& ignored) {
  for (;;) {
    SocketAddress from;
    socklen_t len = SocketAddress::capacity();
    const ssize_t n = ::recvfrom(sock_.get(), packet_.data(), packet_.size(), MSG_DONTWAIT, from.buffer(), &len);
    if (n < 0) return std::nullopt;
    const auto message = std::span(packet_).first(static_cast<std::size_t>(n));
    if (message.size() < kIcmpHeaderSize || static_cast<std::uint8_t>(message[0]) != icmpv6_type::kEchoReply ||
        message[1] != std::byte{0} || from.family() != AF_INET6) {
      ++ignored;
      continue;
    }
    return Reply{from.address(), load_be<std::uint16_t>(message.data() + 4), message};
  }
}

}  // namespace vnk::usernet
