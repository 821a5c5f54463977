// What the flow tables (TCP, UDP/ICMP) share with the UserNet that owns them:
// configuration, counters, the internal epoll set their host sockets join,
// the queue of control frames for the guest, and the clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "backend/frame_ring.hpp"
#include "base/fd_limit.hpp"
#include "base/mac_address.hpp"
#include "usernet/usernet_config.hpp"
#include "usernet/usernet_counters.hpp"

namespace vnk::usernet {

// epoll tags inside usernet: kind in the top byte, then a generation, then
// the flow's slot, so an event for a flow that closed and whose slot was
// reused is recognised as stale.
enum class TagKind : std::uint8_t { timer = 1, tcp = 2, datagram = 3, listener = 4, raw_icmp = 5 };
constexpr std::uint64_t make_tag(TagKind k, std::uint16_t gen, std::uint32_t slot) noexcept {
  return (std::uint64_t{static_cast<std::uint8_t>(k)} << 56) | (std::uint64_t{gen} << 32) | slot;
}
constexpr TagKind tag_kind(std::uint64_t t) noexcept { return static_cast<TagKind>(t >> 56); }
constexpr std::uint16_t tag_gen(std::uint64_t t) noexcept { return static_cast<std::uint16_t>(t >> 32); }
constexpr std::uint32_t tag_slot(std::uint64_t t) noexcept { return static_cast<std::uint32_t>(t); }

// Milliseconds on CLOCK_MONOTONIC.
std::uint64_t monotonic_ms() noexcept;

// Hash of a flow key: the two addresses and the rest (ports, protocol)
// packed into one word.
constexpr std::size_t hash_flow(std::uint32_t guest_ip, std::uint32_t remote_ip, std::uint64_t rest) noexcept {
  std::uint64_t h = (std::uint64_t{guest_ip} << 32 | remote_ip) * 0x9e3779b97f4a7c15ull;
  h ^= rest * 0xc2b2ae3d27d4eb4full;
  return static_cast<std::size_t>(h ^ (h >> 29));
}

// Flow storage: slots reused through a free list, so a slot number is a
// stable name for a flow (epoll tags, ready lists). Grows on demand; a
// released slot is reset to Flow{}.
template <typename Flow>
class FlowSlots {
 public:
  std::uint32_t acquire() {
    if (!free_.empty()) {
      const std::uint32_t s = free_.back();
      free_.pop_back();
      return s;
    }
    slots_.emplace_back();
    return static_cast<std::uint32_t>(slots_.size() - 1);
  }
  void release(std::uint32_t s) {
    slots_[s] = Flow{};
    free_.push_back(s);
  }
  Flow& operator[](std::uint32_t s) noexcept { return slots_[s]; }
  const Flow& operator[](std::uint32_t s) const noexcept { return slots_[s]; }
  // Slots ever used (live or free): the bound for a scan.
  [[nodiscard]] std::uint32_t extent() const noexcept { return static_cast<std::uint32_t>(slots_.size()); }

 private:
  std::vector<Flow> slots_;
  std::vector<std::uint32_t> free_;
};

struct FlowEnv {
  const UsernetConfig& cfg;
  const HostFeatures& host;  // what the kernel offers (the probe, or cfg.host)
  UsernetCounters& counters;
  FdBudget& fds;  // sockets flows may still open (RLIMIT_NOFILE less a reserve)
  int epoll_fd;
  backend::FrameRing& control;            // frames for the guest built whole (SYN-ACK, RST)
  const std::optional<MacAddress>& guest_mac;  // learned from the guest's frames
  std::uint64_t (*clock)() noexcept;           // monotonic milliseconds (cfg.clock, or monotonic_ms)
};

}  // namespace vnk::usernet
