// Host -> guest: the window we offer, segments built from peeks at the host
// socket, pure ACKs, SYN(-ACK)s and resets, and the guest's ACKs for them.
#include "usernet/tcp/tcp_flows.hpp"

#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>

#include "base/byte_order.hpp"
#include "base/epoll_ops.hpp"
#include "memory/iovec_ops.hpp"
#include "usernet/tcp/sequence.hpp"

namespace vnk::usernet {

using namespace packet;

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

void TcpFlows::measure_fresh_room(Flow& f) noexcept {
  // A new socket has nothing queued and the namespace's default send
  // buffer: measured on the first, not with two system calls per
  // connection. (The room is measured again as data goes out.)
  if (fresh_room_ == 0) {
    measure_room(f);
    fresh_room_ = f.room;
    return;
  }
  f.room = f.room_measured = fresh_room_;
}

void TcpFlows::want_writable(Flow& f, std::uint32_t slot) {
  if (f.has(TcpFlag::want_write)) return;
  change(f, TcpFlag::want_write, true);
  epoll_mod(env_.epoll_fd, f.sock.get(), kEstablishedEvents | EPOLLOUT, flows_.tag(slot));
}

std::size_t TcpFlows::write_segment(std::span<std::byte> out, const Key& k, const TcpFields& t,
                                    std::size_t payload_len, const Checksum& payload_sum) noexcept {
  return write_tcp_frame_headers(
      out, TcpEndpoints{env_.guests.mac_for(k.guest), env_.cfg.gateway_mac, k.remote, k.guest}, t,
      payload_len, payload_sum, ip_id_++);
}

TcpFields TcpFlows::ack_fields(const Flow& f) const noexcept {
  return TcpFields{f.key.remote_port, f.key.guest_port, f.snd_nxt, f.rcv_nxt, tcp_flag::kAck, window_field(f), {}, {}, false, {}};
}

void TcpFlows::queue_control(const Key& k, const TcpFields& t) {
  if (!env_.guests.known()) return;
  auto slot = env_.control.reserve();
  if (slot.empty()) {
    env_.counters.drop_queue_full.add();
    return;
  }
  env_.control.commit(write_segment(slot, k, t));
}

TcpFields TcpFlows::syn_fields(const Flow& f) const noexcept {
  const bool inbound = f.syn_sent();
  return TcpFields{f.key.remote_port,
                   f.key.guest_port,
                   f.iss,
                   inbound ? 0 : f.rcv_nxt,
                   static_cast<std::uint8_t>(inbound ? tcp_flag::kSyn : tcp_flag::kSyn | tcp_flag::kAck),
                   inbound ? std::uint16_t{0xffff} : window_field(f),
                   static_cast<std::uint16_t>(env_.cfg.mtu - ip_header_size(f.key.guest) - kTcpHeaderSize),
                   inbound || f.scaling ? std::optional<std::uint8_t>(kWindowShift) : std::nullopt,
                   inbound || f.sack_ok,
                   {}};
}

void TcpFlows::owe_syn(Flow& f, std::uint32_t slot) {
  // Written by next_frame() from the flow's state, like a pure ACK: a burst
  // of thousands of connects cannot overflow a queue and lose SYN-ACKs.
  change(f, TcpFlag::syn_owed, true);
  if (!f.in_acks) {
    f.in_acks = true;
    acks_.push_back(slot);
  }
}

void TcpFlows::queue_reset(const Key& k, std::uint32_t seq, std::uint32_t ack, bool with_ack) {
  if (!env_.guests.known()) return;
  queue_control(k, TcpFields{k.remote_port, k.guest_port, seq, with_ack ? ack : 0,
                             static_cast<std::uint8_t>(tcp_flag::kRst | (with_ack ? tcp_flag::kAck : 0)), 0, {}, {},
                             false, {}});
  env_.counters.tcp_resets_to_guest.add();
}

void TcpFlows::owe_ack(Flow& f, std::uint32_t slot, std::uint8_t count) {
  f.acks_to_send = std::max(f.acks_to_send, count);
  if (!f.in_acks) {
    f.in_acks = true;
    acks_.push_back(slot);
  }
}

void TcpFlows::owe_dup_ack(Flow& f, std::uint32_t slot) {
  owe_ack(f, slot, static_cast<std::uint8_t>(std::min(f.acks_to_send + 1, 8)));
}

void TcpFlows::make_ready(Flow& f, std::uint32_t slot) {
  change(f, TcpFlag::window_blocked, false);
  if (!f.in_ready) {
    f.in_ready = true;
    ready_.push_back(slot);
  }
}

void TcpFlows::handle_ack(Flow& f, std::uint32_t slot, const Tcp& tcp) {
  const std::uint32_t window = std::uint32_t{tcp.window} << (f.scaling ? f.guest_wscale : 0);
  if (f.syn_acked()) {
    if (tcp.ack != f.iss + 1) return;
    change(f, TcpEvent::established);
    f.snd_una = f.snd_nxt = f.snd_max = f.iss + 1;
    f.rtt.acked(tcp.ack, now_ms_);  // the handshake's round trip, unless our SYN-ACK was sent twice
    f.deadline_ms = 0;
    f.retries = 0;
    f.guest_window = window;
    make_ready(f, slot);  // the host may have spoken first
    return;
  }
  const std::uint32_t ack = tcp.ack;
  const bool sack_info = f.sack_ok && tcp.sack_count != 0;
  if (seq_lt(f.snd_una, ack) && seq_le(ack, f.snd_max)) {
    std::uint32_t data = ack - f.snd_una;
    if (f.has(TcpEvent::fin_out) && ack == f.fin_seq + 1) --data;  // our FIN takes a sequence number, not a byte
    // Drop the acknowledged bytes from the socket; the kernel moves the peek
    // offset back by as much.
    while (data > 0) {
      const ssize_t n = ::recv(f.sock.get(), nullptr, data, MSG_TRUNC | MSG_DONTWAIT);
      if (n <= 0) break;
      data -= static_cast<std::uint32_t>(n);
    }
    f.snd_una = ack;
    if (seq_lt(f.snd_nxt, ack)) {
      // After a timeout sent us back, the guest acknowledged bytes it had
      // from before: carry on behind them.
      f.snd_nxt = ack;
      if (f.has(TcpEvent::fin_out) && ack == f.fin_seq + 1) change(f, TcpFlag::fin_sent, true);
      sync_peek_offset(f);
    }
    f.rtt.acked(ack, now_ms_);
    f.dup_acks = 0;
    f.retries = 0;
    f.sacked.advance(ack);
    if (sack_info) take_sack(f, tcp);
    if (f.has(TcpFlag::recovering)) {
      if (seq_le(f.recovery_point, ack)) {
        change(f, TcpFlag::recovering, false);
      } else {
        make_ready(f, slot);  // a partial ACK: the next hole goes now
      }
    }
    f.deadline_ms = 0;
    if (f.snd_una != f.snd_nxt) arm_timer(f);
    if (f.has(TcpFlag::window_blocked)) make_ready(f, slot);
  } else if (ack == f.snd_una && f.snd_nxt != f.snd_una) {
    // SACK blocks tell what the guest holds on any such segment (one that
    // carries data, too). A duplicate ACK (RFC 5681) carries nothing new;
    // with SACK blocks its window may differ.
    if (sack_info) take_sack(f, tcp);
    const bool duplicate =
        tcp.payload_len == 0 && !tcp.has(tcp_flag::kFin) && (window == f.guest_window || sack_info);
    if (duplicate) ++f.dup_acks;
    if (f.has(TcpFlag::recovering)) {
      make_ready(f, slot);  // new SACK blocks may show another hole
    } else if (duplicate && (f.dup_acks >= 3 || f.sacked.bytes() > 2u * f.guest_mss)) {
      // Three duplicate ACKs, or more than two segments SACKed past the
      // first unacknowledged byte (RFC 6675's test for a lost segment).
      start_recovery(f, slot);
    }
  } else if (ack == f.snd_una && f.snd_una == f.snd_nxt && window == 0) {
    f.retries = 0;  // an answer to a window probe: the guest is alive, its window still shut
  }
  if (window > f.guest_window && f.has(TcpFlag::window_blocked)) {
    if (f.guest_window == 0 && f.snd_una == f.snd_nxt) {
      // The shut window opened: the probe timer and its backoff end here,
      // so new data starts with a fresh retransmission timeout.
      f.deadline_ms = 0;
      f.rtt.reset_backoff();
    }
    make_ready(f, slot);
  }
  f.guest_window = window;
}

void TcpFlows::take_sack(Flow& f, const Tcp& tcp) {
  const auto added = f.sacked.add(std::span(tcp.sack).first(tcp.sack_count), f.snd_una, f.snd_max, f.data_end());
  env_.counters.tcp_dsack_blocks.add(added.duplicates);
  env_.counters.tcp_sack_blocks_ignored.add(added.invalid);
}

void TcpFlows::start_recovery(Flow& f, std::uint32_t slot) {
  change(f, TcpFlag::recovering, true);
  f.recovery_point = f.snd_max;
  f.rexmit_nxt = f.snd_una;
  f.rtt.cancel();  // Karn: what is resent now gives no sample
  env_.counters.tcp_fast_recoveries.add();
  make_ready(f, slot);
}

std::optional<SackBlock> TcpFlows::next_hole(const Flow& f) const noexcept {
  const std::uint32_t from = seq_lt(f.rexmit_nxt, f.snd_una) ? f.snd_una : f.rexmit_nxt;
  std::optional<SackBlock> hole;
  if (!f.sacked.empty()) {
    hole = f.sacked.next_hole(from);
  } else if (from == f.snd_una) {
    hole = SackBlock{from, f.data_end()};  // no SACK: the first unacknowledged segment, once per ACK that moves
  }
  if (!hole) return std::nullopt;
  // Only data already sent in this pass (the caller cuts it to a segment).
  const std::uint32_t limit = seq_lt(f.snd_nxt, f.data_end()) ? f.snd_nxt : f.data_end();
  if (!seq_lt(hole->left, limit)) return std::nullopt;
  if (seq_lt(limit, hole->right)) hole->right = limit;
  return hole;
}

std::size_t TcpFlows::pure_ack(std::span<const iovec> buffer, const Flow& f) {
  std::array<std::byte, kMaxDataHeaders + 40> h{};  // room for SACK blocks
  TcpFields t = ack_fields(f);
  std::array<SackBlock, kMaxSackBlocks> blocks;
  if (f.sack_ok && !f.held.empty()) t.sack = std::span(blocks).first(f.held.sack_blocks(blocks));
  const std::size_t n = write_segment(h, f.key, t);
  return iov_write(buffer, 0, std::span(h).first(n)) == n ? n : 0;
}

std::size_t TcpFlows::window_probe(std::span<const iovec> buffer, const Flow& f) {
  std::array<std::byte, kMaxDataHeaders> h{};
  TcpFields t = ack_fields(f);
  t.seq = f.snd_una - 1;  // already acknowledged: the guest answers with an ACK (RFC 9293 §3.8.6.1)
  const std::size_t n = write_segment(h, f.key, t);
  return iov_write(buffer, 0, std::span(h).first(n)) == n ? n : 0;
}

void TcpFlows::arm_timer(Flow& f) noexcept {
  if (f.deadline_ms == 0) f.deadline_ms = now_ms_ + f.rtt.rto_ms();
}

void TcpFlows::sync_peek_offset(Flow& f) {
  if (!f.peek_offset) return;
  const int offset = static_cast<int>(f.data_in_flight());
  // With nothing in flight a peek from the queue's head is what the offset
  // would give: the socket gets one only once bytes are in flight, so a
  // request/response connection never pays for the system call.
  if (offset == 0 && !f.has(TcpFlag::peek_offset_on)) return;
  ::setsockopt(f.sock.get(), SOL_SOCKET, SO_PEEK_OFF, &offset, sizeof offset);
  change(f, TcpFlag::peek_offset_on, true);
}

std::size_t TcpFlows::segment_room(std::span<const iovec> buffer, const Flow& f) const noexcept {
  const std::size_t headers = data_headers(f);
  const std::size_t room = iov_length(buffer) > headers ? iov_length(buffer) - headers : 0;
  const bool tso = env_.rx_offloads.partial_csum && (f.key.is_v4() ? env_.rx_offloads.tso4 : env_.rx_offloads.tso6);
  const std::size_t segment = tso ? SIZE_MAX : f.guest_mss;
  return std::min<std::size_t>({segment, room, ip_max_payload(f.key.guest) - kTcpHeaderSize});
}

TcpFlows::Peek TcpFlows::peek_at(std::span<const iovec> buffer, Flow& f, std::uint32_t slot, std::uint32_t seq,
                                 std::size_t max) {
  const std::uint32_t offset = seq - f.snd_una;
  if (!f.peek_offset && offset > kPeekFallbackWindow) return Peek{0, true, false};  // beyond the discard area (the window prevents it)
  // With SO_PEEK_OFF the kernel's offset sits at snd_nxt; a resend moves it
  // to `seq` for one peek and back. Without it each peek starts at the
  // queue's head: the `offset` bytes before `seq` go to the discard area
  // first (the window keeps them within it), the rest into the guest's buffer.
  if (!f.has(TcpFlag::peek_offset_on)) sync_peek_offset(f);  // turns it on once bytes are in flight
  const bool moved = f.peek_offset && offset != f.data_in_flight();
  if (moved) {
    const int off = static_cast<int>(offset);
    ::setsockopt(f.sock.get(), SOL_SOCKET, SO_PEEK_OFF, &off, sizeof off);
  }
  std::array<iovec, kDiscardIovecs + 64> iov;  // [discard...][guest buffer tail...]
  std::size_t skip = 0;
  for (std::size_t left = f.peek_offset ? 0 : offset; left > 0 && skip < kDiscardIovecs; left -= iov[skip++].iov_len)
    iov[skip] = iovec{discard_.data(), std::min(left, discard_.size())};
  const std::size_t nt = iov_slice(buffer, data_headers(f), max, std::span(iov).subspan(skip));
  msghdr m{};
  m.msg_iov = iov.data();
  m.msg_iovlen = skip + nt;
  const ssize_t got = ::recvmsg(f.sock.get(), &m, MSG_PEEK | MSG_DONTWAIT);
  if (moved) sync_peek_offset(f);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Peek{0, true, false};  // wait for the next edge
    env_.counters.tcp_host_resets.add();
    queue_reset(f.key, f.snd_nxt, f.rcv_nxt, true);
    close(slot, false);
    return Peek{0, false, true};
  }
  const std::size_t skipped = f.peek_offset ? 0 : std::min<std::size_t>(static_cast<std::size_t>(got), offset);
  env_.counters.tcp_bytes_repeeked.add(skipped);
  return Peek{static_cast<std::size_t>(got) - skipped, false, false};
}

