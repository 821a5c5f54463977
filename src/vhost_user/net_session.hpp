// One vhost-user frontend's session with the virtio-net device.
//
// The frontend (QEMU, User-Mode Linux's virtio_uml, cloud-hypervisor) owns the
// transport: it negotiates features with its guest, shares guest memory
// (SET_MEM_TABLE) and describes each ring (SET_VRING_NUM/ADDR/BASE) in its own
// virtual addresses. This class validates each message, keeps that state,
// and starts the device's queue-pair engine — the same NetQueuePair the MMIO
// transport drives — once both rings of the pair are started:
//   a ring starts on SET_VRING_KICK; with VHOST_USER_F_PROTOCOL_FEATURES
//   negotiated it also needs SET_VRING_ENABLE(1); GET_VRING_BASE stops it.
// Interrupts go out through the call eventfds; a poisoned queue signals its
// error eventfd; a config change is announced on the backend-request channel.
//
// Not thread-safe: the server calls handle(), on_kick() and backend_ready()
// from one thread.
#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>

#include "base/counter_set.hpp"
#include "base/unique_fd.hpp"
#include "net/net_backend.hpp"
#include "net/net_config.hpp"
#include "net/net_counters.hpp"
#include "net/net_queue_pair.hpp"
#include "vhost_user/channel.hpp"

namespace vnk::vhost_user {

#define VNK_VHOST_USER_COUNTERS(X)                                                  \
  X(messages)          /* messages handled */                                       \
  X(rejected)          /* messages refused as malformed or out of place */          \
  X(unknown_requests)  /* requests this server does not implement */                \
  X(mem_table_updates) /* memory layouts installed */                               \
  X(ring_starts)       /* queue pairs started */                                    \
  X(ring_stops)        /* queue pairs stopped (GET_VRING_BASE, reset) */            \
  X(call_signals)      /* call eventfd writes */

struct SessionCounters {
  VNK_VHOST_USER_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_VHOST_USER_COUNTERS)
};

// Everything a session counts. The server owns one for its lifetime so the
// figures survive reconnections; a session without one counts privately.
struct SessionStats {
  net::NetCounters net;
  SessionCounters session;
};

struct Reply {
  std::array<std::byte, kMaxPayload> storage{};
  std::size_t size = 0;
  [[nodiscard]] std::span<const std::byte> payload() const noexcept { return {storage.data(), size}; }
};

class NetSession final : private virtio::Interrupts {
 public:
  static constexpr std::uint16_t kNumQueues = 2;  // one pair until multiqueue lands
  static constexpr std::uint16_t kMaxQueueSize = 1024;

  NetSession(const net::NetConfig& cfg, net::NetBackend& backend, net::FrameInterceptor* interceptor = nullptr,
             SessionStats* stats = nullptr);
  ~NetSession();
  NetSession(const NetSession&) = delete;
  NetSession& operator=(const NetSession&) = delete;

  // Handles one message. A reply (the request's own, or the REPLY_ACK status)
  // is returned when one must be sent. An error means: disconnect.
  std::expected<std::optional<Reply>, ProtocolError> handle(Message& m);

  // The kick eventfd of `queue` became readable.
  void on_kick(std::uint16_t queue);
  // The backend's rx_fd() became readable.
  void backend_ready();
  // Each of those does a bounded amount of ring work. True when more is
  // waiting: the server serves its other sources, then calls resume().
  [[nodiscard]] bool work_pending() const noexcept { return pair_ != nullptr && work_pending_; }
  void resume();
  // Busy-polling (serve --poll-us): looks at the rings without a kick, as
  // on a TX kick. True when frames moved either way.
  bool poll();

  // Link state (config space status); a change is announced to the frontend.
  void set_link_up(bool up);

  [[nodiscard]] std::uint64_t offered_features() const noexcept;
  [[nodiscard]] std::uint64_t offered_protocol_features() const noexcept;
  [[nodiscard]] int kick_fd(std::uint16_t queue) const noexcept { return rings_[queue].kick.get(); }
  [[nodiscard]] bool running() const noexcept { return pair_ != nullptr; }
  // Should the backend's rx_fd() be polled? Not while the guest has posted no
  // RX buffer (its next RX kick says when), nor when nothing is running.
  [[nodiscard]] bool wants_backend() const noexcept;
  [[nodiscard]] bool link_up() const noexcept { return link_up_; }
  [[nodiscard]] const net::NetCounters& net_counters() const noexcept { return net_counters_; }
  [[nodiscard]] const SessionCounters& counters() const noexcept { return counters_; }

 private:
  struct Ring {
    std::uint16_t num = 0;
    std::uint16_t base = 0;
    std::optional<VringAddr> addr;
    UniqueFd kick, call, err;
    bool kicked = false;   // SET_VRING_KICK received since the last stop
    bool enabled = false;  // SET_VRING_ENABLE
  };

  std::expected<std::optional<Reply>, ProtocolError> dispatch(Message& m);
  std::expected<void, ProtocolError> set_mem_table(Message& m);
  std::expected<void, ProtocolError> set_vring_fd(Message& m, UniqueFd Ring::*slot);
  std::expected<Reply, ProtocolError> get_vring_base(const Message& m);
  std::expected<Reply, ProtocolError> get_config(const Message& m);
  std::expected<std::uint16_t, ProtocolError> ring_index(std::uint32_t index) const;

  [[nodiscard]] bool ring_ready(const Ring& r) const noexcept;
  void maybe_start();
  void stop();
  void reset_all();
  [[nodiscard]] std::array<std::byte, 12> config_bytes() const;

  // virtio::Interrupts
  void queue_used(std::uint16_t queue) override;
  void config_changed() override;
  void needs_reset() override;

  net::NetConfig cfg_;
  net::NetBackend& backend_;
  net::FrameInterceptor* interceptor_;
  bool link_up_;

  bool work_pending_ = false;  // the last round of ring work stopped at its budget
  std::uint64_t acked_features_ = 0;
  std::uint64_t acked_protocol_features_ = 0;
  bool owner_ = false;
  std::shared_ptr<const GuestMemory> memory_;
  std::array<Ring, kNumQueues> rings_{};
  UniqueFd backend_req_;
  std::unique_ptr<net::NetQueuePair> pair_;

  std::unique_ptr<SessionStats> own_stats_;  // when no stats were given
  net::NetCounters& net_counters_;
  SessionCounters& counters_;
};

}  // namespace vnk::vhost_user
