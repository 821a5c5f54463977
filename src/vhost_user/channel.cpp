#include "vhost_user/channel.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "base/byte_order.hpp"

namespace vnk::vhost_user {
namespace {

// Reads exactly out.size() bytes (no ancillary data expected).
bool read_exact(int sock, std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::recv(sock, out.data() + done, out.size() - done, MSG_WAITALL);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

std::expected<void, ProtocolError> read_message(int sock, Message& out) {
  out.fd_count = 0;
  for (UniqueFd& fd : out.fds) fd.reset();

  std::array<std::byte, kHeaderSize> raw{};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * kMaxFds)> control{};
  iovec iov{raw.data(), raw.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();

  ssize_t n = 0;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return std::unexpected(ProtocolError::io);

  // Take ownership of every fd first, so each error path below closes them.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (out.fd_count < kMaxFds) {
        out.fds[out.fd_count++].reset(fd);
      } else {
        UniqueFd drop(fd);  // cannot happen with our control buffer, but never leak
      }
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) return std::unexpected(ProtocolError::bad_fd_count);
  if (static_cast<std::size_t>(n) < kHeaderSize &&
      !read_exact(sock, std::span(raw).subspan(static_cast<std::size_t>(n))))
    return std::unexpected(ProtocolError::io);

  out.header.request = load_le<std::uint32_t>(raw.data());
  out.header.flags = load_le<std::uint32_t>(raw.data() + 4);
  out.header.size = load_le<std::uint32_t>(raw.data() + 8);
  if ((out.header.flags & kVersionMask) != kVersion) return std::unexpected(ProtocolError::bad_version);
  if (out.header.size > kMaxPayload) return std::unexpected(ProtocolError::bad_size);
  if (!read_exact(sock, std::span(out.storage).first(out.header.size))) return std::unexpected(ProtocolError::io);
  return {};
}

std::expected<void, ProtocolError> write_message(int sock, const Header& header, std::span<const std::byte> payload,
                                                 std::span<const int> fds) {
  if (payload.size() > kMaxPayload || fds.size() > kMaxFds) return std::unexpected(ProtocolError::bad_size);
  std::array<std::byte, kHeaderSize> raw{};
  store_le<std::uint32_t>(raw.data(), header.request);
  store_le<std::uint32_t>(raw.data() + 4, header.flags);
  store_le<std::uint32_t>(raw.data() + 8, static_cast<std::uint32_t>(payload.size()));
  std::array<iovec, 2> iov{iovec{raw.data(), raw.size()},
                           iovec{const_cast<std::byte*>(payload.data()), payload.size()}};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * kMaxFds)> control{};
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = payload.empty() ? 1 : 2;
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  const std::size_t total = raw.size() + payload.size();
  ssize_t n = 0;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  // Messages are tiny next to a socket buffer; a short write means the peer
  // is gone or stuck, and either way the session is over.
  if (n != static_cast<ssize_t>(total)) return std::unexpected(ProtocolError::io);
  return {};
}

std::expected<void, ProtocolError> write_reply(int sock, std::uint32_t request, std::span<const std::byte> payload) {
  return write_message(sock, Header{request, kVersion | kFlagReply, 0}, payload);
}

}  // namespace vnk::vhost_user