void TcpFlows::finish_segment(std::span<const iovec> buffer, const Flow& f, const TcpFields& t, std::size_t len,
                              net::NetHeader& header) {
  std::array<std::byte, kMaxDataHeaders> h{};
  if (!env_.rx_offloads.partial_csum) {
    Checksum payload;
    add_iov(payload, buffer, data_headers(f), len);
    iov_write(buffer, 0, std::span(h).first(write_segment(h, f.key, t, len, payload)));
    return;
  }
  // The consumer sums from csum_start to the end and stores the result at
  // csum_offset; the field starts out as the pseudo-header's sum (folded,
  // not complemented), as Linux leaves it for CHECKSUM_PARTIAL.
  const std::size_t n = write_segment(h, f.key, t, len, {});
  const std::size_t tcp_start = eth_ip_size(f.key.guest);
  Checksum pseudo;
  add_pseudo_header(pseudo, f.key.remote, f.key.guest, ip_proto::kTcp, static_cast<std::uint32_t>(kTcpHeaderSize + len));
  store_be<std::uint16_t>(h.data() + tcp_start + 16, static_cast<std::uint16_t>(~pseudo.finish()));
  iov_write(buffer, 0, std::span(h).first(n));
  header.flags = net::NetHeader::kFlagNeedsCsum;
  header.csum_start = static_cast<std::uint16_t>(tcp_start);
  header.csum_offset = 16;
  if (len > f.guest_mss) {
    header.gso_type = f.key.is_v4() ? net::NetHeader::kGsoTcpV4 : net::NetHeader::kGsoTcpV6;
    header.gso_size = f.guest_mss;
    header.hdr_len = static_cast<std::uint16_t>(data_headers(f));
  }
}

