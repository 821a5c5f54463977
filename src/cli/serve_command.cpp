#include "cli/serve_command.hpp"

#include <fcntl.h>
#include <sys/signalfd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <csignal>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>

#include "backend/loopback_backend.hpp"
#include "backend/socketpair_backend.hpp"
#include "base/log.hpp"
#include "cli/metrics_file.hpp"
#include "mmds/mmds_interceptor.hpp"
#include "usernet/usernet.hpp"
#include "vhost_user/server.hpp"

namespace vnk::cli {

namespace {

struct ServeArgs {
  std::string listen_path;
  std::string connect_path;
  std::string net = "loopback";
  std::string mac = net::kDefaultMac.to_string();
  std::optional<std::uint16_t> mtu;
  std::uint16_t queue_pairs = 1;
  bool link_down = false;
  std::string metrics_path;
  unsigned metrics_interval_ms = 1000;
  unsigned max_connections = 0;
  // --net user
  std::string network = "10.0.2.0/24";
  std::string gateway = "10.0.2.2";
  std::string dns = "10.0.2.3";
  std::string guest = "10.0.2.15";
  std::uint16_t user_mtu = 65520;
  std::string hostname;
  std::string domain;
  std::vector<std::string> dns_upstreams;
  std::string resolv_conf = "/etc/resolv.conf";
  bool no_map_gw = false;
  std::vector<std::string> forwards;
  std::string pcap;
  bool host_only = false;
  std::string mmds;
  bool mmds_require_token = false;
};

// The backend chosen with --net, with its counters for --metrics.
struct BackendChoice {
  std::unique_ptr<net::NetBackend> backend;
  MetricsGroup metrics;
};

template <typename Counters>
MetricsGroup group_of(std::string name, const Counters& c) {
  return {std::move(name), [&c](const auto& emit) { c.for_each(emit); }};
}

std::expected<usernet::UsernetConfig, std::string> usernet_config(const ServeArgs& a) {
  usernet::UsernetConfig cfg;
  const auto slash = a.network.find('/');
  auto net = usernet::Ipv4Address::parse(a.network.substr(0, slash));
  unsigned prefix = 0;
  const std::string p = slash == std::string::npos ? "" : a.network.substr(slash + 1);
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (!net || p.empty() || ec != std::errc{} || end != p.data() + p.size())
    return std::unexpected(fmt::format("--network '{}': expected ADDRESS/PREFIX, like 10.0.2.0/24", a.network));
  cfg.network = *net;
  cfg.prefix = prefix;
  const struct {
    const char* option;
    const std::string& text;
    usernet::Ipv4Address& out;
  } addrs[] = {{"--gateway", a.gateway, cfg.gateway}, {"--dns", a.dns, cfg.dns}, {"--guest-ip", a.guest, cfg.guest}};
  for (const auto& x : addrs) {
    auto ip = usernet::Ipv4Address::parse(x.text);
    if (!ip) return std::unexpected(fmt::format("{} '{}' is not an IPv4 address", x.option, x.text));
    x.out = *ip;
  }
  cfg.mtu = a.user_mtu;
  cfg.hostname = a.hostname;
  cfg.domain = a.domain;
  cfg.map_gateway_to_loopback = !a.no_map_gw;
  cfg.pcap_path = a.pcap;
  cfg.host_only = a.host_only;
  for (const auto& text : a.dns_upstreams) {
    auto u = usernet::parse_upstream(text);
    if (!u) return std::unexpected(fmt::format("--dns-upstream '{}': expected IP or IP:PORT, like 127.0.0.1:5353", text));
    cfg.dns_upstreams.push_back(*u);
  }
  for (const auto& text : a.forwards) {
    auto f = usernet::parse_forward(text);
    if (!f)
      return std::unexpected(fmt::format(
          "--forward '{}': expected tcp:HOSTPORT:GUESTPORT or udp:[ADDRESS:]HOSTPORT:GUESTPORT, like tcp:8080:80", text));
    cfg.forwards.push_back(*f);
  }
  if (cfg.dns_upstreams.empty() && !a.resolv_conf.empty()) {
    std::ifstream in(a.resolv_conf);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    cfg.dns_upstreams = usernet::parse_resolv_conf(text);
  }
  return usernet::validate(cfg);
}

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
  if (spec == "user") {
    auto cfg = usernet_config(a);
    if (!cfg) return std::unexpected(cfg.error());
    std::unique_ptr<usernet::UserNet> b;
    try {
      b = std::make_unique<usernet::UserNet>(*cfg);
    } catch (const std::runtime_error& e) {
      return std::unexpected(e.what());
    }
    auto g = group_of("backend", b->counters());
    return BackendChoice{std::move(b), std::move(g)};
  }
  return std::unexpected(fmt::format("--net '{}': expected loopback, socketpair:FD or user", spec));
}

// Signals the server handles are blocked and read from a signalfd, so they
// arrive in its event loop rather than interrupting it.
std::expected<UniqueFd, std::string> block_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGUSR2}) sigaddset(&set, s);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return std::unexpected("sigprocmask failed");
  UniqueFd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd.valid()) return std::unexpected("signalfd failed");
  std::signal(SIGPIPE, SIG_IGN);
  return fd;
}

