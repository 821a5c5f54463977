#include "usernet/raw_icmp.hpp"

#include <linux/icmp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>

#include "base/byte_order.hpp"
#include "base/epoll_ops.hpp"
#include "memory/iovec_ops.hpp"
#include "packet/headers.hpp"
#include "packet/icmp.hpp"

namespace vnk::usernet {

using namespace packet;

std::uint16_t checksum_adjust(std::uint16_t sum, std::uint16_t old_word, std::uint16_t new_word) noexcept {
  std::uint32_t s = static_cast<std::uint16_t>(~sum) + static_cast<std::uint32_t>(static_cast<std::uint16_t>(~old_word)) +
                    new_word;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<std::uint16_t>(~s);
}

bool RawIcmp::open(int epoll_fd, std::uint64_t tag) {
  UniqueFd s(::socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP));
  if (!s.valid()) return false;
  // The kernel drops every type but echo reply before it reaches us.
  icmp_filter filter{~(1u << icmp_type::kEchoReply)};
  if (::setsockopt(s.get(), SOL_RAW, ICMP_FILTER, &filter, sizeof filter) != 0) return false;
  if (!epoll_add(epoll_fd, s.get(), EPOLLIN, tag)) return false;
  packet_.resize(65535);
  sock_ = std::move(s);
  return true;
}

bool RawIcmp::send(const SocketAddress& dst, std::uint16_t id, std::span<const iovec> message, std::size_t length) {
  std::array<std::byte, kIcmpHeaderSize> h{};
  if (length < h.size() || iov_read(message, 0, h) != h.size()) return false;
  const auto guest_id = load_be<std::uint16_t>(h.data() + 4);
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

}  // namespace vnk::usernet
