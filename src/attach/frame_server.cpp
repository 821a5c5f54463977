#include "attach/frame_server.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <fmt/format.h>

#include "base/epoll_ops.hpp"
#include "base/log.hpp"
#include "base/unix_socket.hpp"

namespace vnk::attach {

namespace {

enum Tag : std::uint64_t { kListener = 1, kPeer, kBackend, kSignal, kMetrics, kRetry };

void arm(int timer, std::chrono::milliseconds every, bool repeat) {
  itimerspec its{};
  its.it_value.tv_sec = every.count() / 1000;
  its.it_value.tv_nsec = static_cast<long>(every.count() % 1000) * 1'000'000;
  if (repeat) its.it_interval = its.it_value;
  ::timerfd_settime(timer, 0, &its, nullptr);
}

}  // namespace

FrameServer::FrameServer(FrameServerOptions opts, net::NetBackend& backend, net::FrameInterceptor* interceptor)
    : opts_(std::move(opts)), backend_(backend), interceptor_(interceptor) {}

FrameServer::~FrameServer() {
  if (bound_path_ && opts_.remove_socket_on_exit) ::unlink(opts_.path.c_str());
}

std::string FrameServer::describe() const {
  switch (opts_.mode) {
    case FrameServerOptions::Mode::stream_listen: return fmt::format("QEMU stream framing, listening on {}", opts_.path);
    case FrameServerOptions::Mode::stream_connect: return fmt::format("QEMU stream framing, connecting to {}", opts_.path);
    case FrameServerOptions::Mode::dgram: return fmt::format("one frame per datagram on {}", opts_.path);
    case FrameServerOptions::Mode::fd: return fmt::format("inherited socket fd {}", opts_.fd);
  }
  return {};
}

std::expected<void, std::string> FrameServer::open() {
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  retry_timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  metrics_timer_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!epoll_.valid() || !retry_timer_.valid() || !metrics_timer_.valid())
    return std::unexpected(fmt::format("epoll/timerfd: {}", std::strerror(errno)));
  bool ok = epoll_add(epoll_.get(), retry_timer_.get(), EPOLLIN, kRetry) &&
            epoll_add(epoll_.get(), metrics_timer_.get(), EPOLLIN, kMetrics);
  if (opts_.signal_fd >= 0) ok = ok && epoll_add(epoll_.get(), opts_.signal_fd, EPOLLIN, kSignal);
  if (!ok) return std::unexpected(fmt::format("epoll: {}", std::strerror(errno)));
  if (opts_.on_metrics) arm(metrics_timer_.get(), opts_.metrics_interval, true);

