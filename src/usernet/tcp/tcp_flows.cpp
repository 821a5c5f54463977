// The flow table: opening (guest SYN, forwarded host connection), closing,
// dispatching guest segments and socket events, and choosing the next
// frame for the guest.
#include "usernet/tcp/tcp_flows.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "base/epoll_ops.hpp"
#include "memory/iovec_ops.hpp"
#include "usernet/tcp/sequence.hpp"
#include "base/log.hpp"
#include "usernet/host_route.hpp"

namespace vnk::usernet {

using namespace packet;

TcpFlows::TcpFlows(FlowEnv env) : env_(env) {
  if (!env_.host.tcp_peek_off_v4 || !env_.host.tcp_peek_off_v6) discard_.resize(kDiscardChunk);
}

TcpFlows::~TcpFlows() {
  for (std::uint32_t s = 0; s < flows_.extent(); ++s)
    if (flows_[s].live) close(s, false);
}

// TCP_NODELAY: the guest does its own batching. The peek offset (where the
// kernel has one) is set later, when bytes are first in flight
// (sync_peek_offset).
void TcpFlows::prepare_socket(int fd) const noexcept {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

TcpFlows::Flow* TcpFlows::add_flow(UniqueFd sock, int host_family, const Key& key, std::uint32_t events,
                                   bool inbound, std::uint32_t& slot) {
  slot = flows_.open(key);
  Flow& f = flows_[slot];
  if (!epoll_add(env_.epoll_fd, sock.get(), events, flows_.tag(slot))) {
    flows_.close(slot);
    return nullptr;
  }
  f.sock = std::move(sock);
  f.peek_offset = host_family == AF_INET6 ? env_.host.tcp_peek_off_v6 : env_.host.tcp_peek_off_v4;
  if (!key.is_v4()) env_.counters.ipv6_flows_opened.add();
  // RFC 6528: a clock ticking every 4 µs plus a keyed hash of the
  // connection's addresses and ports -- no system call per connection.
  f.iss = static_cast<std::uint32_t>(now_ms_ * 250 + FlowKeyHash{isn_secret_}(key));
  f.snd_una = f.iss;
  f.snd_nxt = f.snd_max = f.iss + 1;  // our SYN
  f.last_guest_ms = now_ms_;
  measure_fresh_room(f);
  if (inbound) {
    change(f, TcpEvent::inbound);
    change(f, TcpEvent::host_connected);  // accepted: connected already
  }
  return &f;
}

void TcpFlows::change(Flow& f, TcpEvent e) {
  const auto bit = static_cast<std::uint8_t>(e);
  if ((f.events & bit) != 0) return;
  f.events |= bit;
  if (log::enabled(log::Level::debug))
    log::debug("tcp {}: {} (events {}, flags {})", f.key.to_string(), bit_names(bit, kTcpEventNames),
               bit_names(f.events, kTcpEventNames), bit_names(f.flags, kTcpFlagNames));
}

void TcpFlows::change(Flow& f, TcpFlag flag, bool on) {
  const auto bit = static_cast<std::uint8_t>(flag);
  if (((f.flags & bit) != 0) == on) return;
  f.flags = on ? (f.flags | bit) : (f.flags & ~bit);
  if (log::enabled(log::Level::debug))
    log::debug("tcp {}: {}{} (events {}, flags {})", f.key.to_string(), on ? "+" : "-", bit_names(bit, kTcpFlagNames),
               bit_names(f.events, kTcpEventNames), bit_names(f.flags, kTcpFlagNames));
}

void TcpFlows::close(std::uint32_t slot, bool reset_host) {
  Flow& f = flows_[slot];
  if (!f.live) return;
  if (reset_host) {
    const linger lg{1, 0};  // close() then sends RST instead of FIN
    ::setsockopt(f.sock.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  // No EPOLL_CTL_DEL: the socket is ours alone, and closing it takes it out
  // of the epoll set (a stale event would carry an old generation anyway).
  f.held.clear(reassembly_);
  flows_.close(slot);  // closes the socket
  env_.fds.give();
  env_.counters.tcp_flows_closed.add();
}

void TcpFlows::open(const Key& key, const Tcp& tcp) {
  auto refuse = [&](Counter& why) {
    why.add();
    queue_reset(key, 0, tcp.seq + 1, true);
  };
  auto dst = host_destination(env_.cfg, ip_proto::kTcp, key.remote, key.remote_port);
  if (!dst)
    return refuse(dst.error() == RouteRefusal::link_local ? env_.counters.drop_link_local : env_.counters.drop_no_route);
  if (flows_.size() >= kMaxFlows) return refuse(env_.counters.tcp_table_full);
  // The flow's socket comes out of the open-file budget, so a guest cannot
  // take the fds the process needs for itself; existing flows go on.
  auto fd = env_.fds.lease();
  if (!fd) return refuse(env_.counters.flows_refused_fd_limit);
  UniqueFd sock(::socket(dst->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return refuse(env_.counters.tcp_connect_failed);
  prepare_socket(sock.get());
  const int rc = ::connect(sock.get(), dst->get(), dst->length());
  if (rc != 0 && errno != EINPROGRESS) return refuse(env_.counters.tcp_connect_failed);

  std::uint32_t slot = 0;
  // Edge-triggered from the start: the connect's EPOLLOUT says connected,
  // and the same registration serves the flow afterwards (no EPOLL_CTL_MOD
  // per connection); an EPOLLOUT nobody asked for is ignored.
  Flow* f = add_flow(std::move(sock), dst->family(), key, kEstablishedEvents | EPOLLOUT, false, slot);
  if (f == nullptr) return refuse(env_.counters.tcp_connect_failed);
  fd.keep();  // close() gives it back
  f->rcv_nxt = tcp.seq + 1;
  f->guest_mss = std::max<std::uint16_t>(tcp.mss.value_or(536), 64);
  f->scaling = tcp.wscale.has_value();
  f->guest_wscale = tcp.wscale.value_or(0);
  f->sack_ok = tcp.sack_permitted;
  f->guest_window = tcp.window;  // a SYN's window is never scaled
  f->deadline_ms = now_ms_ + kConnectTimeoutMs;
  env_.counters.tcp_flows_opened.add();
  if (rc == 0) connected(slot);
}

void TcpFlows::accept_inbound(UniqueFd sock, int host_family, const IpAddress& guest_ip, std::uint16_t guest_port,
                              const IpAddress& remote_ip, std::uint16_t remote_port, std::uint64_t now_ms) {
  now_ms_ = now_ms;
  if (!env_.guests.known() || flows_.size() >= kMaxFlows) {
    env_.counters.tcp_forward_refused.add();
    return;  // no guest to connect to yet: the host client sees the close
  }
  auto fd = env_.fds.lease();
  if (!fd) {
    env_.counters.flows_refused_fd_limit.add();
    env_.counters.tcp_forward_refused.add();
    return;
  }
  const auto probe = flows_.probe_remote_port(FlowKey{ip_proto::kTcp, guest_ip, guest_port, remote_ip, remote_port},
                                              [](std::uint32_t) { return false; });
  if (!probe) {
    env_.counters.tcp_forward_refused.add();
    return;
  }
  const Key key = probe->key;
  std::uint32_t slot = 0;
  prepare_socket(sock.get());
  Flow* f = add_flow(std::move(sock), host_family, key, kEstablishedEvents, true, slot);
  if (f == nullptr) {
    env_.counters.tcp_forward_refused.add();
    return;
  }
  fd.keep();
  arm_timer(*f);
  env_.counters.tcp_forwards_accepted.add();
  owe_syn(*f, slot);
}

void TcpFlows::connected(std::uint32_t slot) {
  Flow& f = flows_[slot];
  change(f, TcpEvent::host_connected);
  f.deadline_ms = 0;
  arm_timer(f);
  owe_syn(f, slot);
}

void TcpFlows::from_guest(const Key& key, const Tcp& tcp, std::span<const iovec> payload, std::uint64_t now_ms) {
  now_ms_ = now_ms;
  env_.counters.tcp_segments_from_guest.add();
  const auto found = flows_.find(key);
  if (!found) {
    if (tcp.has(tcp_flag::kRst)) return;
    if (tcp.has(tcp_flag::kSyn) && !tcp.has(tcp_flag::kAck)) return open(key, tcp);
    // No connection: answer as RFC 9293 §3.10.7.1 says for a CLOSED port.
    env_.counters.tcp_no_flow.add();
    if (tcp.has(tcp_flag::kAck)) {
      queue_reset(key, tcp.ack, 0, false);
    } else {
      const auto len = static_cast<std::uint32_t>(tcp.payload_len + (tcp.has(tcp_flag::kSyn) ? 1 : 0) +
                                                  (tcp.has(tcp_flag::kFin) ? 1 : 0));
      queue_reset(key, 0, tcp.seq + len, true);
    }
    return;
  }
  const std::uint32_t slot = *found;
  Flow& f = flows_[slot];
  f.last_guest_ms = now_ms;
  if (tcp.has(tcp_flag::kRst)) {
    env_.counters.tcp_resets_from_guest.add();
    close(slot, true);
    return;
  }
  if (f.connecting()) return;  // a retransmitted SYN: the connect is still running
  if (f.syn_sent()) {
    if (tcp.has(tcp_flag::kSyn) && tcp.has(tcp_flag::kAck) && tcp.ack == f.iss + 1) {
      change(f, TcpEvent::established);
      f.rcv_nxt = tcp.seq + 1;
      f.guest_mss = std::max<std::uint16_t>(tcp.mss.value_or(536), 64);
      f.scaling = tcp.wscale.has_value();  // we offered it in our SYN
      f.guest_wscale = tcp.wscale.value_or(0);
      f.sack_ok = tcp.sack_permitted;  // so was SACK
      f.guest_window = tcp.window;  // a SYN-ACK's window is never scaled
      f.snd_una = f.snd_nxt = f.snd_max = f.iss + 1;
      f.rtt.acked(tcp.ack, now_ms);  // the handshake's round trip, unless our SYN was sent twice
      f.deadline_ms = 0;
      f.retries = 0;
      owe_ack(f, slot);
      make_ready(f, slot);  // the host client may have written already
    }
    return;
  }
  if (tcp.has(tcp_flag::kSyn)) {
    if (f.syn_acked() && !tcp.has(tcp_flag::kAck)) owe_syn(f, slot);  // ours was lost
    return;
  }
  if (!tcp.has(tcp_flag::kAck)) return;
  handle_ack(f, slot, tcp);
  handle_data(f, slot, tcp, payload);
  if (f.live && closing_done(f)) {
    if (f.acks_to_send != 0) {
      // The flow ends now, so its last ACK (for the guest's FIN) goes out whole.
      queue_control(f.key, ack_fields(f));
    }
    close(slot, false);
  }
}

void TcpFlows::on_event(std::uint32_t slot, std::uint16_t gen, std::uint32_t events, std::uint64_t now_ms) {
  now_ms_ = now_ms;
  Flow* fp = flows_.at(slot, gen);
  if (fp == nullptr) return;  // a stale event: the flow closed
  Flow& f = *fp;
  if (f.connecting()) {
    // EPOLLOUT without an error or a hang-up means connected; otherwise the
    // socket's error decides. Nothing of either: still connecting.
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
    bool ok = (events & (EPOLLERR | EPOLLHUP)) == 0 && (events & EPOLLOUT) != 0;
    if (!ok && (events & EPOLLOUT) != 0) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(f.sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      ok = err == 0;
    }
    if (!ok) {
      env_.counters.tcp_connect_refused.add();
      queue_reset(f.key, 0, f.rcv_nxt, true);
      close(slot, false);
      return;
    }
    connected(slot);
    // Edge-triggered: data or a hang-up reported with the connect is seen
    // only now, below.
  }
  if ((events & EPOLLERR) != 0) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(f.sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      env_.counters.tcp_host_resets.add();
      queue_reset(f.key, f.snd_nxt, f.rcv_nxt, true);
      close(slot, false);
      return;
    }
  }
  if ((events & EPOLLOUT) != 0 && f.has(TcpFlag::want_write)) {
    change(f, TcpFlag::want_write, false);
    epoll_mod(env_.epoll_fd, f.sock.get(), kEstablishedEvents, flows_.tag(slot));
    measure_room(f);
    if (!deliver_held(f, slot)) return;
    // A window update; after a refusal, three duplicate ACKs so the guest
    // resends what the socket did not take.
    owe_ack(f, slot, f.has(TcpFlag::refused) ? 3 : 1);
    change(f, TcpFlag::refused, false);
  }
  if ((events & (EPOLLRDHUP | EPOLLHUP)) != 0) change(f, TcpEvent::host_eof);
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) != 0) make_ready(f, slot);
}

std::size_t TcpFlows::next_frame(std::span<const iovec> buffer, std::uint64_t now_ms, net::NetHeader& header) {
  now_ms_ = now_ms;
  if (!env_.guests.known()) return 0;
  while (!acks_.empty()) {
    const std::uint32_t slot = acks_.front();
    Flow& f = flows_[slot];
    if (!f.live || !f.owes_control()) {
      f.in_acks = false;
      acks_.pop_front();
      continue;
    }
    if (f.has(TcpFlag::syn_owed) || f.has(TcpFlag::probe_owed)) {
      const bool syn = f.has(TcpFlag::syn_owed);
      change(f, syn ? TcpFlag::syn_owed : TcpFlag::probe_owed, false);
      if (!f.owes_control()) {
        f.in_acks = false;
        acks_.pop_front();
      }
      if (!syn) {
        if (const std::size_t n = window_probe(buffer, f); n != 0) return n;
        continue;
      }
      if (f.retries == 0) f.rtt.start(f.iss, now_ms_);  // time the handshake (Karn: not a resent SYN)
      std::array<std::byte, kMaxDataHeaders + 40> h{};  // room for the SYN's options
      const std::size_t n = write_segment(h, f.key, syn_fields(f));
      if (iov_write(buffer, 0, std::span(h).first(n)) == n) return n;
      continue;
    }
    const std::size_t n = pure_ack(buffer, f);
    if (--f.acks_to_send == 0) {
      f.in_acks = false;
      acks_.pop_front();
    }
    if (n != 0) return n;
  }
  while (!ready_.empty()) {
    const std::uint32_t slot = ready_.front();
    Flow& f = flows_[slot];
    ready_.pop_front();
    if (!f.live) continue;
    f.in_ready = false;
    bool more = false;
    const std::size_t n = data_or_fin(buffer, f, slot, more, header);
    if (f.live && more) {
      f.in_ready = true;
      ready_.push_back(slot);  // round-robin among flows with data
    }
    if (f.live && closing_done(f)) close(slot, false);
    if (n != 0) return n;
  }
  return 0;
}

}  // namespace vnk::usernet
