#include "vhost_user/server.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>

#include "base/epoll_ops.hpp"
#include "base/log.hpp"
#include "vhost_user/channel.hpp"
#include "base/unix_socket.hpp"

namespace vnk::vhost_user {

namespace {

// epoll_event.data.u64: what became ready.
enum Tag : std::uint64_t {
  kTagControl = 1,
  kTagBackend = 2,
  kTagSignal = 3,
  kTagTimer = 4,
  kTagAux = 5,
  kTagListener = 6,  // serve_many(); serve_one() watches the listener as kTagControl
  kTagKick0 = 16,  // + queue index
};

std::string errno_text(int err) { return std::strerror(err); }

// Requests after which the kick fds may have changed.
bool changes_kicks(Request r) {
  return r == Request::set_vring_kick || r == Request::get_vring_base || r == Request::reset_owner;
}

// What one control message from a frontend came to.
enum class Control {
  handled,        // answered; the session goes on
  kicks_changed,  // the same, and the kick fds may be others now
  closed,         // the frontend hung up (or timed out)
  error,          // malformed or refused: drop the frontend
};

// Reads one message from `sock`, has `session` handle it, and writes the
// reply. Fds the session did not take are closed here, whatever happened.
Control take_message(int sock, NetSession& session, Message& msg) {
  auto r = read_message(sock, msg);
  if (!r) {
    if (r.error() == ProtocolError::io) return Control::closed;
    log::warn("vhost-user: malformed message: {}", to_string(r.error()));
    return Control::error;
  }
  const Request req = msg.request();
  const std::uint32_t code = msg.header.request;
  auto reply = session.handle(msg);
  msg.fds = {};
  msg.fd_count = 0;
  if (!reply) return Control::error;
  if (*reply && !write_reply(sock, code, (*reply)->payload())) return Control::closed;
  return changes_kicks(req) ? Control::kicks_changed : Control::handled;
}

// Registers the session's kick eventfds with `ep` in place of those in
// `registered`, ring q tagged `tag0 + q` (after a request that may have
// changed them).
void sync_kick_fds(int ep, const NetSession& session, std::array<int, NetSession::kNumQueues>& registered,
                   std::uint64_t tag0) {
  for (std::uint16_t q = 0; q < NetSession::kNumQueues; ++q) {
    if (registered[q] >= 0) epoll_del(ep, registered[q]);
    registered[q] = session.kick_fd(q);
    if (registered[q] >= 0 && !epoll_add(ep, registered[q], EPOLLIN, tag0 + q)) {
      log::warn("vhost-user: kick fd of ring {} cannot be polled: {}", q, errno_text(errno));
      registered[q] = -1;
    }
  }
}

// Socket timeouts for a frontend: one that stalls mid-message or stops
// reading replies is dropped after `timeout` instead of holding the thread.
void set_io_timeout(int sock, std::chrono::milliseconds timeout) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  const timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
  ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

Server::Server(ServerOptions options, net::NetBackend& backend, net::FrameInterceptor* interceptor)
    : options_(std::move(options)), backend_(backend), interceptor_(interceptor) {
  if (options_.guests > 1 && !options_.connect) {
    backend::SwitchOptions so;
    so.guest_to_guest = !options_.isolate_guests;
    so.max_ports = options_.guests;
    so.max_frame = options_.max_frame;
    switch_ = std::make_unique<backend::VirtualSwitch>(backend_, interceptor_, so);
  }
}

Server::~Server() {
  if (listener_.valid() && options_.remove_socket_on_exit) ::unlink(options_.socket_path.c_str());
}

std::expected<void, std::string> Server::open() {
  epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) return std::unexpected("epoll_create1: " + errno_text(errno));
  if (options_.on_metrics) {
    timer_ = UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!timer_.valid()) return std::unexpected("timerfd_create: " + errno_text(errno));
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.metrics_interval).count();
    itimerspec its{};
    its.it_interval.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    its.it_interval.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    its.it_value = its.it_interval;
    ::timerfd_settime(timer_.get(), 0, &its, nullptr);
    epoll_add(epoll_.get(), timer_.get(), EPOLLIN, kTagTimer);
  }
  if (options_.signal_fd >= 0) epoll_add(epoll_.get(), options_.signal_fd, EPOLLIN, kTagSignal);
  if (options_.aux_fd >= 0 && !epoll_add(epoll_.get(), options_.aux_fd, EPOLLIN, kTagAux))
    return std::unexpected("epoll_ctl: " + errno_text(errno));
  if (!options_.connect) {
    auto l = listen_unix(options_.socket_path);
    if (!l) return std::unexpected(l.error());
    listener_ = std::move(*l);
  }
  return {};
}

