// Timers: retransmission (RFC 6298 timeout, back to the first
// unacknowledged byte), zero-window probes, the connect timeout, abandoning
// a flow whose guest stopped answering, and the bound on FIN-WAIT.
#include "usernet/tcp/tcp_flows.hpp"

#include <sys/socket.h>

#include <algorithm>

#include "usernet/tcp/sequence.hpp"

namespace vnk::usernet {

using namespace packet;

void TcpFlows::rewind(Flow& f, std::uint32_t slot) {
  // The socket holds exactly the unacknowledged bytes: peek from the start
  // (data_or_fin skips what the guest has SACKed).
  f.snd_nxt = f.snd_una;
  change(f, TcpFlag::fin_sent, false);
  change(f, TcpFlag::recovering, false);
  f.dup_acks = 0;
  sync_peek_offset(f);
  make_ready(f, slot);
  env_.counters.tcp_rto_expired.add();
}

void TcpFlows::on_tick(std::uint64_t now_ms) {
  now_ms_ = now_ms;
  for (std::uint32_t s = 0; s < flows_.extent(); ++s) {
    Flow& f = flows_[s];
    if (!f.live) continue;
    if (f.has(TcpEvent::fin_out) && f.snd_una == f.fin_seq + 1 && !f.has(TcpEvent::guest_fin) &&
        now_ms - f.last_guest_ms > kFinWaitMs) {
      // Our FIN was acknowledged long ago and the guest has been silent
      // since: FIN-WAIT-2 does not last for ever.
      env_.counters.tcp_fin_wait_timeouts.add();
      queue_reset(f.key, f.snd_nxt, f.rcv_nxt, true);
      close(s, true);
      continue;
    }
    if (f.deadline_ms == 0 || now_ms < f.deadline_ms) continue;
    f.deadline_ms = 0;
    if (f.connecting()) {
      // No answer: give up silently, as a lost SYN would look.
      env_.counters.tcp_connect_timeouts.add();
      close(s, false);
      continue;
    }
    const bool probe = f.established() && f.snd_una == f.snd_nxt;
    if (probe && !f.has(TcpFlag::window_blocked)) continue;  // the window opened meanwhile
    if (++f.retries > kMaxRetries) {
      // The guest stopped answering (retransmissions or window probes):
      // abandon the flow, and reset the host peer so it knows.
      env_.counters.tcp_timeouts.add();
      queue_reset(f.key, f.snd_nxt, f.rcv_nxt, true);
      close(s, true);
      continue;
    }
    f.rtt.back_off();
    f.rtt.cancel();  // Karn: whatever is outstanding is about to be sent again
    arm_timer(f);
    if (probe) {
      change(f, TcpFlag::probe_owed, true);
      env_.counters.tcp_window_probes.add();
      owe_ack(f, s, 0);
    } else if (!f.established()) {
      owe_syn(f, s);
    } else {
      rewind(f, s);
    }
  }
}

}  // namespace vnk::usernet
