// Guest -> host: segments from the guest written into the host socket, and
// the guest's FIN.
#include "usernet/tcp/tcp_flows.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "memory/iovec_ops.hpp"
#include "usernet/tcp/sequence.hpp"

namespace vnk::usernet {

using namespace packet;

void TcpFlows::handle_data(Flow& f, std::uint32_t slot, const Tcp& tcp, std::span<const iovec> payload) {
  if (!f.established()) return;
  const std::size_t len = tcp.payload_len;
  const auto offset = static_cast<std::int32_t>(f.rcv_nxt - tcp.seq);
  if (len > 0) {
    if (offset < 0 || f.has(TcpEvent::guest_fin)) {
      // Beyond a hole (a segment lost or reordered on the way, or one the
      // socket could not take), or data after FIN.
      env_.counters.tcp_out_of_order.add();
      if (offset < 0 && !f.has(TcpEvent::guest_fin)) {
        // Kept until the hole is filled, if it lies within the window we
        // offer. (`ahead` in unsigned arithmetic: the guest picks seq.)
        const std::uint32_t ahead = tcp.seq - f.rcv_nxt;
        if (ahead + len <= kWindowBytes) {
          const auto r = f.held.insert(f.rcv_nxt, tcp.seq, payload, reassembly_);
          env_.counters.tcp_ooo_bytes_held.add(r.stored);
          env_.counters.tcp_ooo_bytes_dropped.add(r.dropped);
        } else {
          env_.counters.tcp_ooo_bytes_dropped.add(len);
        }
      }
      // A duplicate ACK (with SACK blocks) for each such segment. While the
      // socket refuses data stay quiet: duplicate ACKs come when it drains.
      if (!f.has(TcpFlag::refused)) owe_dup_ack(f, slot);
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
      wrote_to_host(f, written);
      if (written < len - static_cast<std::size_t>(offset)) {
        env_.counters.tcp_socket_full.add();
        change(f, TcpFlag::refused, true);
        f.room = 0;
        want_writable(f, slot);
        owe_ack(f, slot);
        return;
      }
      // Less than a full segment of room: the guest stops; it hears when
      // the socket drains.
      if (f.room < std::max<std::uint32_t>(env_.cfg.mtu, 1u << kWindowShift)) want_writable(f, slot);
      // The hole may be filled now: what was held behind it follows.
      if (!deliver_held(f, slot)) return;
    }
    owe_ack(f, slot);
  } else if (seq_lt(tcp.seq, f.rcv_nxt)) {
    owe_ack(f, slot);  // a keepalive probe
  }
  if (tcp.has(tcp_flag::kFin) && !f.has(TcpEvent::guest_fin) && tcp.seq + static_cast<std::uint32_t>(len) == f.rcv_nxt) {
    change(f, TcpEvent::guest_fin);
    f.rcv_nxt += 1;
    ::shutdown(f.sock.get(), SHUT_WR);
    owe_ack(f, slot);
  }
}

bool TcpFlows::deliver_held(Flow& f, std::uint32_t slot) {
  for (;;) {
    const auto bytes = f.held.ready(f.rcv_nxt, reassembly_);
    if (bytes.empty()) return true;
    const ssize_t n = ::send(f.sock.get(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      queue_reset(f.key, f.snd_nxt, f.rcv_nxt, true);
      close(slot, false);
      return false;
    }
    const auto written = static_cast<std::size_t>(std::max<ssize_t>(n, 0));
    wrote_to_host(f, written);
    env_.counters.tcp_ooo_bytes_delivered.add(written);
    if (written < bytes.size()) {
      // The socket is full; the rest stays held (the guest need not resend
      // it) and goes when the socket drains.
      want_writable(f, slot);
      return true;
    }
  }
}

void TcpFlows::wrote_to_host(Flow& f, std::size_t written) {
  f.rcv_nxt += static_cast<std::uint32_t>(written);
  env_.counters.tcp_bytes_to_host.add(written);
  f.room = f.room > written ? f.room - static_cast<std::uint32_t>(written) : 0;
  if (f.room < f.room_measured / 2) measure_room(f);
}

bool TcpFlows::closing_done(const Flow& f) const noexcept {
  return f.has(TcpEvent::guest_fin) && f.has(TcpEvent::fin_out) && f.snd_una == f.fin_seq + 1;
}

}  // namespace vnk::usernet