void Server::write_metrics() {
  if (options_.on_metrics) options_.on_metrics();
}

void Server::on_timer() {
  std::uint64_t ticks = 0;
  [[maybe_unused]] const ssize_t n = ::read(timer_.get(), &ticks, sizeof ticks);
  write_metrics();
}

void Server::handle_signals(NetSession* session) {
  signalfd_siginfo si{};
  while (::read(options_.signal_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    switch (si.ssi_signo) {
      case SIGINT:
      case SIGTERM:
        log::info("signal {}: stopping", si.ssi_signo);
        stopping_ = true;
        break;
      case SIGUSR1:
      case SIGUSR2: {
        const bool up = si.ssi_signo == SIGUSR2;
        options_.net.link_up = up;
        counters_.link_changes.add();
        log::info("link {}", up ? "up" : "down");
        if (session) session->set_link_up(up);
        break;
      }
      default:
        if (options_.on_signal) options_.on_signal(static_cast<int>(si.ssi_signo));
        break;
    }
  }
}

void Server::on_aux() {
  if (options_.on_aux) options_.on_aux();
}

// Waits for the next frontend: accept() in server mode, connect() with retry
// in client mode. Signals and metrics ticks are served meanwhile.
std::expected<UniqueFd, std::string> Server::next_frontend() {
  const int ep = epoll_.get();
  if (listener_.valid()) epoll_add(ep, listener_.get(), EPOLLIN, kTagControl);
  bool announced = false;
  while (!stopping_) {
    if (options_.connect) {
      auto c = try_connect_unix(options_.socket_path);
      if (!c) return std::unexpected(c.error());
      if (c->valid()) return std::move(*c);
      if (!announced) log::info("waiting for a frontend to listen on {}", options_.socket_path);
      announced = true;
    } else if (!announced) {
      log::info("listening on {}", options_.socket_path);
      announced = true;
    }
    std::array<epoll_event, 4> events{};
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), options_.connect ? 100 : -1);
    if (n < 0 && errno != EINTR) return std::unexpected("epoll_wait: " + errno_text(errno));
    for (int i = 0; i < n; ++i) {
      switch (events[i].data.u64) {
        case kTagSignal: handle_signals(nullptr); break;
        case kTagTimer: on_timer(); break;
        case kTagAux: on_aux(); break;
        case kTagControl: {
          UniqueFd s(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
          if (s.valid()) {
            epoll_del(ep, listener_.get());
            return s;
          }
          break;
        }
        default: break;
      }
    }
  }
  if (listener_.valid()) epoll_del(ep, listener_.get());
  return UniqueFd{};
}

