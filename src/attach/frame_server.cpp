#include "attach/frame_server.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
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

enum Tag : std::uint64_t { kListener = 1, kBackend, kSignal, kMetrics, kRetry, kSharedDgram, kAux, kPeer0 = 16 /* + slot */ };

void arm(int timer, std::chrono::milliseconds every, bool repeat) {
  itimerspec its{};
  its.it_value.tv_sec = every.count() / 1000;
  its.it_value.tv_nsec = static_cast<long>(every.count() % 1000) * 1'000'000;
  if (repeat) its.it_interval = its.it_value;
  ::timerfd_settime(timer, 0, &its, nullptr);
}

}  // namespace

FrameServer::FrameServer(FrameServerOptions opts, net::NetBackend& backend, net::FrameInterceptor* interceptor)
    : opts_(std::move(opts)), backend_(backend), interceptor_(interceptor) {
  if (opts_.guests > 1 && multi_peer()) {
    backend::SwitchOptions so;
    so.guest_to_guest = !opts_.isolate_guests;
    so.max_ports = opts_.guests;
    so.max_frame = opts_.max_frame;
    switch_ = std::make_unique<backend::VirtualSwitch>(backend_, interceptor_, so);
  }
}

bool FrameServer::multi_peer() const noexcept {
  using Mode = FrameServerOptions::Mode;
  return opts_.mode == Mode::stream_listen || opts_.mode == Mode::seqpacket_listen || opts_.mode == Mode::dgram;
}

std::size_t FrameServer::peers() const noexcept {
  return static_cast<std::size_t>(std::ranges::count_if(peers_, [](const Peer& p) { return p.link != nullptr; }));
}

FrameServer::~FrameServer() {
  if (bound_path_ && opts_.remove_socket_on_exit) ::unlink(opts_.path.c_str());
}

