#include "usernet/tcp_flows.hpp"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "base/byte_order.hpp"
#include "base/epoll_ops.hpp"
#include "base/log.hpp"
#include "memory/iovec_ops.hpp"
#include "usernet/guest_frame.hpp"
#include "usernet/host_route.hpp"

namespace vnk::usernet {

using namespace packet;

namespace {

constexpr std::size_t kDataHeaders = kEthIpv4Size + kTcpHeaderSize;  // data segments carry no options
constexpr std::uint32_t kEstablishedEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;

// RFC 9293 sequence comparisons, modulo 2^32.
bool seq_lt(std::uint32_t a, std::uint32_t b) noexcept { return static_cast<std::int32_t>(a - b) < 0; }
bool seq_le(std::uint32_t a, std::uint32_t b) noexcept { return static_cast<std::int32_t>(a - b) <= 0; }

std::uint32_t random_u32() noexcept {
  std::uint32_t v = 0;
  if (::getrandom(&v, sizeof v, GRND_NONBLOCK) != sizeof v) v = static_cast<std::uint32_t>(monotonic_ms() * 2654435761u);
  return v;
}

}  // namespace

TcpFlows::TcpFlows(FlowEnv env) : env_(env), peek_offset_(env.host.tcp_peek_off_v4) {
  if (!peek_offset_) discard_.resize(kDiscardChunk);
}

TcpFlows::~TcpFlows() {
  for (std::uint32_t s = 0; s < flows_.extent(); ++s)
    if (flows_[s].live) close(s, false);
}

// TCP_NODELAY: the guest does its own batching. A peek offset (where the
// kernel has one) lets each peek start behind the bytes already sent.
void TcpFlows::prepare_socket(int fd) const noexcept {
  const int one = 1, zero = 0;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (peek_offset_) ::setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero);
}

TcpFlows::Flow* TcpFlows::add_flow(UniqueFd sock, const Key& key, std::uint32_t events, State state,
                                   std::uint32_t& slot) {
  slot = flows_.acquire();
  Flow& f = flows_[slot];
  f.gen = next_gen_++;
  if (!epoll_add(env_.epoll_fd, sock.get(), events, make_tag(TagKind::tcp, f.gen, slot))) {
    flows_.release(slot);
    return nullptr;
  }
  f.sock = std::move(sock);
  f.key = key;
  f.live = true;
  f.state = state;
  f.iss = random_u32();
  f.snd_una = f.iss;
  f.snd_nxt = f.iss + 1;  // our SYN
  measure_room(f);
  by_key_.emplace(key, slot);
  return &f;
}