std::expected<void, std::string> Server::serve(UniqueFd sock) {
  const int ep = epoll_.get();
  NetSession session(options_.net, backend_, interceptor_, &stats_);
  counters_.connections.add();
  log::info("frontend connected (connection {})", counters_.connections.get());

  // A message is read whole once its first byte arrives, and a reply is
  // written whole: a frontend that stalls mid-message or stops reading is
  // dropped after io_timeout instead of holding the I/O thread.
  set_io_timeout(sock.get(), options_.io_timeout);
  attached_ = 1;
  epoll_add(ep, sock.get(), EPOLLIN, kTagControl);
  const int backend_fd = backend_.rx_fd();
  bool backend_armed = false;
  if (backend_fd >= 0) epoll_add(ep, backend_fd, EPOLLONESHOT, kTagBackend);  // armed once rings run
  std::array<int, NetSession::kNumQueues> kick_registered{};
  kick_registered.fill(-1);

  auto sync_backend = [&] {
    if (backend_fd < 0 || backend_armed || !session.wants_backend()) return;
    backend_armed = epoll_mod(ep, backend_fd, EPOLLIN | EPOLLONESHOT, kTagBackend);
  };

  bool connected = true;
  bool clean = true;
  Message msg;
  using Clock = std::chrono::steady_clock;
  Clock::time_point poll_until{};  // --poll-us: look at the rings without a kick until then
  // While busy-polling finds frames, the other sources (control messages,
  // signals, kicks the poll makes moot) are looked at every this many rounds
  // rather than with a system call per round.
  constexpr unsigned kPollRoundsPerWait = 8;
  unsigned rounds_since_wait = 0;
  bool was_polling = false;
  while (connected && !stopping_) {
    std::array<epoll_event, 16> events{};
    const Clock::time_point now = options_.poll.count() > 0 ? Clock::now() : Clock::time_point{};
    const bool polling = options_.poll.count() > 0 && session.running() && now < poll_until;
    if (was_polling && !polling) {
      // The window closed with the driver's notifications off: one ordinary
      // round turns them back on (and takes what was posted meanwhile)
      // before the loop may sleep.
      session.resume();
      sync_backend();
    }
    was_polling = polling;
    // Ring work left from the last round (or a busy-poll window): look at
    // the other sources without waiting, then take the next round (bounded
    // work per wake-up).
    int n = 0;
    if (!polling || ++rounds_since_wait >= kPollRoundsPerWait) {
      rounds_since_wait = 0;
      n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), session.work_pending() || polling ? 0 : -1);
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected("epoll_wait: " + errno_text(errno));
    }
    for (int i = 0; i < n && connected; ++i) {
      const std::uint64_t tag = events[i].data.u64;
      if (tag == kTagControl) {
        const Control c = take_message(sock.get(), session, msg);
        if (c == Control::closed || c == Control::error) {
          clean = c == Control::closed;
          connected = false;
          break;
        }
        if (c == Control::kicks_changed) sync_kick_fds(ep, session, kick_registered, kTagKick0);
        sync_backend();
      } else if (tag >= kTagKick0 && tag < kTagKick0 + NetSession::kNumQueues) {
        session.on_kick(static_cast<std::uint16_t>(tag - kTagKick0));
        sync_backend();
      } else if (tag == kTagBackend) {
        backend_armed = false;
        session.backend_ready();
        sync_backend();
      } else if (tag == kTagSignal) {
        handle_signals(&session);
      } else if (tag == kTagTimer) {
        on_timer();
      } else if (tag == kTagAux) {
        on_aux();
      }
    }
    if (connected && session.work_pending()) {
      session.resume();
      sync_backend();
    }
    if (connected && options_.poll.count() > 0) {
      // Any event or frame keeps the window open; a quiet window closes it.
      const bool moved = polling && session.poll();
      if (moved || n > 0) poll_until = now + options_.poll;
      if (polling) sync_backend();  // the poll may have emptied or filled the RX ring
    }
  }

  for (int fd : kick_registered)
    if (fd >= 0) epoll_del(ep, fd);
  if (backend_fd >= 0) epoll_del(ep, backend_fd);
  epoll_del(ep, sock.get());
  attached_ = 0;
  (clean ? counters_.disconnects_clean : counters_.disconnects_error).add();
  log::info("frontend disconnected ({}); {} frames sent, {} received so far", clean ? "closed" : "protocol error",
            stats_.net.tx_packets.get(), stats_.net.rx_packets.get());
  write_metrics();
  return {};
}

