// What the TX and RX engines of one queue pair share: the guest memory
// snapshot for this drain, the backend and interceptor, the counters, the
// interrupt sink, and the negotiated features.
#pragma once

#include <cstdint>

#include <string_view>

#include "base/log.hpp"
#include "memory/guest_memory.hpp"
#include "net/net_backend.hpp"
#include "net/net_counters.hpp"
#include "virtio/device.hpp"

namespace vnk::net {

struct EngineContext {
  const GuestMemory* memory = nullptr;
  NetBackend* backend = nullptr;
  FrameInterceptor* interceptor = nullptr;  // optional
  NetCounters* counters = nullptr;
  virtio::Interrupts* interrupts = nullptr;
  std::uint64_t features = 0;
  // Set while the transport busy-polls the rings: an empty queue does not ask
  // the driver for a notification (it would only cost the driver a kick per
  // post). The transport drains once more without it before it sleeps.
  bool busy_polling = false;

  // Anything waiting to go to the guest that can be fetched without polling?
  [[nodiscard]] bool rx_pending() const { return rx_pending_through(*backend, interceptor); }
  // How long the next RX frame can be: the interceptor's frames go first.
  [[nodiscard]] std::size_t next_frame_bound() const {
    return interceptor && interceptor->rx_pending() ? interceptor->next_frame_bound() : backend->next_frame_bound();
  }
};

// Counts a guest violation or drop and logs only its first occurrence, so a
// hostile guest cannot flood the log.
inline void note(Counter& counter, std::string_view what) {
  if (counter.add() == 0) log::warn("virtio-net: {} (first occurrence; further ones are only counted)", what);
}

// One iovec per descriptor piece; IOV_MAX is what sendmsg/recvmsg accept.
constexpr std::size_t kMaxChainIovecs = 1024;

// Chains a single process() call completes before yielding, so TX cannot
// starve RX (and the reverse) on one thread.
constexpr unsigned kDrainBudget = 256;

}  // namespace vnk::net
