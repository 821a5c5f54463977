// Serves a NetBackend to peers that attach over a frame socket instead of
// vhost-user (`vnetkit serve --stream/--stream-connect/--dgram/--fd`):
//
//   stream listen   a Unix stream socket at a path; one peer at a time (QEMU
//                   -netdev stream,server=off), the next after a disconnect
//   stream connect  connects to a peer listening at a path (QEMU -netdev
//                   stream,server=on), again after every disconnect
//   dgram           a unixgram socket bound at a path, one frame per
//                   datagram, answered at the sender's address (QEMU -netdev
//                   dgram, vfkit's unixgram://)
//   fd              an inherited socket: SOCK_STREAM gets stream framing,
//                   SOCK_DGRAM/SOCK_SEQPACKET one frame per datagram
//                   (socketpairs from vfkit, krunkit, a VMM); served until
//                   its peer hangs up
//
// Everything runs on one thread around one epoll set: the peer's socket
// (EPOLLOUT only while a frame waits for room), the backend's rx_fd, the
// signals (SIGINT/SIGTERM stop) and a metrics timer. SocketLink does the
// framing.
#pragma once

#include <chrono>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "attach/socket_link.hpp"
#include "base/unique_fd.hpp"
#include "net/net_backend.hpp"

namespace vnk::attach {

#define VNK_FRAME_SERVER_COUNTERS(X)                                        \
  X(connections)      /* peers served (stream connections, or the fd) */    \
  X(connect_retries)  /* connect attempts that found no listener yet */

struct FrameServerCounters {
  VNK_FRAME_SERVER_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_FRAME_SERVER_COUNTERS)
};

struct FrameServerOptions {
  enum class Mode { stream_listen, stream_connect, dgram, fd };
  Mode mode = Mode::stream_listen;
  std::string path;  // the socket's path (all but fd)
  int fd = -1;       // Mode::fd
  int signal_fd = -1;
  bool remove_socket_on_exit = true;  // a path we bound (not in the sandbox, which cannot)
  unsigned max_connections = 0;       // stream: exit after serving this many (0: never)
  std::chrono::milliseconds metrics_interval{1000};
  std::function<void()> on_metrics;  // called every interval and at exit
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
  // A short description for the log ("QEMU stream on /path", ...).
  [[nodiscard]] std::string describe() const;

 private:
  bool start_link(UniqueFd sock, SocketLink::Framing framing, bool connected);
  void end_link();
  // Stream connect: one attempt; false (retry later) when nobody listens yet.
  bool try_connect();
  void watch_peer();

  FrameServerOptions opts_;
  net::NetBackend& backend_;
  net::FrameInterceptor* interceptor_;
  SocketLinkCounters link_counters_;
  FrameServerCounters counters_;
  UniqueFd epoll_, listener_, retry_timer_, metrics_timer_;
  std::unique_ptr<SocketLink> link_;
  bool watching_write_ = false;
  bool bound_path_ = false;
};

}  // namespace vnk::attach
