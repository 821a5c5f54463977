// TCP: each guest connection is one host socket. There is no second TCP
// stack; usernet translates between the guest's segments and the socket.
//
// Guest -> host. A SYN starts a nonblocking connect(); the guest gets its
// SYN-ACK only once the connect completes, a RST if it is refused, and
// nothing if it times out (the guest's own SYN retries run meanwhile). Data
// is written from guest memory straight into the socket; only what the
// socket took is acknowledged. When the socket is full, the rest is
// acknowledged later with duplicate ACKs that make the guest resend at once.
//
// Host -> guest. Data stays in the host socket until the guest acknowledges
// it: it is read with MSG_PEEK at SO_PEEK_OFF straight into the guest's RX
// buffer, within the guest's advertised window (scaled) and MSS, and
// discarded from the socket as ACKs arrive. A loss -- three duplicate ACKs,
// or SACK blocks beyond a hole -- starts recovery: only the holes the
// guest's SACK blocks leave (without SACK, the first unacknowledged segment
// after each ACK) are peeked again, at their offset, and sent. The
// retransmission timer (RFC 6298, RttEstimator) sends us back to the first
// unacknowledged byte, skipping what the guest SACKed; after kMaxRetries
// timeouts in a row the flow is abandoned. A zero window is probed on the
// same timer. End of stream becomes a FIN after the last byte.
//
// Kernels before 6.9 have no SO_PEEK_OFF for TCP (HostFeatures). There each
// peek starts at the head of the receive queue: the bytes in flight (sent,
// not yet acknowledged) are read again into a discard area -- a few iovecs
// that all point at one shared scratch buffer -- and only the new bytes
// behind them land in the guest's buffer, so guest memory still receives
// each byte once. The discard area bounds what may be in flight
// (kPeekFallbackWindow); retransmission, window and FIN logic are the same
// on both paths.
//
// Files: tcp_flows.cpp (the table, opening, dispatch, next frame),
// guest_to_host.cpp, host_to_guest.cpp, timers.cpp; connection.hpp holds the
// per-connection record and its events and flags, changed only through
// change(), which logs each change at debug level (--log-level debug).
//
// FIN and half-close work both ways (guest FIN -> shutdown(SHUT_WR)); RST
// both ways (a guest RST closes the socket with SO_LINGER 0 so the host peer
// sees a reset). The table is bounded; nothing is allocated per segment.
#pragma once

#include <sys/epoll.h>
#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "base/unique_fd.hpp"
#include "packet/tcp.hpp"
#include "usernet/flow_env.hpp"
#include "usernet/tcp/connection.hpp"
#include "usernet/guest_frame.hpp"

namespace vnk::usernet {

class TcpFlows {
 public:
  static constexpr std::size_t kMaxFlows = 131072;
  static constexpr std::uint8_t kWindowShift = 7;         // our window scale toward the guest
  static constexpr std::uint32_t kWindowBytes = 4u << 20;  // the largest window we advertise (scaled)
  // The window offered to the guest is what the host socket can still take
  // (Flow::room), so the guest never sends what would have to be dropped.
  // It is measured (SO_SNDBUF less SIOCOUTQ) again once half of the last
  // measurement is used up, and when the socket turns writable.
  // Timeouts in a row, without the guest acknowledging anything, before a
  // flow is abandoned (the host peer reset): with RttEstimator's backoff
  // from its 200 ms floor to its 30 s cap, about 80 s.
  static constexpr unsigned kMaxRetries = 8;
  // A flow whose FIN the guest acknowledged, waiting for the guest's FIN
  // while the guest sends nothing, is closed after this long (FIN-WAIT-2).
  static constexpr std::uint64_t kFinWaitMs = 120'000;
  static constexpr std::uint64_t kConnectTimeoutMs = 60'000;
  // Without SO_PEEK_OFF: the scratch buffer that in-flight bytes are peeked
  // into again, and how many iovecs may point at it. Their product bounds
  // the bytes in flight toward the guest; each segment re-reads up to that
  // much, so it trades window against copying.
  static constexpr std::size_t kDiscardChunk = 64u << 10;
  static constexpr std::size_t kDiscardIovecs = 8;
  static constexpr std::uint32_t kPeekFallbackWindow = kDiscardChunk * kDiscardIovecs;

