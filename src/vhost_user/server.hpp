// The vhost-user-net server: accepts one frontend at a time, runs its
// NetSession on an epoll I/O thread, and accepts the next frontend after a
// disconnect without restarting.
//
// Threading: one I/O thread (the caller of run()) owns the control socket,
// the kick eventfds of the queue pair and the backend's fd. With a single
// queue pair this is the "thread per queue pair" of docs/DESIGN.md and it
// makes SET_MEM_TABLE atomic with respect to the rings for free: a memory
// table is swapped between two drains, never during one.
//
// With `guests` > 1 (server mode) up to that many frontends are served at
// once, each a port of a VirtualSwitch in front of the backend and each
// device with its own MAC (the configured one, its last octet plus the
// port's number): several VMs on one user-mode network. Offloads pass
// through the switch where every attached guest takes them.
//
// Process signals arrive through a signalfd the caller blocks and passes in:
// SIGINT/SIGTERM stop the server, SIGUSR1 sets the link down, SIGUSR2 up.
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backend/virtual_switch.hpp"
#include "net/net_backend.hpp"
#include "net/net_config.hpp"
#include "vhost_user/net_session.hpp"

namespace vnk::vhost_user {

struct ServerOptions {
  std::string socket_path;
  bool connect = false;  // client mode: we connect to a listening frontend
  net::NetConfig net;
  int signal_fd = -1;                                  // signalfd, or -1
  std::function<void()> on_metrics;                    // called every metrics_interval and at each disconnect
  std::chrono::milliseconds metrics_interval{1000};
  // Another fd the loop watches for its owner (the metrics HTTP endpoint):
  // on_aux() runs on the loop's thread whenever it is readable.
  int aux_fd = -1;
  std::function<void()> on_aux;
  // Signals in signal_fd that the server does not handle itself
  // (SIGTTIN/SIGTTOU: the log level).
  std::function<void(int)> on_signal;
  // A frontend that stalls mid-message or stops reading replies is dropped
  // after this long.
  std::chrono::milliseconds io_timeout{5000};
  unsigned max_connections = 0;  // stop after this many frontends (0: never); tests use it
  // After work, keep looking at the rings for this long before sleeping in
  // epoll_wait (0: never busy-poll). Spends a core to save the frontend's
  // kicks and our wake-ups when frames arrive back to back.
  std::chrono::microseconds poll{0};
  // Frontends served at once (server mode). > 1: through a VirtualSwitch;
  // busy-polling (poll) is for one frontend only.
  unsigned guests = 1;
  bool isolate_guests = false;  // with guests > 1: no frames between guests
  std::size_t max_frame = 14 + 65535;  // with guests > 1: the network's MTU + 14 (the switch's queues)
  // Unlink the listening socket at exit. Off in the sandbox, whose root is
  // empty; the next start replaces the stale socket.
  bool remove_socket_on_exit = true;
};

struct ServerCounters {
#define VNK_SERVER_COUNTERS(X)                                          \
  X(connections)         /* frontends served */                          \
  X(refused_full)        /* frontends closed at once: `guests` attached */ \
  X(disconnects_clean)   /* frontend closed the socket */                \
  X(disconnects_error)   /* dropped for a protocol error */              \
  X(link_changes)        /* link up/down set from the host */
  VNK_SERVER_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_SERVER_COUNTERS)
};

class Server {
 public:
  Server(ServerOptions options, net::NetBackend& backend, net::FrameInterceptor* interceptor = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Sets up the socket (listening in server mode); errors are for the user.
  std::expected<void, std::string> open();
  // Serves frontends until a stop signal (or max_connections). Returns an
  // error only for failures of the host, never for a frontend's misdeeds.
  std::expected<void, std::string> run();

  [[nodiscard]] const SessionStats& stats() const noexcept { return stats_; }
  [[nodiscard]] const ServerCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] bool link_up() const noexcept { return options_.net.link_up; }
  // The switch in front of the backend when guests > 1, else null.
  [[nodiscard]] const backend::VirtualSwitch* virtual_switch() const noexcept { return switch_.get(); }
  // Frontends attached now.
  [[nodiscard]] std::size_t frontends() const noexcept { return attached_; }

 private:
  std::expected<UniqueFd, std::string> next_frontend();
  std::expected<void, std::string> serve(UniqueFd sock);
  // guests > 1: every frontend a port of switch_, all on this thread.
  std::expected<void, std::string> serve_many();
  struct Frontend;
  void accept_frontend(std::vector<Frontend>& all);
  void end_frontend(Frontend& f);
  void handle_signals(NetSession* session);
  void on_timer();
  void on_aux();
  void write_metrics();

  ServerOptions options_;
  net::NetBackend& backend_;
  net::FrameInterceptor* interceptor_;
  UniqueFd listener_;
  UniqueFd epoll_;
  UniqueFd timer_;
  bool stopping_ = false;
  std::unique_ptr<backend::VirtualSwitch> switch_;
  std::size_t attached_ = 0;
  SessionStats stats_;
  ServerCounters counters_;
};

}  // namespace vnk::vhost_user