  using Mode = FrameServerOptions::Mode;
  switch (opts_.mode) {
    case Mode::stream_listen: {
      auto l = listen_unix(opts_.path);
      if (!l) return std::unexpected(l.error());
      listener_ = std::move(*l);
      bound_path_ = true;
      if (!epoll_add(epoll_.get(), listener_.get(), EPOLLIN, kListener))
        return std::unexpected(fmt::format("epoll: {}", std::strerror(errno)));
      return {};
    }
    case Mode::stream_connect: return {};  // run() connects, and again after every disconnect
    case Mode::dgram: {
      auto s = bind_unix_dgram(opts_.path);
      if (!s) return std::unexpected(s.error());
      bound_path_ = true;
      if (!start_link(std::move(*s), SocketLink::Framing::datagram, false))
        return std::unexpected(fmt::format("epoll: {}", std::strerror(errno)));
      return {};
    }
    case Mode::fd: {
      int type = 0;
      socklen_t len = sizeof type;
      if (::getsockopt(opts_.fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
        return std::unexpected(fmt::format("--fd {}: not an open socket ({})", opts_.fd, std::strerror(errno)));
      if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET)
        return std::unexpected(fmt::format("--fd {}: a stream, datagram or seqpacket socket is needed", opts_.fd));
      const int flags = ::fcntl(opts_.fd, F_GETFL);
      ::fcntl(opts_.fd, F_SETFL, flags | O_NONBLOCK);
      ::fcntl(opts_.fd, F_SETFD, FD_CLOEXEC);
      const auto framing = type == SOCK_STREAM ? SocketLink::Framing::stream : SocketLink::Framing::datagram;
      if (!start_link(UniqueFd(opts_.fd), framing, true))
        return std::unexpected(fmt::format("epoll: {}", std::strerror(errno)));
      return {};
    }
  }
  return {};
}

bool FrameServer::start_link(UniqueFd sock, SocketLink::Framing framing, bool connected) {
  const int fd = sock.get();
  link_ = std::make_unique<SocketLink>(std::move(sock), framing, connected, backend_, interceptor_, link_counters_);
  watching_write_ = false;
  // The backend's readiness matters only while a peer takes its frames.
  if (!epoll_add(epoll_.get(), fd, EPOLLIN, kPeer) || !epoll_add(epoll_.get(), backend_.rx_fd(), EPOLLIN, kBackend)) {
    epoll_del(epoll_.get(), fd);
    link_.reset();
    return false;
  }
  counters_.connections.add();
  return true;
}

void FrameServer::end_link() {
  if (!link_) return;
  epoll_del(epoll_.get(), link_->fd());
  epoll_del(epoll_.get(), backend_.rx_fd());
  link_.reset();
}

void FrameServer::watch_peer() {
  if (!link_ || link_->wants_write() == watching_write_) return;
  watching_write_ = link_->wants_write();
  epoll_mod(epoll_.get(), link_->fd(), EPOLLIN | (watching_write_ ? EPOLLOUT : 0u), kPeer);
}

bool FrameServer::try_connect() {
  auto c = try_connect_unix(opts_.path);
  if (!c || !c->valid()) {
    if (!c) log::warn("vnetkit serve: {}", c.error());
    counters_.connect_retries.add();
    arm(retry_timer_.get(), std::chrono::milliseconds(200), false);
    return false;
  }
  const int flags = ::fcntl(c->get(), F_GETFL);
  ::fcntl(c->get(), F_SETFL, flags | O_NONBLOCK);
  if (!start_link(std::move(*c), SocketLink::Framing::stream, true)) return false;
  log::info("vnetkit serve: connected to {}", opts_.path);
  return true;
}

std::expected<void, std::string> FrameServer::run() {
  using Mode = FrameServerOptions::Mode;
  const auto finish = [this]() -> std::expected<void, std::string> {
    if (opts_.on_metrics) opts_.on_metrics();  // the last counts
    return {};
  };
  if (opts_.mode == Mode::stream_connect) try_connect();
  bool more = false;  // work may be waiting without an event
  for (;;) {
    std::array<epoll_event, 8> events{};
    const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), more ? 0 : -1);
    if (n < 0 && errno != EINTR) return std::unexpected(fmt::format("epoll_wait: {}", std::strerror(errno)));
    more = false;
    bool backend_ready = false;
    for (int i = 0; i < n; ++i) {
      switch (events[i].data.u64) {
        case kListener: {
          UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
          if (!c.valid()) break;
          if (link_) {
            log::warn("vnetkit serve: a second peer connected while one is served; closing it");
            break;
          }
          if (start_link(std::move(c), SocketLink::Framing::stream, true)) log::info("vnetkit serve: peer connected");
          break;
        }
        case kPeer:
          if (link_) more |= link_->from_peer();
          break;
        case kBackend: backend_ready = true; break;
        case kRetry: {
          std::uint64_t expirations = 0;
          (void)!::read(retry_timer_.get(), &expirations, sizeof expirations);
          if (!link_) try_connect();
          break;
        }
        case kMetrics: {
          std::uint64_t expirations = 0;
          (void)!::read(metrics_timer_.get(), &expirations, sizeof expirations);
          if (opts_.on_metrics) opts_.on_metrics();
          break;
        }
        case kSignal: {
          signalfd_siginfo si{};
          bool stop = false;
          while (::read(opts_.signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) stop = true;
            else log::info("vnetkit serve: signal {}: there is no link state to change on a frame socket", si.ssi_signo);
          }
          if (stop) {
            log::info("vnetkit serve: stopping");
            return finish();
          }
          break;
        }
        default: break;
      }
    }
    if (link_) {
      more |= link_->to_peer(backend_ready);
      more |= link_->pending() && !link_->wants_write();
      if (link_->closed()) {
        log::info("vnetkit serve: peer disconnected");
        end_link();
        more = false;
        if (opts_.mode == Mode::fd ||
            (opts_.max_connections != 0 && counters_.connections.get() >= opts_.max_connections))
          return finish();
        if (opts_.mode == Mode::stream_connect) arm(retry_timer_.get(), std::chrono::milliseconds(200), false);
      } else {
        watch_peer();
      }
    }
  }
}

}  // namespace vnk::attach
