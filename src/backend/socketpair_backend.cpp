#include "backend/socketpair_backend.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/log.hpp"
#include "memory/iovec_ops.hpp"

namespace vnk::backend {

std::expected<std::unique_ptr<SocketpairBackend>, std::string> SocketpairBackend::create(UniqueFd fd) {
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &len) != 0)
    return std::unexpected(fmt::format("fd {} is not a socket: {}", fd.get(), std::strerror(errno)));
  if (type != SOCK_DGRAM && type != SOCK_SEQPACKET)
    return std::unexpected(fmt::format("fd {} is not a SOCK_DGRAM or SOCK_SEQPACKET socket", fd.get()));
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    return std::unexpected(fmt::format("cannot make fd {} nonblocking: {}", fd.get(), std::strerror(errno)));
  // Room for a few maximum-size frames; the kernel caps this at wmem_max.
  const int buf = 4 << 20;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  return std::unique_ptr<SocketpairBackend>(new SocketpairBackend(std::move(fd)));
}

net::TxResult SocketpairBackend::transmit(const net::TxFrame& frame) {
  msghdr msg{};
  msg.msg_iov = const_cast<iovec*>(frame.data.data());  // sendmsg does not write through it
  msg.msg_iovlen = frame.data.size();
  const ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n >= 0) return net::TxResult::sent;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
    counters_.tx_would_block.add();
  } else if (counters_.tx_errors.add() == 0) {
    log::warn("socketpair backend: sendmsg failed: {} (further failures only counted)", std::strerror(errno));
  }
  return net::TxResult::dropped;
}

net::RxResult SocketpairBackend::receive(std::span<const iovec> buffer) {
  for (;;) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(buffer.data());
    msg.msg_iovlen = buffer.size();
    const ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
      if (errno == EINTR) continue;
      if (counters_.rx_errors.add() == 0)
        log::warn("socketpair backend: recvmsg failed: {} (further failures only counted)", std::strerror(errno));
      return {net::RxStatus::error};
    }
    const auto real = static_cast<std::size_t>(n);
    if (real < net::kEthernetHeaderSize) {
      counters_.rx_runts.add();
      continue;
    }
    net::RxResult r;
    r.status = net::RxStatus::frame;
    r.frame_len = real;
    r.written = std::min(real, iov_length(buffer));
    return r;
  }
}

}  // namespace vnk::backend
