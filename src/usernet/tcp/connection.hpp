// One guest TCP connection and its host socket: the record, and its state as
// events (what has happened, never undone) and flags (conditions that come
// and go). Every change goes through TcpFlows::change(), which logs it at
// debug level, so a connection's history can be read from the log.
//
// Lifecycle, from the events:
//   outbound (guest SYN):   {} --host_connected--> SYN-ACK owed --established--> data
//   inbound (port forward): {inbound, host_connected} --established (guest SYN-ACK)--> data
//   either way, then guest_fin and host_eof in any order; the flow closes
//   once both FINs are acknowledged, on RST, or on timeout.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/unique_fd.hpp"
#include "usernet/flow_table.hpp"
#include "usernet/tcp/reassembly.hpp"
#include "usernet/tcp/rtt.hpp"
#include "usernet/tcp/sack_scoreboard.hpp"

namespace vnk::usernet {

enum class TcpEvent : std::uint8_t {
  inbound = 1 << 0,         // opened by a forwarded host connection: our SYN goes to the guest
  host_connected = 1 << 1,  // the host socket is connected
  established = 1 << 2,     // the guest completed the handshake
  guest_fin = 1 << 3,       // the guest's FIN arrived; the socket is shut for writing
  host_eof = 1 << 4,        // the host peer shut its side (EPOLLRDHUP/EPOLLHUP)
  fin_out = 1 << 5,         // our FIN has been sent (at fin_seq), at least once
};
inline constexpr std::array<std::string_view, 6> kTcpEventNames = {"inbound",   "host_connected", "established",
                                                                    "guest_fin", "host_eof",       "fin_out"};
static_assert(static_cast<unsigned>(TcpEvent::fin_out) == 1u << (kTcpEventNames.size() - 1), "a name per event");

enum class TcpFlag : std::uint8_t {
  fin_sent = 1 << 0,        // our FIN is at snd_nxt - 1 (a rewind takes it back)
  want_write = 1 << 1,      // EPOLLOUT armed: the socket was full, or its room ran low
  refused = 1 << 2,         // the socket took less than a segment: the guest must resend
  window_blocked = 1 << 3,  // the guest's window is full: wait for its ACKs
  syn_owed = 1 << 4,        // our SYN-ACK (or SYN) waits in the ACK queue
  recovering = 1 << 5,      // a loss was seen (duplicate ACKs, SACK): holes are being sent again
  probe_owed = 1 << 6,      // the guest's window is zero: a window probe waits in the ACK queue
  peek_offset_on = 1 << 7,  // SO_PEEK_OFF is set on the socket (first needed with bytes in flight)
};
inline constexpr std::array<std::string_view, 8> kTcpFlagNames = {
    "fin_sent", "want_write", "refused", "window_blocked", "syn_owed", "recovering", "probe_owed", "peek_offset_on"};
static_assert(static_cast<unsigned>(TcpFlag::peek_offset_on) == 1u << (kTcpFlagNames.size() - 1), "a name per flag");

// "a|b|c" for a set of events or flags.
template <std::size_t N>
std::string bit_names(std::uint8_t bits, const std::array<std::string_view, N>& names) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i) {
    if ((bits & (1u << i)) == 0) continue;
    if (!out.empty()) out += '|';
    out += names[i];
  }
  return out.empty() ? "-" : out;
}

// The FlowHeader (key, generation, live) is the flow table's.
struct TcpConnection : FlowHeader {
  UniqueFd sock;
  std::uint8_t events = 0;       // TcpEvent bits; change() only sets them
  std::uint8_t flags = 0;        // TcpFlag bits; change() sets and clears them
  // Toward the guest: [snd_una, snd_nxt) peeked and sent, not yet acked;
  // snd_max is the highest ever sent (beyond snd_nxt after a timeout sent
  // us back to snd_una); fin_seq is our FIN's number once fin_out.
  std::uint32_t iss = 0, snd_una = 0, snd_nxt = 0, snd_max = 0, fin_seq = 0;
  // Loss recovery: holes below recovery_point (snd_max when it began) are
  // sent again from rexmit_nxt on, guided by the guest's SACK blocks.
  std::uint32_t recovery_point = 0, rexmit_nxt = 0;
  SackScoreboard sacked;
  RttEstimator rtt;
  // From the guest: the next byte expected.
  std::uint32_t rcv_nxt = 0;
  std::uint32_t guest_window = 0;   // bytes, already scaled
  std::uint32_t room = 0;           // bytes the host socket can take at most: as last measured, less what was written since
  std::uint32_t room_measured = 0;  // room at the last measurement
  std::uint16_t guest_mss = 536;
  std::uint8_t guest_wscale = 0;
  bool scaling = false;            // both sides sent window scale
  bool sack_ok = false;            // both sides sent SACK-permitted: our ACKs carry SACK blocks
  bool peek_offset = true;         // the socket's family has SO_PEEK_OFF here (else the discard-area fallback)
  ReassemblyQueue held;            // guest data beyond rcv_nxt, waiting for the hole before it
  bool in_ready = false, in_acks = false;  // queued in TcpFlows' ready_ / acks_
  std::uint8_t acks_to_send = 0;   // pure ACKs owed (3 = ask the guest to resend now)
  std::uint8_t dup_acks = 0;
  std::uint8_t retries = 0;       // timeouts in a row without progress (abandoned past TcpFlows::kMaxRetries)
  std::uint64_t deadline_ms = 0;  // retransmit, window-probe or connect deadline, 0 = none
  std::uint64_t last_guest_ms = 0;  // when the guest last sent a segment (bounds the closing states)

  [[nodiscard]] bool has(TcpEvent e) const noexcept { return (events & static_cast<std::uint8_t>(e)) != 0; }
  [[nodiscard]] bool has(TcpFlag f) const noexcept { return (flags & static_cast<std::uint8_t>(f)) != 0; }
  // The handshake stages, read off the events.
  [[nodiscard]] bool connecting() const noexcept { return !has(TcpEvent::host_connected); }
  [[nodiscard]] bool syn_sent() const noexcept { return has(TcpEvent::inbound) && !has(TcpEvent::established); }
  [[nodiscard]] bool syn_acked() const noexcept {
    return !has(TcpEvent::inbound) && has(TcpEvent::host_connected) && !has(TcpEvent::established);
  }
  [[nodiscard]] bool established() const noexcept { return has(TcpEvent::established); }
  // A frame without data is owed: pure ACKs, our SYN(-ACK), a window probe.
  [[nodiscard]] bool owes_control() const noexcept {
    return acks_to_send != 0 || has(TcpFlag::syn_owed) || has(TcpFlag::probe_owed);
  }
  // One past the last data byte sent (our FIN, once sent, follows it).
  [[nodiscard]] std::uint32_t data_end() const noexcept { return has(TcpEvent::fin_out) ? fin_seq : snd_max; }
  // Data bytes in [snd_una, snd_nxt): the peek offset into the socket.
  [[nodiscard]] std::uint32_t data_in_flight() const noexcept {
    return snd_nxt - snd_una - (has(TcpFlag::fin_sent) ? 1 : 0);
  }
};

}  // namespace vnk::usernet
