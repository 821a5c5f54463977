#include "cli/serve_command.hpp"

#include <fcntl.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "backend/loopback_backend.hpp"
#include "backend/socketpair_backend.hpp"
#include "base/log.hpp"
#include "cli/metrics_options.hpp"
#include "cli/mmds_options.hpp"
#include "cli/sandbox_options.hpp"
#include "cli/signal_fd.hpp"
#include "cli/usernet_options.hpp"
#include "attach/frame_server.hpp"
#include "netns/tap_backend.hpp"
#include "usernet/usernet.hpp"
#include "vhost_user/server.hpp"

namespace vnk::cli {

namespace {

struct ServeArgs {
  std::string listen_path;
  std::string connect_path;
  std::string stream_path;          // --stream
  std::string stream_connect_path;  // --stream-connect
  std::string seqpacket_path;       // --seqpacket
  std::string dgram_path;           // --dgram
  int fd = -1;                      // --fd
  std::string net = "loopback";
  std::string mac = net::kDefaultMac.to_string();
  std::optional<std::uint16_t> mtu;
  std::uint16_t queue_pairs = 1;
  bool link_down = false;
  bool no_offload = false;
  MetricsArgs metrics;
  unsigned max_connections = 0;
  unsigned guests = 1;
  bool isolate_guests = false;
  unsigned poll_us = 0;
  UsernetArgs user;  // --net user
  MmdsArgs mmds;
  SandboxArgs sandbox;
};

// The switch's counters with the number of guests attached (`attached`).
MetricsGroup switch_group(const backend::VirtualSwitch& sw, std::function<std::size_t()> attached) {
  MetricsGroup g = group_of("switch", sw.counters());
  g.visit = [&sw, attached = std::move(attached)](const auto& emit) {
    sw.counters().for_each(emit);
    emit("guests_attached", attached());
  };
  g.gauges = {{"guests_attached", "guests attached to the switch now"}};
  return g;
}

// The backend chosen with --net, with its counters for --metrics.
struct BackendChoice {
  std::unique_ptr<net::NetBackend> backend;
  MetricsGroup metrics;
};

std::expected<BackendChoice, std::string> make_backend(const std::string& spec, const ServeArgs& a) {
  if (spec == "loopback") {
    auto b = std::make_unique<backend::LoopbackBackend>();
    auto g = group_of("backend", b->counters());
    return BackendChoice{std::move(b), std::move(g)};
  }
  if (spec.starts_with("socketpair:")) {
    const std::string num = spec.substr(11);
    int fd = -1;
    try {
      std::size_t used = 0;
      fd = std::stoi(num, &used);
      if (used != num.size()) fd = -1;
    } catch (const std::exception&) {
      fd = -1;
    }
    if (fd < 0) return std::unexpected("--net socketpair:FD needs an inherited file descriptor number, e.g. socketpair:3");
    if (::fcntl(fd, F_GETFD) < 0) return std::unexpected(fmt::format("--net socketpair:{}: fd {} is not open", fd, fd));
    auto b = backend::SocketpairBackend::create(UniqueFd(fd));
    if (!b) return std::unexpected(b.error());
    auto g = group_of("backend", (*b)->counters());
    return BackendChoice{std::move(*b), std::move(g)};
  }
  if (spec.starts_with("tap:")) {
    auto b = netns::TapBackend::open(spec.substr(4));
    if (!b) return std::unexpected(fmt::format("--net {}: {}", spec, b.error()));
    auto g = group_of("backend", (*b)->counters());
    return BackendChoice{std::move(*b), std::move(g)};
  }
  if (spec == "user") {
    auto cfg = to_usernet_config(a.user);
    if (!cfg) return std::unexpected(cfg.error());
    auto b = start_usernet(*cfg);
    if (!b) return std::unexpected(b.error());
    auto g = group_of("backend", (*b)->counters());
    return BackendChoice{std::move(*b), std::move(g)};
  }
  return std::unexpected(fmt::format("--net '{}': expected loopback, socketpair:FD, tap:IFNAME or user", spec));
}

// What every way of serving sets up before its server: the sandbox plan
// (`visible`: directories reached by path later), the backend, the metadata
// service and the signals. The error is a sentence for the user.
struct Prepared {
  std::optional<sandbox::SandboxPlan> plan;
  BackendChoice choice;
  std::unique_ptr<mmds::MmdsInterceptor> mmds;
  UniqueFd signals;
  std::unique_ptr<MetricsExport> metrics;
};

// `device`: what the Prometheus samples are labelled with by default.
std::expected<Prepared, std::string> prepare(const ServeArgs& a, bool connect_mode, std::vector<std::string> visible,
                                             std::string device) {
  auto plan = plan_sandbox(a.sandbox, {sandbox::Profile::serve, connect_mode, a.net.starts_with("tap:")},
                           std::move(visible));
  if (!plan) return std::unexpected(plan.error());
  auto choice = make_backend(a.net, a);
  if (!choice) return std::unexpected(choice.error());
  auto mmds = open_mmds(a.mmds);
  if (!mmds) return std::unexpected(mmds.error());
  auto signals = block_signals({SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU});
  if (!signals) return std::unexpected(signals.error());
  auto metrics = MetricsExport::open(a.metrics, std::move(device));
  if (!metrics) return std::unexpected(metrics.error());
  return Prepared{std::move(*plan), std::move(*choice), std::move(*mmds), std::move(*signals), std::move(*metrics)};
}

// The options every way of serving passes its server from Prepared.
template <typename Options>
void hook_up(Options& opts, Prepared& p) {
  opts.signal_fd = p.signals.get();
  opts.on_signal = change_log_level;
  MetricsExport* m = p.metrics.get();
  opts.metrics_interval = m->interval();
  if (m->writes_file()) opts.on_metrics = [m] { m->tick(); };
  opts.aux_fd = m->http_fd();
  if (opts.aux_fd >= 0) opts.on_aux = [m] { m->on_http_ready(); };
}

// --stream, --stream-connect, --dgram, --fd: the peer attaches over a
// frame socket (attach::FrameServer) instead of vhost-user.
int run_frame_server(const ServeArgs& a) {
  auto fail = [](const std::string& why) {
    fmt::print(stderr, "vnetkit serve: {}\n", why);
    return 2;
  };
  if (a.guests > 1 && a.stream_path.empty() && a.seqpacket_path.empty() && a.dgram_path.empty())
    return fail("--guests N > 1 needs a socket guests come to (--vhost-user, --stream, --seqpacket or --dgram): each "
                "guest there is a port of one switch; --stream-connect and --fd serve one guest");
  if (a.mtu || a.no_offload || a.link_down || a.poll_us != 0 || a.queue_pairs != 1 || a.mac != net::kDefaultMac.to_string())
    log::warn("vnetkit serve: --mac, --mtu, --queue-pairs, --no-offload, --link-down and --poll-us concern the "
              "vhost-user device; over a frame socket the VMM owns the NIC, and they are ignored");
  using Mode = attach::FrameServerOptions::Mode;
  attach::FrameServerOptions opts;
  opts.mode = !a.stream_path.empty()           ? Mode::stream_listen
              : !a.seqpacket_path.empty()      ? Mode::seqpacket_listen
              : !a.stream_connect_path.empty() ? Mode::stream_connect
              : !a.dgram_path.empty()          ? Mode::dgram
                                               : Mode::fd;
  opts.path = a.stream_path + a.seqpacket_path + a.stream_connect_path + a.dgram_path;  // the one given
  opts.fd = a.fd;
  const bool connect_mode = opts.mode == Mode::stream_connect;
  // Reached by path after the sandbox is entered: the peer's listening
  // socket (--stream-connect), and the peer's own socket a datagram came
  // from (--dgram, which must lie beside ours). Their directory stays
  // visible, read-only.
  std::vector<std::string> visible;
  if (connect_mode || opts.mode == Mode::dgram) {
    std::error_code ec;
    opts.path = std::filesystem::absolute(opts.path, ec).lexically_normal().string();
    visible.push_back(std::filesystem::path(opts.path).parent_path().string());
  }
  auto prepared = prepare(a, connect_mode, std::move(visible), opts.mode == Mode::fd ? fmt::format("fd:{}", a.fd) : opts.path);
  if (!prepared) return fail(prepared.error());
  auto& plan = prepared->plan;
  auto& choice = prepared->choice;
  auto& mmds = prepared->mmds;
  auto& metrics = *prepared->metrics;
  hook_up(opts, *prepared);
  opts.remove_socket_on_exit = !plan.has_value();
  opts.max_connections = a.max_connections;
  opts.guests = a.guests;
  opts.isolate_guests = a.isolate_guests;
  opts.max_frame = 14 + std::size_t{a.net == "user" ? a.user.user_mtu : std::uint16_t{65535}};
  attach::FrameServer server(std::move(opts), *choice.backend, mmds.get());
  metrics.add(group_of("server", server.counters()));
  metrics.add(group_of("link", server.link_counters()));
  metrics.add(choice.metrics);
  if (const auto* sw = server.virtual_switch()) metrics.add(switch_group(*sw, [&server] { return server.peers(); }));
  if (mmds) metrics.add(group_of("mmds", mmds->counters()));
  if (auto r = server.open(); !r) return fail(r.error());
  if (plan.has_value()) {
    if (auto r = metrics.keep_open(); !r) return fail(r.error());
    if (mmds) mmds->store().pin_file();
  }
  if (auto r = enter_planned_sandbox(plan); !r) return fail(r.error());
  log::info("vnetkit serve: {} backend, {}", choice.backend->name(), server.describe());
  if (auto r = server.run(); !r) return fail(r.error());
  return 0;
}

int run_serve(const ServeArgs& a) {
  auto fail = [](const std::string& why) {
    fmt::print(stderr, "vnetkit serve: {}\n", why);
    return 2;
  };
  if (a.guests > 1 && a.net != "user")
    log::warn("vnetkit serve: --guests {} with --net {}: the guests share that backend through the switch, but only "
              "--net user gives each its own lease",
              a.guests, a.net);
  if (!a.stream_path.empty() || !a.seqpacket_path.empty() || !a.stream_connect_path.empty() || !a.dgram_path.empty() ||
      a.fd >= 0)
    return run_frame_server(a);
  net::NetConfig cfg;
  auto mac = net::MacAddress::parse(a.mac);
  if (!mac) return fail(fmt::format("--mac '{}' is not a MAC address (like 02:00:00:00:00:01)", a.mac));
  cfg.mac = *mac;
  cfg.mtu = a.mtu;
  // With --net user the device offers the MTU DHCP hands out, so the guest
  // posts RX buffers big enough for it (Linux sizes them by the device MTU).
  if (!cfg.mtu && a.net == "user") cfg.mtu = a.user.user_mtu;
  cfg.queue_pairs = a.queue_pairs;
  cfg.link_up = !a.link_down;
  cfg.guest_offloads = !a.no_offload;
  if (a.guests > 1 && !a.connect_path.empty())
    return fail("--guests N > 1 needs a listening socket (--vhost-user PATH): with --vhost-user-connect vnetkit "
                "reaches one frontend");
  if (a.guests > 1 && a.poll_us != 0) return fail("--poll-us busy-polls one frontend's rings; it cannot go with --guests");
  auto normalized = net::normalize(cfg);
  if (!normalized) return fail(normalized.error());
  if (normalized->queue_pairs > 1) {
    log::warn("--queue-pairs {}: multiqueue is not implemented yet; serving one queue pair", normalized->queue_pairs);
    normalized->queue_pairs = 1;
  }

  // In client mode the socket is reached by path on every reconnection:
  // its directory stays visible (read-only) in the sandbox's empty root.
  const bool connect_mode = !a.connect_path.empty();
  std::string socket_path = connect_mode ? a.connect_path : a.listen_path;
  std::vector<std::string> visible;
  if (connect_mode) {
    std::error_code ec;
    socket_path = std::filesystem::absolute(socket_path, ec).lexically_normal().string();
    visible.push_back(std::filesystem::path(socket_path).parent_path().string());
  }
  auto prepared = prepare(a, connect_mode, std::move(visible), socket_path);
  if (!prepared) return fail(prepared.error());
  auto& plan = prepared->plan;
  auto& choice = prepared->choice;
  auto& mmds = prepared->mmds;
  auto& metrics = *prepared->metrics;

  vhost_user::ServerOptions opts;
  hook_up(opts, *prepared);
  opts.connect = connect_mode;
  opts.socket_path = socket_path;
  opts.remove_socket_on_exit = !plan.has_value();
  opts.net = *normalized;
  opts.max_connections = a.max_connections;
  opts.guests = a.guests;
  opts.isolate_guests = a.isolate_guests;
  opts.max_frame = 14 + std::size_t{normalized->mtu.value_or(65535)};
  opts.poll = std::chrono::microseconds(a.poll_us);

  auto server = std::make_unique<vhost_user::Server>(std::move(opts), *choice.backend, mmds.get());
  const vhost_user::Server& s = *server;
  MetricsGroup server_group = group_of("server", s.counters());
  server_group.visit = [&s](const auto& emit) {
    s.counters().for_each(emit);
    emit("link_up", s.link_up() ? 1 : 0);
  };
  server_group.gauges = {{"link_up", "1 while the device's link is up (SIGUSR1 sets it down, SIGUSR2 up)"}};
  metrics.add(std::move(server_group));
  metrics.add(group_of("vhost_user", s.stats().session));
  metrics.add(group_of("net", s.stats().net));
  metrics.add(choice.metrics);
  if (const auto* sw = s.virtual_switch()) metrics.add(switch_group(*sw, [&s] { return s.frontends(); }));
  if (mmds) metrics.add(group_of("mmds", mmds->counters()));
  if (auto r = server->open(); !r) return fail(r.error());
  if (plan.has_value()) {
    // From here on only open files are reachable.
    if (auto r = metrics.keep_open(); !r) return fail(r.error());
    if (mmds) mmds->store().pin_file();
  }
  if (auto r = enter_planned_sandbox(plan); !r) return fail(r.error());
  log::info("vnetkit serve: {} backend, MAC {}{}", choice.backend->name(), normalized->mac.to_string(),
            normalized->mtu ? fmt::format(", MTU {}", *normalized->mtu) : std::string{});
  if (auto r = server->run(); !r) {
    if (connect_mode && plan.has_value() && plan->runas && r.error().ends_with(std::strerror(EACCES)))
      return fail(fmt::format("{} (once sandboxed vnetkit runs as {}: let that user reach the socket, name another "
                              "with --runas, or use --no-sandbox)",
                              r.error(), plan->runas->text));
    return fail(r.error());
  }
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Run the virtio-net device as a vhost-user-net backend, or serve a network over a frame socket");
  cmd->footer(
      "One frontend is served at a time; after it disconnects the next one is accepted (see --guests).\n"
      "Signals: SIGUSR1 sets the link down, SIGUSR2 sets it up, SIGTTIN/SIGTTOU log more/less, SIGINT/SIGTERM stop.\n"
      "Attach User-Mode Linux with virtio_uml.device=PATH:1, QEMU with\n"
      "  -chardev socket,id=c0,path=PATH -netdev vhost-user,id=n0,chardev=c0 -device virtio-net-pci,netdev=n0\n"
      "and shared guest memory (-object memory-backend-memfd,id=m,size=...,share=on -numa node,memdev=m).\n"
      "With --vhost-user-connect the socket is reached again on every reconnection, by the sandbox's user\n"
      "(started as root: --runas, default nobody), with only the socket's directory visible, read-only.\n"
      "In the sandbox a --vhost-user socket is not removed at exit (the next start replaces it), and --metrics\n"
      "is rewritten in place.\n"
      "Without vhost-user, a VMM or tool hands its network over a socket of plain Ethernet frames (no offloads):\n"
      "  --stream PATH      QEMU 7.2+: -netdev stream,id=n0,server=off,addr.type=unix,addr.path=PATH\n"
      "  --stream-connect PATH   QEMU: -netdev stream,id=n0,server=on,addr.type=unix,addr.path=PATH\n"
      "  --seqpacket PATH   User-Mode Linux: vec0:transport=bess,dst=PATH,src=UML_SIDE (the guest's eth is vec0)\n"
      "  --dgram PATH       QEMU: -netdev dgram,id=n0,local.type=unix,local.path=QEMU_SIDE,remote.type=unix,\n"
      "                     remote.path=PATH; vfkit: unixgram://PATH (answers go to each datagram's sender)\n"
      "  --fd N             an inherited socketpair end (krunkit, Virtualization.framework, a VMM): stream\n"
      "                     framing on SOCK_STREAM, one frame per datagram on SOCK_DGRAM/SOCK_SEQPACKET\n"
      "There the VMM owns the NIC: --mac, --mtu, --queue-pairs, --no-offload, --link-down and --poll-us do not apply.\n"
      "With --guests N (--vhost-user, --stream, --seqpacket; --dgram: per sender address) up to N guests attach at\n"
      "once, each a port of a learning switch in front of the one backend (vhost-user devices get MAC+0, MAC+1,\n"
      "...); --net user leases GUEST_IP, GUEST_IP+1, ... by MAC, and forwards reach GUEST_IP.");
  auto* listen = cmd->add_option("--vhost-user", args->listen_path, "Listen on this Unix socket (server mode)");
  auto* connect = cmd->add_option("--vhost-user-connect", args->connect_path,
                                  "Connect to a frontend listening on this Unix socket (client mode); retried until it is up");
  auto* stream = cmd->add_option("--stream", args->stream_path,
                                 "Listen on this Unix socket for QEMU's stream framing (-netdev stream; a 4-byte "
                                 "length before each frame); one peer at a time");
  auto* stream_connect = cmd->add_option("--stream-connect", args->stream_connect_path,
                                         "Connect to a peer listening on this Unix socket with QEMU's stream framing; "
                                         "retried until it is up, and after every disconnect");
  auto* seqpacket = cmd->add_option("--seqpacket", args->seqpacket_path,
                                    "Listen on this Unix SOCK_SEQPACKET socket: one Ethernet frame per packet "
                                    "(User-Mode Linux vec0:transport=bess,dst=PATH)");
  auto* dgram = cmd->add_option("--dgram", args->dgram_path,
                                "Bind a unixgram socket here: one Ethernet frame per datagram (QEMU -netdev dgram, "
                                "vfkit unixgram://), answered at the sender's address");
  auto* fd = cmd->add_option("--fd", args->fd,
                             "Serve an inherited socket (a socketpair end): stream framing on SOCK_STREAM, one frame "
                             "per datagram on SOCK_DGRAM/SOCK_SEQPACKET; until its peer hangs up")
                 ->check(CLI::NonNegativeNumber);
  for (auto* a : {listen, connect, stream, seqpacket, stream_connect, dgram, fd})
    for (auto* b : {listen, connect, stream, seqpacket, stream_connect, dgram, fd})
      if (a != b) a->excludes(b);
  cmd->add_option("--net", args->net,
                  "Backend: loopback, socketpair:FD (one frame per datagram), tap:IFNAME (a host TAP device, created "
                  "if missing; offloads pass through), user (NAT gateway: DHCP, DNS, ICMP, UDP, TCP)")
      ->capture_default_str();
  cmd->add_option("--mac", args->mac, "Device MAC address")->capture_default_str();
  cmd->add_option("--mtu", args->mtu, "Offer this MTU to the guest (VIRTIO_NET_F_MTU)")->check(CLI::Range(68, 65535));
  cmd->add_flag("--no-offload", args->no_offload,
                "Offer no checksum or segmentation offload (GUEST_CSUM, GUEST_TSO4, GUEST_TSO6, CSUM, HOST_TSO4, HOST_TSO6, HOST_ECN): whole, checksummed frames of at most the MTU both ways");
  cmd->add_option("--queue-pairs", args->queue_pairs, "Queue pairs (one is served today)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  auto* user = cmd->add_option_group("user-mode network", "With --net user");
  add_usernet_options(*user, args->user, "guest", "--user-mtu");
  add_mmds_options(*cmd, args->mmds);
  add_sandbox_options(*cmd, args->sandbox);
  cmd->add_flag("--link-down", args->link_down, "Start with the link down (SIGUSR2 brings it up)");
  add_metrics_options(*cmd, args->metrics);
  cmd->add_option("--max-connections", args->max_connections, "Exit after serving this many frontends (0: never)")
      ->capture_default_str();
  cmd->add_option("--guests", args->guests,
                  "Guests served at once on one network (--vhost-user, --stream, --seqpacket, or --dgram by sender address): "
                  "each is a port of a "
                  "switch; with --net user each gets its own DHCP lease (GUEST_IP and the next N-1 addresses) and "
                  "flows, and guests reach each other at L2")
      ->check(CLI::Range(1u, usernet::UsernetConfig::kMaxGuests))
      ->capture_default_str();
  cmd->add_flag("--isolate-guests", args->isolate_guests,
                "With --guests: no frames from one guest to another (each still reaches the gateway)");
  cmd->add_option("--poll-us", args->poll_us,
                  "After work, busy-poll the rings this many microseconds before sleeping (0: never). Costs a core; "
                  "saves wake-ups and kicks for small frames back to back")
      ->check(CLI::Range(0u, 1'000'000u))
      ->capture_default_str();
  cmd->callback([args, &exit_code] {
    if (args->listen_path.empty() && args->connect_path.empty() && args->stream_path.empty() &&
        args->seqpacket_path.empty() && args->stream_connect_path.empty() && args->dgram_path.empty() && args->fd < 0)
      throw CLI::RequiredError("--vhost-user PATH, --vhost-user-connect PATH, --stream PATH, --seqpacket PATH, "
                               "--stream-connect PATH, --dgram PATH or --fd N");
    args->user.guests = args->guests;
    exit_code = run_serve(*args);
  });
}

}  // namespace vnk::cli
