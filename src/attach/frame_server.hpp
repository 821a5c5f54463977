// Serves a NetBackend to peers that attach over a frame socket instead of
// vhost-user (`vnetkit serve --stream/--stream-connect/--seqpacket/--dgram/--fd`):
//
//   stream listen     a Unix stream socket at a path (QEMU -netdev
//                     stream,server=off); one peer at a time, the next after
//                     a disconnect -- or up to `guests` at once
//   seqpacket listen  a Unix SOCK_SEQPACKET socket at a path, one frame per
//                     packet (User-Mode Linux vec0:transport=bess); likewise
//   stream connect    connects to a peer listening at a path (QEMU -netdev
//                     stream,server=on), again after every disconnect
//   dgram             a unixgram socket bound at a path, one frame per
//                     datagram, answered at the sender's address (QEMU -netdev
//                     dgram, vfkit's unixgram://)
//   fd                an inherited socket: SOCK_STREAM gets stream framing,
//                     SOCK_DGRAM/SOCK_SEQPACKET one frame per datagram
//                     (socketpairs from vfkit, krunkit, a VMM); served until
//                     its peer hangs up
//
// With `guests` > 1 (listening modes, and dgram: each sender address is a
// peer) every peer is a port of a VirtualSwitch in front of the backend:
// each guest gets its own lease and flows from the one usernet, and guests
// reach each other at L2 unless `isolate_guests`. On the shared dgram socket
// the server reads and sorts datagrams by sender; a sender silent for
// kDgramIdle gives its place to a new one when all are taken.
//
// Everything runs on one thread around one epoll set: the peers' sockets
// (EPOLLOUT only while a frame waits for room), the backend's rx_fd, the
// signals (SIGINT/SIGTERM stop) and a metrics timer. Each round gives every
// ready peer one turn of at most SocketLink::kBudget frames each way.
// SocketLink does the framing.
#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "attach/socket_link.hpp"
#include "backend/virtual_switch.hpp"
#include "base/unique_fd.hpp"
#include "net/net_backend.hpp"

namespace vnk::attach {

#define VNK_FRAME_SERVER_COUNTERS(X)                                        \
  X(connections)      /* peers served (stream connections, or the fd) */    \
  X(connect_retries)  /* connect attempts that found no listener yet */     \
  X(refused_full)     /* connections closed at once, or new dgram senders ignored: `guests` peers were attached */ \
  X(dgram_unnamed)    /* datagrams on a shared dgram socket from a sender with no address to answer */

struct FrameServerCounters {
  VNK_FRAME_SERVER_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_FRAME_SERVER_COUNTERS)
};

struct FrameServerOptions {
  enum class Mode { stream_listen, seqpacket_listen, stream_connect, dgram, fd };
  Mode mode = Mode::stream_listen;
  std::string path;  // the socket's path (all but fd)
  int fd = -1;       // Mode::fd
  int signal_fd = -1;
  bool remove_socket_on_exit = true;  // a path we bound (not in the sandbox, which cannot)
  unsigned max_connections = 0;       // listening: exit after serving this many (0: never)
  unsigned guests = 1;                // listening: peers served at once (> 1: through a VirtualSwitch)
  bool isolate_guests = false;        // with guests > 1: no frames between guests
  std::size_t max_frame = 14 + 65535;  // with guests > 1: the network's MTU + 14 (the switch's queues)
  std::chrono::milliseconds metrics_interval{1000};
  std::function<void()> on_metrics;  // called every interval and at exit
  // Another fd the loop watches for its owner (the metrics HTTP endpoint):
  // on_aux() runs on the loop's thread whenever it is readable.
  int aux_fd = -1;
  std::function<void()> on_aux;
  // Signals in signal_fd that the server does not handle itself
  // (SIGTTIN/SIGTTOU: the log level).
  std::function<void(int)> on_signal;
};

class FrameServer {
 public:
  FrameServer(FrameServerOptions opts, net::NetBackend& backend, net::FrameInterceptor* interceptor);
  ~FrameServer();

  // Binds, listens or checks the inherited fd: all that needs the file
  // system, before the sandbox. The error is a sentence for the user.
  std::expected<void, std::string> open();
  // Serves until SIGINT/SIGTERM, max_connections, or (fd) the peer leaves.
  std::expected<void, std::string> run();

  [[nodiscard]] const SocketLinkCounters& link_counters() const noexcept { return link_counters_; }
  [[nodiscard]] const FrameServerCounters& counters() const noexcept { return counters_; }
  // The switch in front of the backend when guests > 1, else null.
  [[nodiscard]] const backend::VirtualSwitch* virtual_switch() const noexcept { return switch_.get(); }
  // Peers attached now.
  [[nodiscard]] std::size_t peers() const noexcept;
  // A short description for the log ("QEMU stream on /path", ...).
  [[nodiscard]] std::string describe() const;

 private:
  struct Peer {
    std::unique_ptr<SocketLink> link;
    backend::SwitchPort* port = nullptr;  // with the switch
    bool watching_write = false;
    bool reads = true;  // false: a sender of the shared dgram socket, read by the server
    sockaddr_storage address{};
    socklen_t address_len = 0;
    std::chrono::steady_clock::time_point last_heard{};
  };
  static constexpr std::chrono::seconds kDgramIdle{60};
  // The new peer's place, or nullptr (epoll failed, or the switch is full).
  Peer* start_link(UniqueFd sock, SocketLink::Framing framing, bool connected, bool reads = true);
  // guests > 1 on --dgram: reads the shared socket and hands each datagram
  // to its sender's link (a new one for a new sender).
  void read_shared_dgram();
  [[nodiscard]] Peer* sender(const sockaddr_storage& address, socklen_t len);
  [[nodiscard]] bool multi_peer() const noexcept;
  void end_link(std::size_t slot);
  // Stream connect: one attempt; false (retry later) when nobody listens yet.
  bool try_connect();
  void accept_peer();
  void watch_peer(Peer& p, std::size_t slot);
  // One turn for the peer in `slot` after the events: backend → peer, and
  // closing it when it hung up. True when it has work left.
  bool serve_turn(std::size_t slot, bool backend_ready);

  FrameServerOptions opts_;
  net::NetBackend& backend_;
  net::FrameInterceptor* interceptor_;
  SocketLinkCounters link_counters_;
  FrameServerCounters counters_;
  UniqueFd epoll_, listener_, retry_timer_, metrics_timer_;
  UniqueFd shared_dgram_;              // guests > 1 on --dgram
  std::vector<std::byte> dgram_in_;    // its receive slots
  std::unique_ptr<backend::VirtualSwitch> switch_;
  std::vector<Peer> peers_;  // by slot; a slot without a link is free
  bool backend_watched_ = false;  // registered with the epoll set (while a peer is attached)
  bool backend_polled_ = false;   // and asked for EPOLLIN: while some peer's socket takes frames
  bool bound_path_ = false;
  bool finished_ = false;  // the last peer left and no other may come (fd, max_connections)
};

}  // namespace vnk::attach