  explicit TcpFlows(FlowEnv env);
  ~TcpFlows();

  // A connection accepted on a forwarded host port: usernet sends the guest
  // a SYN from remote_ip:remote_port to guest_ip:guest_port and joins the two
  // once the guest answers.
  //
  // Every entry point takes the time (monotonic milliseconds): nothing here
  // reads the clock, so tests drive time.
  // `host_family` is the socket's (AF_INET or AF_INET6).
  void accept_inbound(UniqueFd sock, int host_family, const IpAddress& guest_ip, std::uint16_t guest_port,
                      const IpAddress& remote_ip, std::uint16_t remote_port, std::uint64_t now_ms);
  // A segment from the guest, of the flow `key` names (either family).
  // `payload` is the segment's data in guest memory.
  void from_guest(const FlowKey& key, const packet::Tcp& tcp, std::span<const iovec> payload, std::uint64_t now_ms);
  // The host socket of `slot` reported `events`.
  void on_event(std::uint32_t slot, std::uint16_t gen, std::uint32_t events, std::uint64_t now_ms);
  // Writes the next frame for the guest (an ACK, data, a FIN) into `buffer`;
  // returns its length, or 0 when nothing waits. `header` gets the frame's
  // offload fields (a partial checksum, TSO) when env.rx_offloads allow them.
  std::size_t next_frame(std::span<const iovec> buffer, std::uint64_t now_ms, net::NetHeader& header);
  [[nodiscard]] bool has_frames() const noexcept { return !acks_.empty() || !ready_.empty(); }
  // Retransmission and connect timeouts.
  void on_tick(std::uint64_t now_ms);
  [[nodiscard]] std::size_t size() const noexcept { return flows_.size(); }

 private:
  // Headers of a data segment (which carries no options): the most, and a flow's.
  static constexpr std::size_t kMaxDataHeaders = kEthIpv6Size + packet::kTcpHeaderSize;
  [[nodiscard]] static std::size_t data_headers(const TcpConnection& f) noexcept {
    return eth_ip_size(f.key.guest) + packet::kTcpHeaderSize;
  }
  static constexpr std::uint32_t kEstablishedEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;

  using Key = FlowKey;
  using Flow = TcpConnection;

  // The one place a connection's events and flags change; logs at debug.
  void change(Flow& f, TcpEvent e);
  void change(Flow& f, TcpFlag flag, bool on);