std::expected<void, std::string> Server::run() {
  if (switch_) return serve_many();
  while (!stopping_) {
    auto s = next_frontend();
    if (!s) return std::unexpected(s.error());
    if (!s->valid()) break;  // stopping
    auto r = serve(std::move(*s));
    if (!r) return r;
    if (options_.max_connections != 0 && counters_.connections.get() >= options_.max_connections) break;
    if (options_.connect && !stopping_) {
      // Do not spin reconnecting to a frontend that accepts and drops us.
      ::usleep(100'000);
    }
  }
  write_metrics();
  return {};
}

// --- Several frontends at once (guests > 1) ---------------------------------
//
// One epoll set: the listener, the backend's rx_fd (one-shot, armed while
// any session wants it), signals, the metrics timer, and per frontend its
// socket and kick fds, tagged with its slot. Each round gives every session
// with work one bounded turn. A port's queue may fill while another
// session's RX pulls the uplink: such a session gets a backend turn too.

namespace {

constexpr std::uint64_t kSlotShift = 8;  // frontend tags: (slot + 1) << 8 | kind
constexpr std::uint64_t kKindControl = 1;
std::uint64_t frontend_tag(std::size_t slot, std::uint64_t kind) { return (slot + 1) << kSlotShift | kind; }

}  // namespace

struct Server::Frontend {
  UniqueFd sock;
  std::unique_ptr<NetSession> session;
  backend::SwitchPort* port = nullptr;
  std::array<int, NetSession::kNumQueues> kicks{-1, -1};
  std::size_t slot = 0;
  bool live = false;
  bool ending = false;
  bool clean = true;
};

void Server::accept_frontend(std::vector<Frontend>& all) {
  UniqueFd s(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!s.valid()) return;
  std::size_t slot = 0;
  while (slot < all.size() && all[slot].live) ++slot;
  backend::SwitchPort* port = slot < options_.guests ? switch_->attach() : nullptr;
  if (port == nullptr) {
    counters_.refused_full.add();
    log::warn("vhost-user: a frontend connected while {} are served (--guests); closing it", options_.guests);
    return;
  }
  if (slot == all.size()) all.emplace_back();
  Frontend& f = all[slot];
  f = Frontend{};
  f.slot = slot;
  f.port = port;
  // Each device its own MAC: the configured one, plus the slot.
  net::NetConfig cfg = options_.net;
  cfg.mac.octets[5] = static_cast<std::uint8_t>(cfg.mac.octets[5] + slot);
  f.session = std::make_unique<NetSession>(cfg, *port, nullptr, &stats_);
  set_io_timeout(s.get(), options_.io_timeout);
  if (!epoll_add(epoll_.get(), s.get(), EPOLLIN, frontend_tag(slot, kKindControl))) {
    switch_->detach(port);
    f = Frontend{};
    return;
  }
  f.sock = std::move(s);
  f.live = true;
  ++attached_;
  counters_.connections.add();
  log::info("frontend connected (connection {}, MAC {}, {} attached)", counters_.connections.get(),
            cfg.mac.to_string(), attached_);
}

void Server::end_frontend(Frontend& f) {
  const int ep = epoll_.get();
  for (int fd : f.kicks)
    if (fd >= 0) epoll_del(ep, fd);
  epoll_del(ep, f.sock.get());
  (f.clean ? counters_.disconnects_clean : counters_.disconnects_error).add();
  f.session.reset();  // stops its rings before its port goes
  switch_->detach(f.port);
  f = Frontend{};
  --attached_;
  log::info("frontend disconnected ({} attached); {} frames sent, {} received so far", attached_,
            stats_.net.tx_packets.get(), stats_.net.rx_packets.get());
  write_metrics();
}

std::expected<void, std::string> Server::serve_many() {
  const int ep = epoll_.get();
  epoll_add(ep, listener_.get(), EPOLLIN, kTagListener);
  const int backend_fd = backend_.rx_fd();
  bool backend_armed = false;
  if (backend_fd >= 0) epoll_add(ep, backend_fd, EPOLLONESHOT, kTagBackend);
  log::info("listening on {} for up to {} frontends", options_.socket_path, options_.guests);
  std::vector<Frontend> all;
  all.reserve(options_.guests);
  Message msg;
  // Frames already waiting for a session in its port's queue (another
  // session's RX pulled them) need no rx_fd event.
  const auto queued_for = [](const Frontend& f) { return f.port->queued() > 0 && f.session->wants_backend(); };
  bool more = false;
  while (!stopping_) {
    std::array<epoll_event, 32> events{};
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), more ? 0 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected("epoll_wait: " + errno_text(errno));
    }
    bool backend_ready = false;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t tag = events[i].data.u64;
      if (tag == kTagListener) {
        accept_frontend(all);
      } else if (tag == kTagBackend) {
        backend_armed = false;
        backend_ready = true;
      } else if (tag == kTagSignal) {
        handle_signals(nullptr);
        for (Frontend& f : all)
          if (f.live && f.session->link_up() != options_.net.link_up) f.session->set_link_up(options_.net.link_up);
      } else if (tag == kTagTimer) {
        on_timer();
      } else if (tag == kTagAux) {
        on_aux();
      } else {
        const std::size_t slot = (tag >> kSlotShift) - 1;
        const std::uint64_t kind = tag & ((1u << kSlotShift) - 1);
        if (slot >= all.size() || !all[slot].live || all[slot].ending) continue;
        Frontend& f = all[slot];
        if (kind == kKindControl) {
          const Control c = take_message(f.sock.get(), *f.session, msg);
          if (c == Control::closed || c == Control::error) {
            f.clean = c == Control::closed;
            f.ending = true;
          } else if (c == Control::kicks_changed) {
            sync_kick_fds(ep, *f.session, f.kicks, frontend_tag(f.slot, kTagKick0));
          }
        } else if (kind >= kTagKick0 && kind < kTagKick0 + NetSession::kNumQueues) {
          f.session->on_kick(static_cast<std::uint16_t>(kind - kTagKick0));
        }
      }
    }
    more = false;
    bool wants_backend = false;
    for (Frontend& f : all) {
      if (!f.live) continue;
      if (f.ending) {
        end_frontend(f);
        continue;
      }
      if ((backend_ready && f.session->wants_backend()) || queued_for(f)) f.session->backend_ready();
      if (f.session->work_pending()) f.session->resume();
      more |= f.session->work_pending() || queued_for(f);
      wants_backend |= f.session->wants_backend();
    }
    if (backend_fd >= 0 && wants_backend && !backend_armed)
      backend_armed = epoll_mod(ep, backend_fd, EPOLLIN | EPOLLONESHOT, kTagBackend);
    if (options_.max_connections != 0 && counters_.connections.get() >= options_.max_connections && attached_ == 0)
      break;
  }
  for (Frontend& f : all)
    if (f.live) end_frontend(f);
  if (backend_fd >= 0) epoll_del(ep, backend_fd);
  epoll_del(ep, listener_.get());
  write_metrics();
  return {};
}

}  // namespace vnk::vhost_user
