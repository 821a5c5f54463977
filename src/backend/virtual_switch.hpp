// A small learning Ethernet switch in front of one shared backend: several
// guests on one user-mode network (vnetkit serve --guests N). Each guest's
// attachment drives a SwitchPort -- a NetBackend like any other -- and the
// switch sends its frames on:
//
//   to another guest's MAC   into that port's queue (guest to guest at L2;
//                            off with guest_to_guest = false: dropped)
//   broadcast / multicast    to the uplink and a copy into every other port
//   anything else            to the uplink (usernet: the gateway MAC)
//
// The uplink's frames are pulled by whichever port asks for a frame; one
// addressed to another guest is copied into that guest's queue, so no guest
// waits on another's receive and the uplink's own order is kept per guest.
// A port learns the source MACs of its guest's frames (at most
// kMacsPerPort); a MAC another port holds is not taken over: such frames
// are dropped and counted (a guest cannot steal another's traffic).
//
// Fairness: each port has two bounded queues -- frames from other guests,
// and uplink frames another port pulled for it -- and its receive()
// alternates between the guests' queue and the uplink, so a guest flooding
// another fills only its peer queue (drops counted) and cannot starve the
// victim's own traffic with the host. The attachments take turns on TX with
// a budget per turn (SocketLink::kBudget).
//
// Offloads: a port takes what the uplink takes (usernet: partial checksums
// and TSO), and the uplink builds for all guests what every attached port's
// consumer accepts (RxOffloads, the intersection: vhost-user guests that
// negotiated GUEST_CSUM/TSO get 64 KiB TSO frames; a frame-socket port
// accepts none, so with one attached every guest gets whole frames). A
// frame from one guest to another keeps its virtio-net header when the
// receiver accepts it; otherwise its partial checksum is completed here, and
// a TSO frame the receiver cannot take is dropped and counted. One thread.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <vector>

#include "backend/frame_queue.hpp"
#include "base/counter_set.hpp"
#include "base/mac_address.hpp"
#include "net/net_backend.hpp"

namespace vnk::backend {

#define VNK_SWITCH_COUNTERS(X)                                                                          \
  X(frames_to_uplink)          /* guest frames handed to the shared backend (usernet) */                 \
  X(frames_from_uplink)        /* uplink frames delivered to a guest (directly or through its queue) */  \
  X(frames_between_guests)     /* unicast frames from one guest to another */                            \
  X(frames_flooded)            /* copies of broadcast or multicast frames given to other guests */       \
  X(drop_queue_full)           /* frames for a guest whose queue was full */                             \
  X(drop_isolated)             /* guest-to-guest frames while that is switched off */                    \
  X(drop_unknown_destination)  /* uplink frames for a MAC no port holds (a guest that left) */           \
  X(drop_mac_taken)            /* frames from a source MAC another guest holds */                        \
  X(drop_too_many_macs)        /* frames from a new source MAC once a port holds kMacsPerPort */         \
  X(drop_malformed)            /* runts, multicast source MACs, uplink frames cut short */ \
  X(drop_oversize)             /* frames between guests larger than the network's MTU allows */ \
  X(drop_offload)              /* TSO frames for a guest that does not take them */ \
  X(checksums_completed)       /* partial checksums finished for a guest that does not take them */

struct SwitchCounters {
  VNK_SWITCH_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_SWITCH_COUNTERS)
};

struct SwitchOptions {
  bool guest_to_guest = true;  // guests reach each other at L2
  // The largest frame between guests without TSO (the network's MTU + 14);
  // larger ones (but TSO frames) are dropped and counted.
  std::size_t max_frame = 14 + 65535;
  // What each of a port's two queues may hold (FrameQueue): enough for a
  // guest's whole TCP window (Linux autotunes up to 6 MiB), so a guest that
  // is slow to read loses nothing another port pulled for it. Pages are
  // touched only as frames fill them.
  std::size_t queue_bytes = std::size_t{8} << 20;
  std::size_t max_ports = 64;
};

class VirtualSwitch;

class SwitchPort final : public net::NetBackend {
 public:
  static constexpr std::size_t kMacsPerPort = 16;

  [[nodiscard]] net::TxOffloads tx_offloads() const override;
  // What this port's consumer accepts; the uplink gets what all accept.
  void set_rx_offloads(net::RxOffloads offloads) override;
  net::TxResult transmit(const net::TxFrame& frame) override;
  void flush_tx() override;
  net::RxResult receive(std::span<const iovec> buffer) override;
  [[nodiscard]] bool rx_pending() const override;
  [[nodiscard]] std::size_t next_frame_bound() const override;
  [[nodiscard]] int rx_fd() const override;
  [[nodiscard]] std::string_view name() const override { return "switch port"; }

  [[nodiscard]] unsigned id() const noexcept { return id_; }
  [[nodiscard]] bool holds(const MacAddress& mac) const noexcept;
  // Frames waiting in this port's queues.
  [[nodiscard]] std::size_t queued() const noexcept { return from_peers_.size() + from_uplink_.size(); }

 private:
  friend class VirtualSwitch;
  SwitchPort(VirtualSwitch& sw, unsigned id, const SwitchOptions& options);

  VirtualSwitch& switch_;
  unsigned id_;
  std::array<MacAddress, kMacsPerPort> macs_{};
  std::size_t mac_count_ = 0;
  net::RxOffloads rx_offloads_{};
  FrameQueue from_peers_;   // frames other guests sent this one
  FrameQueue from_uplink_;  // uplink frames for this guest another port pulled
  bool peers_turn_ = false;
};

class VirtualSwitch {
 public:
  // `uplink` (and `interceptor`, which may be null: MMDS sits in front of
  // the uplink here, not in front of each port) must outlive the switch.
  VirtualSwitch(net::NetBackend& uplink, net::FrameInterceptor* interceptor, SwitchOptions options = {});
  ~VirtualSwitch();

  // A new port, or nullptr when max_ports are attached.
  SwitchPort* attach();
  // The port leaves: its queued frames and MACs are dropped.
  void detach(SwitchPort* port);

  [[nodiscard]] std::size_t ports() const noexcept { return ports_.size(); }
  [[nodiscard]] const SwitchCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] const SwitchOptions& options() const noexcept { return options_; }

 private:
  friend class SwitchPort;
  net::TxResult from_port(SwitchPort& port, const net::TxFrame& frame);
  // The next uplink frame for `port`, written into `buffer`; frames for
  // other guests met on the way go to their queues.
  net::RxResult pull_uplink(SwitchPort& port, std::span<const iovec> buffer);
  [[nodiscard]] SwitchPort* owner(const MacAddress& mac) const noexcept;
  // Where `port` may send from `src`: false (counted) when another port
  // holds it or this one holds kMacsPerPort others.
  bool learn(SwitchPort& port, const MacAddress& src);
  // `frame` (from another guest) into `to`'s peer queue, its header kept,
  // its checksum completed, or dropped (counted), as `to` accepts. True
  // when it was queued.
  bool deliver(SwitchPort& to, const net::TxFrame& frame);
  // Tells the uplink what every port's consumer accepts.
  void update_rx_offloads();

  net::NetBackend& uplink_;
  net::FrameInterceptor* interceptor_;
  SwitchOptions options_;
  SwitchCounters counters_;
  std::vector<std::unique_ptr<SwitchPort>> ports_;
  unsigned next_id_ = 0;
};

}  // namespace vnk::backend