  // Registers a new flow on `sock` (of `host_family`, epoll `events`) with a
  // fresh initial sequence number, outbound (connecting) or inbound (a
  // forwarded host connection); nullptr (the socket closed) when epoll
  // refuses it.
  Flow* add_flow(UniqueFd sock, int host_family, const Key& key, std::uint32_t events, bool inbound,
                 std::uint32_t& slot);
  void close(std::uint32_t slot, bool reset_host);
  void open(const Key& key, const packet::Tcp& tcp);
  void connected(std::uint32_t slot);
  void handle_ack(Flow& f, std::uint32_t slot, const packet::Tcp& tcp);
  void handle_data(Flow& f, std::uint32_t slot, const packet::Tcp& tcp, std::span<const iovec> payload);
  void owe_ack(Flow& f, std::uint32_t slot, std::uint8_t count = 1);
  // One more duplicate ACK (for a segment beyond rcv_nxt), up to a few.
  void owe_dup_ack(Flow& f, std::uint32_t slot);
  // Writes held out-of-order bytes that are now in order to the socket;
  // false when the flow was closed (the socket failed).
  bool deliver_held(Flow& f, std::uint32_t slot);
  // `written` guest bytes went into the socket: rcv_nxt, counters, room.
  void wrote_to_host(Flow& f, std::size_t written);
  void make_ready(Flow& f, std::uint32_t slot);
  // The timer expired: back to the first unacknowledged byte.
  void rewind(Flow& f, std::uint32_t slot);
  // The guest's SACK blocks onto the flow's scoreboard, counted.
  void take_sack(Flow& f, const packet::Tcp& tcp);
  // A loss was seen: send the holes again from the first unacknowledged byte.
  void start_recovery(Flow& f, std::uint32_t slot);
  // The next range to send again in recovery, at most one MSS.
  [[nodiscard]] std::optional<packet::SackBlock> next_hole(const Flow& f) const noexcept;
  // Peeks up to `max` bytes at `seq` (in [snd_una, snd_nxt]) into `buffer`
  // behind the headers. len 0 without would_block is the end of the stream.
  struct Peek {
    std::size_t len = 0;
    bool would_block = false;  // nothing there yet
    bool failed = false;       // the socket failed: the flow is closed
  };
  Peek peek_at(std::span<const iovec> buffer, Flow& f, std::uint32_t slot, std::uint32_t seq, std::size_t max);
  // Moves the socket's peek offset to where snd_nxt says it is; a socket
  // gets one only once bytes are in flight.
  void sync_peek_offset(Flow& f);
  // The largest payload a segment into `buffer` may carry for `f`: one MSS,
  // or with TSO as much as one IPv4 packet holds.
  [[nodiscard]] std::size_t segment_room(std::span<const iovec> buffer, const Flow& f) const noexcept;
  // Headers in front of `len` payload bytes already in `buffer`: the whole
  // checksum, or with partial checksums only the pseudo-header's sum for the
  // consumer to complete (`header` says so, and cuts a segment longer than
  // the guest's MSS into MSS-sized ones with TSO).
  void finish_segment(std::span<const iovec> buffer, const Flow& f, const packet::TcpFields& t, std::size_t len,
                      net::NetHeader& header);
  std::size_t resend_hole(std::span<const iovec> buffer, Flow& f, std::uint32_t slot, net::NetHeader& header);
  // Arms the retransmission (or window-probe) timer unless it runs.
  void arm_timer(Flow& f) noexcept;
  std::uint16_t window_field(const Flow& f) const noexcept;
  // Free space in the flow's socket send buffer, at most kWindowBytes.
  void measure_room(Flow& f) const noexcept;
  // measure_room() for a socket just opened or accepted.
  void measure_fresh_room(Flow& f) noexcept;
  // Arms EPOLLOUT on the socket so the guest learns when it drains.
  void want_writable(Flow& f, std::uint32_t slot);
  // TCP_NODELAY (the peek offset waits for bytes in flight: sync_peek_offset).
  void prepare_socket(int fd) const noexcept;
  // Headers (checksum included) of a segment from the flow's remote end to
  // the guest, for `payload_len` bytes whose checksum is `payload_sum`.
  std::size_t write_segment(std::span<std::byte> out, const Key& k, const packet::TcpFields& t,
                            std::size_t payload_len = 0, const packet::Checksum& payload_sum = {}) noexcept;
  [[nodiscard]] packet::TcpFields ack_fields(const Flow& f) const noexcept;
  // Whole segments without payload for the control queue.
  void queue_control(const Key& k, const packet::TcpFields& t);
  // Our SYN-ACK (or SYN, for an inbound flow) is due; next_frame() writes it.
  void owe_syn(Flow& f, std::uint32_t slot);
  [[nodiscard]] packet::TcpFields syn_fields(const Flow& f) const noexcept;
  void queue_reset(const Key& k, std::uint32_t seq, std::uint32_t ack, bool with_ack);
  std::size_t pure_ack(std::span<const iovec> buffer, const Flow& f);
  // A zero-window probe: an ACK one byte below snd_una, which the guest
  // must answer with its current window.
  std::size_t window_probe(std::span<const iovec> buffer, const Flow& f);
  std::size_t data_or_fin(std::span<const iovec> buffer, Flow& f, std::uint32_t slot, bool& more,
                          net::NetHeader& header);
  [[nodiscard]] bool closing_done(const Flow& f) const noexcept;

  FlowEnv env_;
  FlowTable<Flow> flows_{TagKind::tcp};
  std::deque<std::uint32_t> acks_;   // flows that owe the guest a pure ACK or their SYN(-ACK)
  std::deque<std::uint32_t> ready_;  // flows whose socket may have data or EOF to send
  ReassemblyBudget reassembly_;  // out-of-order bytes held, all flows
  std::uint64_t now_ms_ = 0;  // the time the current entry point was called with
  std::uint16_t ip_id_ = 0;
  std::uint64_t isn_secret_ = random_seed();  // keys the initial sequence numbers (RFC 6528)
  std::uint32_t fresh_room_ = 0;              // a new socket's room, once measured
  std::vector<std::byte> discard_;  // kDiscardChunk where a family lacks SO_PEEK_OFF, allocated once
};

}  // namespace vnk::usernet
