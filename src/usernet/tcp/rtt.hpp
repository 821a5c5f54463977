// The retransmission timeout toward the guest, from measured round trips
// (RFC 6298): a smoothed RTT and its variation, Karn's rule (a segment sent
// more than once gives no sample), and exponential backoff with a cap.
//
// One segment is timed at a time: start() when a new segment goes out,
// acked() with each cumulative ACK; a retransmission cancels the timing.
// Times are whole milliseconds, so the averages are kept in fixed point
// (SRTT x8, RTTVAR x4, as RFC 6298's gains 1/8 and 1/4 suggest).
#pragma once

#include <algorithm>
#include <cstdint>

#include "usernet/tcp/sequence.hpp"

namespace vnk::usernet {

class RttEstimator {
 public:
  // The floor is Linux's TCP_RTO_MIN (RFC 6298 allows one below 1 s); the
  // initial value before any sample is RFC 6298's 1 s; the cap bounds each
  // backoff step.
  static constexpr std::uint32_t kMinRtoMs = 200;
  static constexpr std::uint32_t kInitialRtoMs = 1000;
  static constexpr std::uint32_t kMaxRtoMs = 30'000;
  static constexpr std::uint32_t kClockGranularityMs = 1;

  // A new segment starting at `seq` was sent at `now_ms`: time it unless a
  // segment is being timed already.
  void start(std::uint32_t seq, std::uint64_t now_ms) noexcept {
    if (timing_) return;
    timing_ = true;
    timed_seq_ = seq;
    timed_at_ms_ = now_ms;
  }
  // Karn's rule: a retransmission makes the timed segment ambiguous.
  void cancel() noexcept { timing_ = false; }
  // A cumulative ACK up to `ack` arrived at `now_ms`: a sample if it covers
  // the timed segment. The backoff ends only with a sample (RFC 6298 §5.7,
  // Karn): an ACK for a resent segment says nothing about the round trip.
  void acked(std::uint32_t ack, std::uint64_t now_ms) noexcept {
    if (!timing_ || !seq_lt(timed_seq_, ack)) return;
    timing_ = false;
    backoff_ = 0;
    sample(static_cast<std::uint32_t>(std::min<std::uint64_t>(now_ms - timed_at_ms_, kMaxRtoMs)));
  }
  void sample(std::uint32_t rtt_ms) noexcept {
    if (!sampled_) {
      srtt8_ = rtt_ms * 8;
      rttvar4_ = rtt_ms * 2;  // RTTVAR = R/2
      sampled_ = true;
      return;
    }
    const std::uint32_t srtt = srtt8_ / 8;
    const std::uint32_t err = srtt > rtt_ms ? srtt - rtt_ms : rtt_ms - srtt;
    rttvar4_ = rttvar4_ - rttvar4_ / 4 + err;  // 3/4 RTTVAR + 1/4 |SRTT - R|, x4
    srtt8_ = srtt8_ - srtt8_ / 8 + rtt_ms;     // 7/8 SRTT + 1/8 R, x8
  }
  // The backoff of window probes ends when the window opens.
  void reset_backoff() noexcept { backoff_ = 0; }
  // The timer expired: the next timeout is twice as long (up to the cap).
  void back_off() noexcept {
    if (backoff_ < 16) ++backoff_;
  }
  [[nodiscard]] std::uint32_t rto_ms() const noexcept {
    std::uint64_t base = kInitialRtoMs;
    if (sampled_) base = srtt8_ / 8 + std::max<std::uint32_t>(kClockGranularityMs, rttvar4_);  // SRTT + max(G, 4 RTTVAR)
    base = std::max<std::uint64_t>(base, kMinRtoMs);
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(base << backoff_, kMaxRtoMs));
  }
  [[nodiscard]] bool sampled() const noexcept { return sampled_; }
  [[nodiscard]] std::uint32_t srtt_ms() const noexcept { return srtt8_ / 8; }
  [[nodiscard]] std::uint32_t rttvar_ms() const noexcept { return rttvar4_ / 4; }
  [[nodiscard]] unsigned backoff() const noexcept { return backoff_; }

 private:
  std::uint32_t srtt8_ = 0, rttvar4_ = 0;
  bool sampled_ = false;
  bool timing_ = false;
  std::uint8_t backoff_ = 0;
  std::uint32_t timed_seq_ = 0;
  std::uint64_t timed_at_ms_ = 0;
};

}  // namespace vnk::usernet
