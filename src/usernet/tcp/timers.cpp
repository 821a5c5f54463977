// Timers: retransmission (rewinding to the first unacknowledged byte) and
// the connect timeout.
#include "usernet/tcp/tcp_flows.hpp"

#include <sys/socket.h>

#include <algorithm>

namespace vnk::usernet {

using namespace packet;

void TcpFlows::rewind(Flow& f, std::uint32_t slot) {
  // The socket holds exactly the unacknowledged bytes: peek from the start.
  f.snd_nxt = f.snd_una;
  change(f, TcpFlag::fin_sent, false);
  f.dup_acks = 0;
  if (peek_offset_) {
    const int zero = 0;
    ::setsockopt(f.sock.get(), SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero);
  }
  make_ready(f, slot);
  env_.counters.tcp_retransmits.add();
}

void TcpFlows::on_tick(std::uint64_t now_ms) {
  now_ms_ = now_ms;
  for (std::uint32_t s = 0; s < flows_.extent(); ++s) {
    Flow& f = flows_[s];
    if (!f.live || f.deadline_ms == 0 || now_ms < f.deadline_ms) continue;
    if (f.connecting()) {
      // No answer: give up silently, as a lost SYN would look.
      env_.counters.tcp_connect_timeouts.add();
      close(s, false);
      continue;
    }
    if (++f.retries > kMaxRetries) {
      env_.counters.tcp_timeouts.add();
      queue_reset(f.key, f.snd_nxt, f.rcv_nxt, true);
      close(s, true);
      continue;
    }
    f.rto_ms = std::min(f.rto_ms * 2, kMaxRtoMs);
    f.deadline_ms = now_ms + f.rto_ms;
    if (!f.established()) {
      owe_syn(f, s);
    } else {
      rewind(f, s);
    }
  }
}

}  // namespace vnk::usernet
