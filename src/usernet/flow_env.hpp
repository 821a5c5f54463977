// What the flow tables (TCP, UDP/ICMP) share with the UserNet that owns them:
// configuration, counters, the internal epoll set their host sockets join,
// the queue of control frames for the guest, and the clock.
#pragma once

#include <cstdint>
#include <optional>

#include "backend/frame_ring.hpp"
#include "base/mac_address.hpp"
#include "usernet/usernet_config.hpp"
#include "usernet/usernet_counters.hpp"

namespace vnk::usernet {

// epoll tags inside usernet: kind in the top byte, then a generation, then
// the flow's slot, so an event for a flow that closed and whose slot was
// reused is recognised as stale.
enum class TagKind : std::uint8_t { timer = 1, tcp = 2, datagram = 3, listener = 4 };
constexpr std::uint64_t make_tag(TagKind k, std::uint16_t gen, std::uint32_t slot) noexcept {
  return (std::uint64_t{static_cast<std::uint8_t>(k)} << 56) | (std::uint64_t{gen} << 32) | slot;
}
constexpr TagKind tag_kind(std::uint64_t t) noexcept { return static_cast<TagKind>(t >> 56); }
constexpr std::uint16_t tag_gen(std::uint64_t t) noexcept { return static_cast<std::uint16_t>(t >> 32); }
constexpr std::uint32_t tag_slot(std::uint64_t t) noexcept { return static_cast<std::uint32_t>(t); }

// Milliseconds on CLOCK_MONOTONIC.
std::uint64_t monotonic_ms() noexcept;

struct FlowEnv {
  const UsernetConfig& cfg;
  UsernetCounters& counters;
  int epoll_fd;
  backend::FrameRing& control;            // frames for the guest built whole (SYN-ACK, RST)
  const std::optional<MacAddress>& guest_mac;  // learned from the guest's frames
};

}  // namespace vnk::usernet