std::string FrameServer::describe() const {
  const std::string guests =
      opts_.guests > 1 ? fmt::format(", up to {} guests{}", opts_.guests, opts_.isolate_guests ? " (isolated)" : "") : "";
  switch (opts_.mode) {
    case FrameServerOptions::Mode::stream_listen:
      return fmt::format("QEMU stream framing, listening on {}{}", opts_.path, guests);
    case FrameServerOptions::Mode::seqpacket_listen:
      return fmt::format("one frame per packet, listening on {}{}", opts_.path, guests);
    case FrameServerOptions::Mode::stream_connect: return fmt::format("QEMU stream framing, connecting to {}", opts_.path);
    case FrameServerOptions::Mode::dgram: return fmt::format("one frame per datagram on {}{}", opts_.path, guests);
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
  if (opts_.aux_fd >= 0) ok = ok && epoll_add(epoll_.get(), opts_.aux_fd, EPOLLIN, kAux);
  if (!ok) return std::unexpected(fmt::format("epoll: {}", std::strerror(errno)));
  if (opts_.on_metrics) arm(metrics_timer_.get(), opts_.metrics_interval, true);

  using Mode = FrameServerOptions::Mode;
  switch (opts_.mode) {
    case Mode::stream_listen:
    case Mode::seqpacket_listen: {
      auto l = listen_unix(opts_.path, opts_.mode == Mode::stream_listen ? SOCK_STREAM : SOCK_SEQPACKET);
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
      if (switch_) {
        // Several senders: the server reads and sorts by address.
        shared_dgram_ = std::move(*s);
        dgram_in_.resize(SocketLink::kDatagramBatch * StreamDeframer::kMaxFrame);
        if (!epoll_add(epoll_.get(), shared_dgram_.get(), EPOLLIN, kSharedDgram))
          return std::unexpected(fmt::format("epoll: {}", std::strerror(errno)));
        return {};
      }
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

FrameServer::Peer* FrameServer::start_link(UniqueFd sock, SocketLink::Framing framing, bool connected, bool reads) {
  const int fd = sock.get();
  std::size_t slot = 0;
  while (slot < peers_.size() && peers_[slot].link) ++slot;
  if (slot == peers_.size()) peers_.emplace_back();
  Peer& p = peers_[slot];
  p = Peer{};
  p.port = switch_ ? switch_->attach() : nullptr;
  if (switch_ && p.port == nullptr) return nullptr;
  // With the switch, MMDS sits in front of the uplink (the switch's), so
  // its answers reach the guest that asked.
  net::NetBackend& backend = p.port ? static_cast<net::NetBackend&>(*p.port) : backend_;
  p.link = std::make_unique<SocketLink>(std::move(sock), framing, connected, backend, p.port ? nullptr : interceptor_,
                                        link_counters_);
  p.watching_write = false;
  p.reads = reads;
  bool ok = epoll_add(epoll_.get(), fd, reads ? EPOLLIN : 0u, kPeer0 + slot);
  // The backend's readiness matters only while a peer takes its frames.
  if (ok && !backend_watched_) {
    ok = backend_watched_ = epoll_add(epoll_.get(), backend_.rx_fd(), EPOLLIN, kBackend);
    backend_polled_ = true;
  }
  if (!ok) {
    end_link(slot);
    return nullptr;
  }
  counters_.connections.add();
  return &p;
}

void FrameServer::end_link(std::size_t slot) {
  Peer& p = peers_[slot];
  if (!p.link) return;
  epoll_del(epoll_.get(), p.link->fd());
  p.link.reset();
  if (p.port) switch_->detach(p.port);
  p.port = nullptr;
  if (backend_watched_ && peers() == 0) {
    epoll_del(epoll_.get(), backend_.rx_fd());
    backend_watched_ = false;
  }
}

void FrameServer::watch_peer(Peer& p, std::size_t slot) {
  if (!p.link || p.link->wants_write() == p.watching_write) return;
  p.watching_write = p.link->wants_write();
  epoll_mod(epoll_.get(), p.link->fd(), (p.reads ? EPOLLIN : 0u) | (p.watching_write ? EPOLLOUT : 0u), kPeer0 + slot);
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

void FrameServer::accept_peer() {
  UniqueFd c(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (!c.valid()) return;
  if (peers() >= opts_.guests) {
    counters_.refused_full.add();
    if (opts_.guests == 1)
      log::warn("vnetkit serve: a second peer connected while one is served; closing it (--guests N serves several)");
    else
      log::warn("vnetkit serve: a peer connected while {} guests are attached (--guests); closing it", opts_.guests);
    return;
  }
  const auto framing = opts_.mode == FrameServerOptions::Mode::stream_listen ? SocketLink::Framing::stream
                                                                             : SocketLink::Framing::datagram;
  if (start_link(std::move(c), framing, true))
    log::info("vnetkit serve: peer connected ({} attached)", peers());
}

FrameServer::Peer* FrameServer::sender(const sockaddr_storage& address, socklen_t len) {
  for (Peer& p : peers_)
    if (p.link && !p.reads && p.address_len == len && std::memcmp(&p.address, &address, len) == 0) return &p;
  // A new sender: a place of its own, or that of one silent for kDgramIdle.
  const auto now = std::chrono::steady_clock::now();
  if (peers() >= opts_.guests) {
    auto idle = std::ranges::find_if(peers_, [&](const Peer& p) { return p.link && now - p.last_heard > kDgramIdle; });
    if (idle == peers_.end()) {
      counters_.refused_full.add();
      return nullptr;
    }
    log::info("vnetkit serve: a dgram peer silent for {} s gives its place to a new one", kDgramIdle.count());
    end_link(static_cast<std::size_t>(idle - peers_.begin()));
  }
  // Its link sends through its own descriptor of the shared socket (EPOLLOUT
  // is watched per peer); only the server reads.
  UniqueFd own(::fcntl(shared_dgram_.get(), F_DUPFD_CLOEXEC, 0));
  if (!own.valid()) return nullptr;
  Peer* p = start_link(std::move(own), SocketLink::Framing::datagram, false, /*reads=*/false);
  if (p == nullptr) return nullptr;
  p->address = address;
  p->address_len = len;
  p->link->set_peer(address, len);
  log::info("vnetkit serve: a new dgram peer ({} attached)", peers());
  return p;
}

void FrameServer::read_shared_dgram() {
  constexpr std::size_t kBatch = SocketLink::kDatagramBatch;
  constexpr unsigned kRounds = 4;  // at most 64 datagrams per turn
  std::array<mmsghdr, kBatch> msgs{};
  std::array<iovec, kBatch> iov{};
  std::array<sockaddr_storage, kBatch> from{};
  for (unsigned round = 0; round < kRounds; ++round) {
    for (std::size_t k = 0; k < kBatch; ++k) {
      iov[k] = iovec{dgram_in_.data() + k * StreamDeframer::kMaxFrame, StreamDeframer::kMaxFrame};
      msgs[k] = mmsghdr{};
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
      msgs[k].msg_hdr.msg_name = &from[k];
      msgs[k].msg_hdr.msg_namelen = sizeof from[k];
    }
    const int n = ::recvmmsg(shared_dgram_.get(), msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) break;
    const auto now = std::chrono::steady_clock::now();
    for (int k = 0; k < n; ++k) {
      const mmsghdr& m = msgs[static_cast<std::size_t>(k)];
      if (m.msg_hdr.msg_namelen <= sizeof(sa_family_t)) {
        counters_.dgram_unnamed.add();
        continue;
      }
      Peer* p = sender(from[static_cast<std::size_t>(k)], m.msg_hdr.msg_namelen);
      if (p == nullptr) continue;
      p->last_heard = now;
      if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        link_counters_.drop_runt.add();  // (oversize: no Ethernet frame is this long)
        continue;
      }
      p->link->deliver_frame(std::span(dgram_in_).subspan(static_cast<std::size_t>(k) * StreamDeframer::kMaxFrame, m.msg_len));
    }
    backend_.flush_tx();
    if (static_cast<std::size_t>(n) < kBatch) break;
  }
}

bool FrameServer::serve_turn(std::size_t slot, bool backend_ready) {
  Peer& p = peers_[slot];
  if (!p.link) return false;
  bool more = p.link->to_peer(backend_ready);
  more |= p.link->pending() && !p.link->wants_write();
  if (!p.link->closed()) {
    watch_peer(p, slot);
    return more;
  }
  end_link(slot);
  log::info("vnetkit serve: peer disconnected ({} attached)", peers());
  using Mode = FrameServerOptions::Mode;
  if (opts_.mode == Mode::fd) {
    finished_ = true;
  } else if (opts_.max_connections != 0 && counters_.connections.get() >= opts_.max_connections) {
    finished_ = peers() == 0;  // the last of them has left
  } else if (opts_.mode == Mode::stream_connect) {
    arm(retry_timer_.get(), std::chrono::milliseconds(200), false);
  }
  return false;
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
    std::array<epoll_event, 32> events{};
    const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), more ? 0 : -1);
    if (n < 0 && errno != EINTR) return std::unexpected(fmt::format("epoll_wait: {}", std::strerror(errno)));
    more = false;
    bool backend_ready = false;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t tag = events[i].data.u64;
      if (tag >= kPeer0) {
        // Peer → backend: one turn of at most SocketLink::kBudget frames.
        const std::size_t slot = tag - kPeer0;
        if (slot < peers_.size() && peers_[slot].link && peers_[slot].reads) more |= peers_[slot].link->from_peer();
        continue;
      }
      switch (tag) {
        case kListener: accept_peer(); break;
        case kSharedDgram: read_shared_dgram(); break;
        case kBackend: backend_ready = true; break;
        case kRetry: {
          std::uint64_t expirations = 0;
          (void)!::read(retry_timer_.get(), &expirations, sizeof expirations);
          if (peers() == 0) try_connect();
          break;
        }
        case kMetrics: {
          std::uint64_t expirations = 0;
          (void)!::read(metrics_timer_.get(), &expirations, sizeof expirations);
          if (opts_.on_metrics) opts_.on_metrics();
          break;
        }
        case kAux:
          if (opts_.on_aux) opts_.on_aux();
          break;
        case kSignal: {
          signalfd_siginfo si{};
          bool stop = false;
          while (::read(opts_.signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM) stop = true;
            else if (si.ssi_signo != SIGUSR1 && si.ssi_signo != SIGUSR2 && opts_.on_signal)
              opts_.on_signal(static_cast<int>(si.ssi_signo));
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
    // Backend → peers: every peer gets a turn, each within its budget.
    for (std::size_t slot = 0; slot < peers_.size(); ++slot) more |= serve_turn(slot, backend_ready);
    if (finished_) return finish();
    // The backend's rx_fd is level-triggered and stays readable while host
    // data waits: poll it only while some peer's socket takes frames, or
    // the loop would spin while every peer's socket is full (EPOLLOUT wakes
    // us when one drains) or no peer has said where frames go yet.
    const bool want = std::ranges::any_of(
        peers_, [](const Peer& p) { return p.link && !p.link->wants_write() && p.link->can_send(); });
    if (backend_watched_ && want != backend_polled_) {
      epoll_mod(epoll_.get(), backend_.rx_fd(), want ? EPOLLIN : 0u, kBackend);
      backend_polled_ = want;
    }
  }
}

}  // namespace vnk::attach