int run_serve(const ServeArgs& a) {
  auto fail = [](const std::string& why) {
    fmt::print(stderr, "vnetkit serve: {}\n", why);
    return 2;
  };
  net::NetConfig cfg;
  auto mac = net::MacAddress::parse(a.mac);
  if (!mac) return fail(fmt::format("--mac '{}' is not a MAC address (like 02:00:00:00:00:01)", a.mac));
  cfg.mac = *mac;
  cfg.mtu = a.mtu;
  // With --net user the device offers the MTU DHCP hands out, so the guest
  // posts RX buffers big enough for it (Linux sizes them by the device MTU).
  if (!cfg.mtu && a.net == "user") cfg.mtu = a.user_mtu;
  cfg.queue_pairs = a.queue_pairs;
  cfg.link_up = !a.link_down;
  auto normalized = net::normalize(cfg);
  if (!normalized) return fail(normalized.error());
  if (normalized->queue_pairs > 1) {
    log::warn("--queue-pairs {}: multiqueue is not implemented yet; serving one queue pair", normalized->queue_pairs);
    normalized->queue_pairs = 1;
  }

  auto choice = make_backend(a.net, a);
  if (!choice) return fail(choice.error());
  std::unique_ptr<mmds::MmdsInterceptor> mmds;
  if (!a.mmds.empty()) {
    auto store = mmds::MetadataStore::open(a.mmds, a.mmds_require_token);
    if (!store) return fail(store.error());
    mmds = std::make_unique<mmds::MmdsInterceptor>(std::move(*store), usernet::UsernetConfig{}.gateway_mac);
    log::info("mmds: serving {} at 169.254.169.254:80{}", a.mmds, a.mmds_require_token ? " (session tokens required)" : "");
  }
  auto signals = block_signals();
  if (!signals) return fail(signals.error());

  vhost_user::ServerOptions opts;
  opts.connect = !a.connect_path.empty();
  opts.socket_path = opts.connect ? a.connect_path : a.listen_path;
  opts.net = *normalized;
  opts.signal_fd = signals->get();
  opts.max_connections = a.max_connections;
  opts.metrics_interval = std::chrono::milliseconds(a.metrics_interval_ms);

  std::unique_ptr<vhost_user::Server> server;
  std::unique_ptr<MetricsFile> metrics;
  if (!a.metrics_path.empty()) {
    opts.on_metrics = [&metrics] { metrics->write(); };
  }
  server = std::make_unique<vhost_user::Server>(std::move(opts), *choice->backend, mmds.get());
  if (!a.metrics_path.empty()) {
    const vhost_user::Server& s = *server;
    metrics = std::make_unique<MetricsFile>(
        a.metrics_path,
        std::vector<MetricsGroup>{
            {"server",
             [&s](const auto& emit) {
               s.counters().for_each(emit);
               emit("link_up", s.link_up() ? 1 : 0);
             }},
            group_of("vhost_user", s.stats().session), group_of("net", s.stats().net), choice->metrics});
    if (mmds) metrics->add(group_of("mmds", mmds->counters()));
  }
  if (auto r = server->open(); !r) return fail(r.error());
  log::info("vnetkit serve: {} backend, MAC {}{}", choice->backend->name(), normalized->mac.to_string(),
            normalized->mtu ? fmt::format(", MTU {}", *normalized->mtu) : std::string{});
  if (auto r = server->run(); !r) return fail(r.error());
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the virtio-net device as a vhost-user-net backend");
  cmd->footer(
      "One frontend is served at a time; after it disconnects the next one is accepted.\n"
      "Signals: SIGUSR1 sets the link down, SIGUSR2 sets it up, SIGINT/SIGTERM stop.\n"
      "Attach User-Mode Linux with virtio_uml.device=PATH:1, QEMU with\n"
      "  -chardev socket,id=c0,path=PATH -netdev vhost-user,id=n0,chardev=c0 -device virtio-net-pci,netdev=n0\n"
      "and shared guest memory (-object memory-backend-memfd,id=m,size=...,share=on -numa node,memdev=m).");
  auto* listen = cmd->add_option("--vhost-user", args->listen_path, "Listen on this Unix socket (server mode)");
  auto* connect = cmd->add_option("--vhost-user-connect", args->connect_path,
                                  "Connect to a frontend listening on this Unix socket (client mode); retried until it is up");
  listen->excludes(connect);
  cmd->add_option("--net", args->net, "Backend: loopback, socketpair:FD (one frame per datagram), user (NAT gateway: DHCP, DNS, ICMP, UDP, TCP)")
      ->capture_default_str();
  cmd->add_option("--mac", args->mac, "Device MAC address")->capture_default_str();
  cmd->add_option("--mtu", args->mtu, "Offer this MTU to the guest (VIRTIO_NET_F_MTU)")->check(CLI::Range(68, 65535));
  cmd->add_option("--queue-pairs", args->queue_pairs, "Queue pairs (one is served today)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  auto* user = cmd->add_option_group("user-mode network", "With --net user");
  user->add_option("--network", args->network, "Guest network, ADDRESS/PREFIX")->capture_default_str();
  user->add_option("--gateway", args->gateway, "Gateway address (answers ARP, serves DHCP)")->capture_default_str();
  user->add_option("--dns", args->dns, "DNS address handed out by DHCP")->capture_default_str();
  user->add_option("--guest-ip", args->guest, "The address the guest leases")->capture_default_str();
  user->add_option("--user-mtu", args->user_mtu, "MTU handed out by DHCP (576..65520)")->capture_default_str();
  user->add_option("--hostname", args->hostname, "Host name handed out by DHCP");
  user->add_option("--domain", args->domain, "Domain name handed out by DHCP");
  user->add_option("--dns-upstream", args->dns_upstreams,
                   "Resolver for queries to the DNS address, IP[:PORT] (repeatable; default: nameservers in --resolv-conf)");
  user->add_option("--resolv-conf", args->resolv_conf, "Where to find the host's resolvers")->capture_default_str();
  user->add_option("--forward", args->forwards,
                   "Inbound port forward tcp|udp:[ADDRESS:]HOSTPORT:GUESTPORT (ADDRESS defaults to 127.0.0.1; repeatable)");
  user->add_option("--pcap", args->pcap, "Write every frame, both ways, to this pcap file (tcpdump -r FILE)");
  user->add_flag("--host-only", args->host_only,
                 "The guest reaches only the host's loopback (via the gateway) and DNS, nothing beyond");
  user->add_flag("--no-map-gw", args->no_map_gw,
                 "Do not map the gateway address to the host's 127.0.0.1 (it then answers ARP and DHCP only)");
  cmd->add_option("--mmds", args->mmds,
                  "Answer HTTP at 169.254.169.254:80 from this JSON document (re-read when it changes)");
  cmd->add_flag("--mmds-require-token", args->mmds_require_token,
                "MMDS GETs need an IMDSv2 session token (PUT /latest/api/token)");
  cmd->add_flag("--link-down", args->link_down, "Start with the link down (SIGUSR2 brings it up)");
  cmd->add_option("--metrics", args->metrics_path, "Write counters as JSON to this file (rewritten atomically)");
  cmd->add_option("--metrics-interval", args->metrics_interval_ms, "Milliseconds between metrics writes")
      ->check(CLI::Range(10u, 3'600'000u))
      ->capture_default_str();
  cmd->add_option("--max-connections", args->max_connections, "Exit after serving this many frontends (0: never)")
      ->capture_default_str();
  cmd->callback([args, &exit_code] {
    if (args->listen_path.empty() && args->connect_path.empty())
      throw CLI::RequiredError("--vhost-user PATH or --vhost-user-connect PATH");
    exit_code = run_serve(*args);
  });
}

}  // namespace vnk::cli