void TcpFlows::close(std::uint32_t slot, bool reset_host) {
  Flow& f = flows_[slot];
  if (!f.live) return;
  if (reset_host) {
    const linger lg{1, 0};  // close() then sends RST instead of FIN
    ::setsockopt(f.sock.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  }
  epoll_del(env_.epoll_fd, f.sock.get());
  by_key_.erase(f.key);
  flows_.release(slot);  // closes the socket
  env_.fds.give();
  env_.counters.tcp_flows_closed.add();
}

std::uint16_t TcpFlows::window_field(const Flow& f) const noexcept {
  const std::uint32_t window = std::min(f.room, kWindowBytes);
  return f.scaling ? static_cast<std::uint16_t>(window >> kWindowShift)
                   : static_cast<std::uint16_t>(std::min<std::uint32_t>(window, 0xffff));
}

void TcpFlows::measure_room(Flow& f) const noexcept {
  int sndbuf = 0;
  socklen_t len = sizeof sndbuf;
  int queued = 0;
  long room = 0;
  if (::getsockopt(f.sock.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 &&
      ::ioctl(f.sock.get(), SIOCOUTQ, &queued) == 0) {
    // SO_SNDBUF also pays for the kernel's per-buffer overhead, which
    // SIOCOUTQ (payload bytes) leaves out: keep an eighth of it for that.
    room = static_cast<long>(sndbuf) - sndbuf / 8 - queued;
  }
  f.room = f.room_measured = static_cast<std::uint32_t>(std::clamp<long>(room, 0, kWindowBytes));
}

void TcpFlows::want_writable(Flow& f, std::uint32_t slot) {
  if (f.want_write) return;
  f.want_write = true;
  epoll_mod(env_.epoll_fd, f.sock.get(), kEstablishedEvents | EPOLLOUT, make_tag(TagKind::tcp, f.gen, slot));
}

std::size_t TcpFlows::write_segment(std::span<std::byte> out, const Key& k, const TcpFields& t,
                                    std::size_t payload_len, const Checksum& payload_sum) noexcept {
  return write_tcp_frame_headers(
      out, TcpEndpoints{*env_.guest_mac, env_.cfg.gateway_mac, Ipv4Address{k.remote_ip}, Ipv4Address{k.guest_ip}}, t,
      payload_len, payload_sum, ip_id_++);
}

TcpFields TcpFlows::ack_fields(const Flow& f) const noexcept {
  return TcpFields{f.key.remote_port, f.key.guest_port, f.snd_nxt, f.rcv_nxt, tcp_flag::kAck, window_field(f), {}, {}};
}

void TcpFlows::queue_control(const Key& k, const TcpFields& t) {
  if (!env_.guest_mac) return;
  auto slot = env_.control.reserve();
  if (slot.empty()) {
    env_.counters.drop_queue_full.add();
    return;
  }
  env_.control.commit(write_segment(slot, k, t));
}

TcpFields TcpFlows::syn_fields(const Flow& f) const noexcept {
  const bool inbound = f.state == State::syn_sent;
  return TcpFields{f.key.remote_port,
                   f.key.guest_port,
                   f.iss,
                   inbound ? 0 : f.rcv_nxt,
                   static_cast<std::uint8_t>(inbound ? tcp_flag::kSyn : tcp_flag::kSyn | tcp_flag::kAck),
                   inbound ? std::uint16_t{0xffff} : window_field(f),
                   static_cast<std::uint16_t>(env_.cfg.mtu - 40),
                   inbound || f.scaling ? std::optional<std::uint8_t>(kWindowShift) : std::nullopt};
}

void TcpFlows::owe_syn(Flow& f, std::uint32_t slot) {
  // Written by next_frame() from the flow's state, like a pure ACK: a burst
  // of thousands of connects cannot overflow a queue and lose SYN-ACKs.
  f.syn_owed = true;
  if (!f.in_acks) {
    f.in_acks = true;
    acks_.push_back(slot);
  }
}

void TcpFlows::queue_reset(const Key& k, std::uint32_t seq, std::uint32_t ack, bool with_ack) {
  if (!env_.guest_mac) return;
  queue_control(k, TcpFields{k.remote_port, k.guest_port, seq, with_ack ? ack : 0,
                             static_cast<std::uint8_t>(tcp_flag::kRst | (with_ack ? tcp_flag::kAck : 0)), 0, {}, {}});
  env_.counters.tcp_resets_to_guest.add();
}

void TcpFlows::owe_ack(Flow& f, std::uint32_t slot, std::uint8_t count) {
  f.acks_to_send = std::max(f.acks_to_send, count);
  if (!f.in_acks) {
    f.in_acks = true;
    acks_.push_back(slot);
  }
}

void TcpFlows::make_ready(Flow& f, std::uint32_t slot) {
  f.window_blocked = false;
  if (!f.in_ready) {
    f.in_ready = true;
    ready_.push_back(slot);
  }
}

void TcpFlows::rewind(Flow& f, std::uint32_t slot) {
  // The socket holds exactly the unacknowledged bytes: peek from the start.
  f.snd_nxt = f.snd_una;
  f.fin_sent = false;
  f.dup_acks = 0;
  if (peek_offset_) {
    const int zero = 0;
    ::setsockopt(f.sock.get(), SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero);
  }
  make_ready(f, slot);
  env_.counters.tcp_retransmits.add();
}

void TcpFlows::open(const Ipv4& ip, const Tcp& tcp) {
  const Key key{ip.src.value, tcp.src_port, ip.dst.value, tcp.dst_port};
  auto refuse = [&](Counter& why) {
    why.add();
    queue_reset(key, 0, tcp.seq + 1, true);
  };
  auto dst = host_destination(env_.cfg, ip_proto::kTcp, ip.dst, tcp.dst_port);
  if (!dst)
    return refuse(dst.error() == RouteRefusal::link_local ? env_.counters.drop_link_local : env_.counters.drop_no_route);
  if (by_key_.size() >= kMaxFlows) return refuse(env_.counters.tcp_table_full);
  // The flow's socket comes out of the open-file budget, so a guest cannot
  // take the fds the process needs for itself; existing flows go on.
  auto fd = env_.fds.lease();
  if (!fd) return refuse(env_.counters.flows_refused_fd_limit);
  UniqueFd sock(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return refuse(env_.counters.tcp_connect_failed);
  prepare_socket(sock.get());
  const int rc = ::connect(sock.get(), reinterpret_cast<const sockaddr*>(&*dst), sizeof *dst);
  if (rc != 0 && errno != EINPROGRESS) return refuse(env_.counters.tcp_connect_failed);

  std::uint32_t slot = 0;
  Flow* f = add_flow(std::move(sock), key, EPOLLOUT, State::connecting, slot);
  if (f == nullptr) return refuse(env_.counters.tcp_connect_failed);
  fd.keep();  // close() gives it back
  f->rcv_nxt = tcp.seq + 1;
  f->guest_mss = std::max<std::uint16_t>(tcp.mss.value_or(536), 64);
  f->scaling = tcp.wscale.has_value();
  f->guest_wscale = tcp.wscale.value_or(0);
  f->guest_window = tcp.window;  // a SYN's window is never scaled
  f->deadline_ms = monotonic_ms() + kConnectTimeoutMs;
  env_.counters.tcp_flows_opened.add();
  if (rc == 0) connected(slot);
}

void TcpFlows::accept_inbound(UniqueFd sock, Ipv4Address guest_ip, std::uint16_t guest_port, Ipv4Address remote_ip,
                              std::uint16_t remote_port) {
  if (!env_.guest_mac || by_key_.size() >= kMaxFlows) {
    env_.counters.tcp_forward_refused.add();
    return;  // no guest to connect to yet: the host client sees the close
  }
  auto fd = env_.fds.lease();
  if (!fd) {
    env_.counters.flows_refused_fd_limit.add();
    env_.counters.tcp_forward_refused.add();
    return;
  }
  Key key{guest_ip.value, guest_port, remote_ip.value, remote_port};
  for (unsigned tries = 0; by_key_.contains(key); ++tries) {
    if (tries == 1000) {
      env_.counters.tcp_forward_refused.add();
      return;
    }
    key.remote_port = static_cast<std::uint16_t>(key.remote_port < 1024 ? 49152 : key.remote_port + 1);
  }
  std::uint32_t slot = 0;
  prepare_socket(sock.get());
  Flow* f = add_flow(std::move(sock), key, kEstablishedEvents, State::syn_sent, slot);
  if (f == nullptr) {
    env_.counters.tcp_forward_refused.add();
    return;
  }
  fd.keep();
  f->deadline_ms = monotonic_ms() + f->rto_ms;
  env_.counters.tcp_forwards_accepted.add();
  owe_syn(*f, slot);
}

void TcpFlows::connected(std::uint32_t slot) {
  Flow& f = flows_[slot];
  f.state = State::syn_acked;
  epoll_mod(env_.epoll_fd, f.sock.get(), kEstablishedEvents, make_tag(TagKind::tcp, f.gen, slot));
  f.rto_ms = kMinRtoMs;
  f.deadline_ms = monotonic_ms() + f.rto_ms;
  owe_syn(f, slot);
}

void TcpFlows::from_guest(const Ipv4& ip, const Tcp& tcp, std::span<const iovec> payload) {
  env_.counters.tcp_segments_from_guest.add();
  const Key key{ip.src.value, tcp.src_port, ip.dst.value, tcp.dst_port};
  auto it = by_key_.find(key);
  if (it == by_key_.end()) {
    if (tcp.has(tcp_flag::kRst)) return;
    if (tcp.has(tcp_flag::kSyn) && !tcp.has(tcp_flag::kAck)) return open(ip, tcp);
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
  const std::uint32_t slot = it->second;
  Flow& f = flows_[slot];
  if (tcp.has(tcp_flag::kRst)) {
    env_.counters.tcp_resets_from_guest.add();
    close(slot, true);
    return;
  }
  if (f.state == State::connecting) return;  // a retransmitted SYN: the connect is still running
  if (f.state == State::syn_sent) {
    if (tcp.has(tcp_flag::kSyn) && tcp.has(tcp_flag::kAck) && tcp.ack == f.iss + 1) {
      f.state = State::established;
      f.rcv_nxt = tcp.seq + 1;
      f.guest_mss = std::max<std::uint16_t>(tcp.mss.value_or(536), 64);
      f.scaling = tcp.wscale.has_value();  // we offered it in our SYN
      f.guest_wscale = tcp.wscale.value_or(0);
      f.guest_window = tcp.window;  // a SYN-ACK's window is never scaled
      f.snd_una = f.snd_nxt = f.iss + 1;
      f.deadline_ms = 0;
      f.retries = 0;
      owe_ack(f, slot);
      make_ready(f, slot);  // the host client may have written already
    }
    return;
  }
  if (tcp.has(tcp_flag::kSyn)) {
    if (f.state == State::syn_acked && !tcp.has(tcp_flag::kAck)) owe_syn(f, slot);  // ours was lost
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

void TcpFlows::handle_ack(Flow& f, std::uint32_t slot, const Tcp& tcp) {
  const std::uint32_t window = std::uint32_t{tcp.window} << (f.scaling ? f.guest_wscale : 0);
  if (f.state == State::syn_acked) {
    if (tcp.ack != f.iss + 1) return;
    f.state = State::established;
    f.snd_una = f.snd_nxt = f.iss + 1;
    f.deadline_ms = 0;
    f.rto_ms = kMinRtoMs;
    f.retries = 0;
    f.guest_window = window;
    make_ready(f, slot);  // the host may have spoken first
    return;
  }
  const std::uint32_t ack = tcp.ack;
  if (seq_lt(f.snd_una, ack) && seq_le(ack, f.snd_nxt)) {
    std::uint32_t data = ack - f.snd_una;
    if (f.fin_sent && ack == f.snd_nxt) --data;  // our FIN takes a sequence number, not a byte
    // Drop the acknowledged bytes from the socket; the peek offset moves back
    // by as much.
    while (data > 0) {
      const ssize_t n = ::recv(f.sock.get(), nullptr, data, MSG_TRUNC | MSG_DONTWAIT);
      if (n <= 0) break;
      data -= static_cast<std::uint32_t>(n);
    }
    f.snd_una = ack;
    f.dup_acks = 0;
    f.retries = 0;
    f.rto_ms = kMinRtoMs;
    f.deadline_ms = f.snd_una == f.snd_nxt ? 0 : monotonic_ms() + f.rto_ms;
    if (f.window_blocked) make_ready(f, slot);
  } else if (ack == f.snd_una && tcp.payload_len == 0 && !tcp.has(tcp_flag::kFin) && f.snd_nxt != f.snd_una &&
             window == f.guest_window) {
    if (++f.dup_acks == 3) rewind(f, slot);
  }
  if (window > f.guest_window && f.window_blocked) make_ready(f, slot);
  f.guest_window = window;
}

void TcpFlows::handle_data(Flow& f, std::uint32_t slot, const Tcp& tcp, std::span<const iovec> payload) {
  if (f.state != State::established) return;
  const std::size_t len = tcp.payload_len;
  const auto offset = static_cast<std::int32_t>(f.rcv_nxt - tcp.seq);
  if (len > 0) {
    if (offset < 0 || f.guest_fin) {
      // A gap (a segment we could not take earlier) or data after FIN. While
      // the socket refuses data stay quiet: duplicate ACKs come when it drains.
      env_.counters.tcp_out_of_order.add();
      if (!f.refused) owe_ack(f, slot);
      return;
    }
    if (static_cast<std::size_t>(offset) < len) {
      std::array<iovec, 64> tail;  // the first n are set
      const std::size_t nt = iov_tail(payload, static_cast<std::size_t>(offset), tail);
      msghdr m{};
      m.msg_iov = tail.data();
      m.msg_iovlen = nt;
      const ssize_t n = ::sendmsg(f.sock.get(), &m, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        queue_reset(f.key, f.snd_nxt, f.rcv_nxt, true);
        close(slot, false);
        return;
      }
      const auto written = static_cast<std::size_t>(std::max<ssize_t>(n, 0));
      f.rcv_nxt += static_cast<std::uint32_t>(written);
      env_.counters.tcp_bytes_to_host.add(written);
      f.room = f.room > written ? f.room - static_cast<std::uint32_t>(written) : 0;
      if (f.room < f.room_measured / 2) measure_room(f);
      if (written < len - static_cast<std::size_t>(offset)) {
        env_.counters.tcp_socket_full.add();
        f.refused = true;
        f.room = 0;
        want_writable(f, slot);
        owe_ack(f, slot);
        return;
      }
      // Less than a full segment of room: the guest stops; it hears when
      // the socket drains.
      if (f.room < std::max<std::uint32_t>(env_.cfg.mtu, 1u << kWindowShift)) want_writable(f, slot);
    }
    owe_ack(f, slot);
  } else if (seq_lt(tcp.seq, f.rcv_nxt)) {
    owe_ack(f, slot);  // a keepalive probe
  }
  if (tcp.has(tcp_flag::kFin) && !f.guest_fin && tcp.seq + static_cast<std::uint32_t>(len) == f.rcv_nxt) {
    f.guest_fin = true;
    f.rcv_nxt += 1;
    ::shutdown(f.sock.get(), SHUT_WR);
    owe_ack(f, slot);
  }
}

bool TcpFlows::closing_done(const Flow& f) const noexcept {
  return f.guest_fin && f.fin_sent && f.snd_una == f.snd_nxt;
}

void TcpFlows::on_event(std::uint32_t slot, std::uint16_t gen, std::uint32_t events) {
  if (slot >= flows_.extent()) return;
  Flow& f = flows_[slot];
  if (!f.live || f.gen != gen) return;
  if (f.state == State::connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(f.sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err == 0 && (events & EPOLLOUT) != 0) return connected(slot);
    env_.counters.tcp_connect_refused.add();
    queue_reset(f.key, 0, f.rcv_nxt, true);
    close(slot, false);
    return;
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
  if ((events & EPOLLOUT) != 0 && f.want_write) {
    f.want_write = false;
    epoll_mod(env_.epoll_fd, f.sock.get(), kEstablishedEvents, make_tag(TagKind::tcp, f.gen, slot));
    measure_room(f);
    // A window update; after a refusal, three duplicate ACKs so the guest
    // resends what the socket did not take.
    owe_ack(f, slot, f.refused ? 3 : 1);
    f.refused = false;
  }
  if ((events & (EPOLLRDHUP | EPOLLHUP)) != 0) f.host_closed = true;
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) != 0) make_ready(f, slot);
}

std::size_t TcpFlows::pure_ack(std::span<const iovec> buffer, const Flow& f) {
  std::array<std::byte, kDataHeaders> h{};
  const std::size_t n = write_segment(h, f.key, ack_fields(f));
  return iov_write(buffer, 0, std::span(h).first(n)) == n ? n : 0;
}

std::size_t TcpFlows::data_or_fin(std::span<const iovec> buffer, Flow& f, std::uint32_t slot, bool& more) {
  more = false;
  if (f.state != State::established || f.fin_sent) return 0;
  const std::uint32_t in_flight = f.snd_nxt - f.snd_una;
  const std::uint32_t window = peek_offset_ ? f.guest_window : std::min(f.guest_window, kPeekFallbackWindow);
  if (in_flight >= window) {
    f.window_blocked = true;
    return 0;
  }
  // Without a peek offset the peek starts at the queue's head: the bytes in
  // flight go to the discard area first (the window above keeps them
  // within it), the new ones into the guest's buffer.
  std::array<iovec, kDiscardIovecs + 64> iov;  // [discard...][guest buffer tail...]
  std::size_t skip = 0;
  for (std::size_t left = peek_offset_ ? 0 : in_flight; left > 0; left -= iov[skip++].iov_len)
    iov[skip] = iovec{discard_.data(), std::min(left, discard_.size())};
  const std::size_t room = iov_length(buffer) > kDataHeaders ? iov_length(buffer) - kDataHeaders : 0;
  const std::size_t max = std::min<std::size_t>(
      {window - in_flight, f.guest_mss, room, 65535 - kIpv4HeaderSize - kTcpHeaderSize});
  if (max == 0) {
    env_.counters.drop_too_big_for_guest.add();
    return 0;
  }
  const std::size_t nt = iov_slice(buffer, kDataHeaders, max, std::span(iov).subspan(skip));
  msghdr m{};
  m.msg_iov = iov.data();
  m.msg_iovlen = skip + nt;
  const ssize_t got = ::recvmsg(f.sock.get(), &m, MSG_PEEK | MSG_DONTWAIT);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;  // wait for the next edge
    env_.counters.tcp_host_resets.add();
    queue_reset(f.key, f.snd_nxt, f.rcv_nxt, true);
    close(slot, false);
    return 0;
  }
  const std::size_t skipped = peek_offset_ ? 0 : std::min<std::size_t>(static_cast<std::size_t>(got), in_flight);
  env_.counters.tcp_bytes_repeeked.add(skipped);
  const std::size_t len = static_cast<std::size_t>(got) - skipped;
  // Nothing new: the end of the stream once the peer has closed (a peek at
  // an offset past the data returns 0 then too); otherwise more is to come.
  const bool eof = len == 0 && (peek_offset_ || f.host_closed);
  if (len == 0 && !eof) return 0;
  TcpFields t = ack_fields(f);
  if (eof) {
    f.fin_sent = true;
    t.flags |= tcp_flag::kFin;
  } else {
    t.flags |= tcp_flag::kPsh;
    // A short peek drained the socket: the next edge says when there is
    // more, unless the peer has closed (then the next peek finds the end).
    more = len == max || f.host_closed;
  }
  Checksum payload;
  add_iov(payload, buffer, kDataHeaders, len);
  std::array<std::byte, kDataHeaders> h{};
  iov_write(buffer, 0, std::span(h).first(write_segment(h, f.key, t, len, payload)));
  f.snd_nxt += static_cast<std::uint32_t>(len) + (eof ? 1 : 0);
  if (f.deadline_ms == 0) f.deadline_ms = monotonic_ms() + f.rto_ms;
  if (f.acks_to_send == 1) f.acks_to_send = 0;  // this segment carries the ACK
  env_.counters.tcp_bytes_to_guest.add(len);
  return kDataHeaders + len;
}

std::size_t TcpFlows::next_frame(std::span<const iovec> buffer) {
  if (!env_.guest_mac) return 0;
  while (!acks_.empty()) {
    const std::uint32_t slot = acks_.front();
    Flow& f = flows_[slot];
    if (!f.live || (f.acks_to_send == 0 && !f.syn_owed)) {
      f.in_acks = false;
      acks_.pop_front();
      continue;
    }
    if (f.syn_owed) {
      f.syn_owed = false;
      if (f.acks_to_send == 0) {
        f.in_acks = false;
        acks_.pop_front();
      }
      std::array<std::byte, kDataHeaders + 40> h{};  // room for the SYN's options
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
    const std::size_t n = data_or_fin(buffer, f, slot, more);
    if (f.live && more) {
      f.in_ready = true;
      ready_.push_back(slot);  // round-robin among flows with data
    }
    if (f.live && closing_done(f)) close(slot, false);
    if (n != 0) return n;
  }
  return 0;
}

void TcpFlows::on_tick(std::uint64_t now_ms) {
  for (std::uint32_t s = 0; s < flows_.extent(); ++s) {
    Flow& f = flows_[s];
    if (!f.live || f.deadline_ms == 0 || now_ms < f.deadline_ms) continue;
    switch (f.state) {
      case State::connecting:
        // No answer: give up silently, as a lost SYN would look.
        env_.counters.tcp_connect_timeouts.add();
        close(s, false);
        continue;
      case State::syn_sent:
      case State::syn_acked:
      case State::established:
        if (++f.retries > kMaxRetries) {
          env_.counters.tcp_timeouts.add();
          queue_reset(f.key, f.snd_nxt, f.rcv_nxt, true);
          close(s, true);
          continue;
        }
        f.rto_ms = std::min(f.rto_ms * 2, kMaxRtoMs);
        f.deadline_ms = now_ms + f.rto_ms;
        if (f.state != State::established) {
          owe_syn(f, s);
        } else {
          rewind(f, s);
        }
        break;
    }
  }
}

}  // namespace vnk::usernet