std::size_t TcpFlows::resend_hole(std::span<const iovec> buffer, Flow& f, std::uint32_t slot, net::NetHeader& header) {
  const auto hole = next_hole(f);
  if (!hole) return 0;
  const std::size_t max = std::min<std::size_t>({segment_room(buffer, f), f.guest_mss, hole->right - hole->left});
  if (max == 0) return 0;
  const Peek got = peek_at(buffer, f, slot, hole->left, max);
  if (got.len == 0) return 0;
  const std::size_t len = got.len;
  TcpFields t = ack_fields(f);
  t.seq = hole->left;
  t.flags |= tcp_flag::kPsh;
  finish_segment(buffer, f, t, len, header);
  f.rexmit_nxt = hole->left + static_cast<std::uint32_t>(len);
  arm_timer(f);
  if (f.acks_to_send == 1) f.acks_to_send = 0;  // this segment carries the ACK
  env_.counters.tcp_retransmits.add();
  env_.counters.tcp_bytes_to_guest.add(len);
  return data_headers(f) + len;
}

std::size_t TcpFlows::data_or_fin(std::span<const iovec> buffer, Flow& f, std::uint32_t slot, bool& more,
                                  net::NetHeader& header) {
  more = false;
  if (!f.established()) return 0;
  if (f.has(TcpFlag::recovering)) {
    if (const std::size_t n = resend_hole(buffer, f, slot, header); n != 0 || !f.live) {
      more = f.live;
      return n;
    }
  }
  if (f.has(TcpFlag::fin_sent)) return 0;
  // After a timeout sent us back, skip what the guest has SACKed.
  bool skipped = false;
  while (seq_lt(f.snd_nxt, f.snd_max)) {
    const auto end = f.sacked.range_end(f.snd_nxt);
    if (!end) break;
    f.snd_nxt = *end;
    skipped = true;
  }
  if (skipped) sync_peek_offset(f);
  const std::uint32_t in_flight = f.snd_nxt - f.snd_una;
  const std::uint32_t window = f.peek_offset ? f.guest_window : std::min(f.guest_window, kPeekFallbackWindow);
  if (in_flight >= window) {
    change(f, TcpFlag::window_blocked, true);
    // A shut window is probed on the timer; a guest that opens it sends an
    // ACK, and the probe asks for that ACK again should it be lost.
    if (f.snd_una == f.snd_nxt) arm_timer(f);
    return 0;
  }
  const std::size_t max = std::min<std::size_t>(window - in_flight, segment_room(buffer, f));
  if (max == 0) {
    env_.counters.drop_too_big_for_guest.add();
    return 0;
  }
  const std::uint32_t seq = f.snd_nxt;
  const Peek got = peek_at(buffer, f, slot, seq, max);
  if (got.would_block || got.failed) return 0;
  const std::size_t len = got.len;
  // Nothing new: the end of the stream once the peer has closed (a peek at
  // an offset past the data returns 0 then too); otherwise more is to come.
  const bool eof = len == 0 && (f.peek_offset || f.has(TcpEvent::host_eof));
  if (len == 0 && !eof) return 0;
  TcpFields t = ack_fields(f);
  if (eof) {
    change(f, TcpFlag::fin_sent, true);
    f.fin_seq = seq;
    change(f, TcpEvent::fin_out);
    t.flags |= tcp_flag::kFin;
  } else {
    t.flags |= tcp_flag::kPsh;
    // A short peek drained the socket: the next edge says when there is
    // more, unless the peer has closed (then the next peek finds the end).
    more = len == max || f.has(TcpEvent::host_eof);
  }
  finish_segment(buffer, f, t, len, header);
  f.snd_nxt += static_cast<std::uint32_t>(len) + (eof ? 1 : 0);
  if (seq == f.snd_max) f.rtt.start(seq, now_ms_);  // new data: time it (Karn: never a resend)
  if (seq_lt(f.snd_max, f.snd_nxt)) f.snd_max = f.snd_nxt;
  else env_.counters.tcp_retransmits.add();
  arm_timer(f);
  if (f.acks_to_send == 1) f.acks_to_send = 0;  // this segment carries the ACK
  env_.counters.tcp_bytes_to_guest.add(len);
  return data_headers(f) + len;
}

}  // namespace vnk::usernet
