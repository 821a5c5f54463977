// What the flow tables (TCP, UDP/ICMP) share with the UserNet that owns them:
// configuration, counters, the internal epoll set their host sockets join,
// the queue of control frames for the guest, and the clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "backend/frame_ring.hpp"
#include "base/fd_limit.hpp"
#include "base/mac_address.hpp"
#include "net/net_backend.hpp"
#include "usernet/flow_table.hpp"
#include "usernet/guest_neighbors.hpp"
#include "usernet/usernet_config.hpp"
#include "usernet/usernet_counters.hpp"

namespace vnk::usernet {

// Milliseconds on CLOCK_MONOTONIC.
std::uint64_t monotonic_ms() noexcept;

struct FlowEnv {
  const UsernetConfig& cfg;
  const HostFeatures& host;  // what the kernel offers (the probe, or cfg.host)
  UsernetCounters& counters;
  FdBudget& fds;  // sockets flows may still open (RLIMIT_NOFILE less a reserve)
  int epoll_fd;
  backend::FrameRing& control;            // frames for the guest built whole (SYN-ACK, RST)
  const GuestNeighbors& guests;               // the MAC each guest address is behind
  std::uint64_t (*clock)() noexcept;           // monotonic milliseconds (cfg.clock, or monotonic_ms)
  const net::RxOffloads& rx_offloads;          // what the consumer of our frames completes or cuts itself
};

}  // namespace vnk::usernet
