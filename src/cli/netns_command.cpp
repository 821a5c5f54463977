#include "cli/netns_command.hpp"

#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <optional>

#include "base/epoll_ops.hpp"
#include "base/log.hpp"
#include "cli/metrics_options.hpp"
#include "cli/mmds_options.hpp"
#include "cli/sandbox_options.hpp"
#include "cli/signal_fd.hpp"
#include "cli/usernet_options.hpp"
#include "net/net_config.hpp"
#include "netns/namespace_child.hpp"
#include "netns/tap_link.hpp"
#include "usernet/usernet.hpp"

namespace vnk::cli {

namespace {

// Exit codes of our own failures, as env(1), chroot(1) and timeout(1) use.
constexpr int kSetupFailed = 125;

struct NetnsArgs {
  std::string netns_path;
  int pid = 0;
  std::vector<std::string> command;
  std::string ifname = "tap0";
  std::string mac = net::kDefaultMac.to_string();
  UsernetArgs user;
  MmdsArgs mmds;
  MetricsArgs metrics;
  bool no_offload = false;
  SandboxArgs sandbox;
};

enum Tag : std::uint64_t { kTap, kBackend, kSignal, kExit, kMetrics, kMetricsHttp };

std::string resolv_conf_for(const usernet::UsernetConfig& cfg) {
  std::string text = "# written by vnetkit netns: queries go to usernet's DNS address\nnameserver " + cfg.dns.to_string() + "\n";
  if (!cfg.domain.empty()) text += "search " + cfg.domain + "\n";
  return text;
}

int run_netns(const NetnsArgs& a) {
  auto fail = [](const std::string& why) {
    fmt::print(stderr, "vnetkit netns: {}\n", why);
    return kSetupFailed;
  };
  auto cfg = to_usernet_config(a.user);
  if (!cfg) return fail(cfg.error());
  auto mac = MacAddress::parse(a.mac);
  if (!mac || !mac->is_unicast()) return fail(fmt::format("--mac '{}' is not a unicast MAC address (like 02:00:00:00:00:01)", a.mac));
  cfg->guest_mac = *mac;

  netns::NamespaceRequest request;
  if (!a.netns_path.empty()) request.join_path = a.netns_path;
  if (a.pid > 0) {
    if (::kill(a.pid, 0) != 0 && errno == ESRCH) return fail(fmt::format("--pid {}: no such process", a.pid));
    request.join_path = fmt::format("/proc/{}/ns/net", a.pid);
  }
  request.command = a.command;
  if (request.command.empty() && request.join_path.empty()) {
    const char* shell = std::getenv("SHELL");
    request.command = {shell != nullptr && *shell != 0 ? shell : "/bin/sh"};
  }
  request.interface = {a.ifname, *mac, cfg->mtu, cfg->guest.value, cfg->prefix, cfg->gateway.value, cfg->ipv6.enabled};
  request.resolv_conf = resolv_conf_for(*cfg);
  auto plan = plan_sandbox(a.sandbox, {sandbox::Profile::netns, false});
  if (!plan) return fail(plan.error());

  auto started = start_usernet(*cfg);
  if (!started) return fail(started.error());
  std::unique_ptr<usernet::UserNet> backend = std::move(*started);
  auto mmds = open_mmds(a.mmds);
  if (!mmds) return fail(mmds.error());
  auto signals = block_signals({SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTTIN, SIGTTOU});
  if (!signals) return fail(signals.error());
  auto metrics = MetricsExport::open(a.metrics, a.ifname);
  if (!metrics) return fail(metrics.error());

  auto child = netns::spawn_namespace(request);
  if (!child) {
    fmt::print(stderr, "vnetkit netns: {}\n", child.error().message);
    return child.error().exit_code;
  }
  netns::TapLink link(std::move(child->tap), *backend, mmds->get());
  // Checksum and segmentation offload on the TAP: the namespace's kernel
  // and usernet exchange TCP in frames of up to 64 KiB whatever the MTU,
  // and neither computes checksums the other does not need.
  const bool offloads = !a.no_offload && link.enable_offloads();

  // What ends the run: the command exiting, or with --pid alone the
  // process whose namespace we serve; otherwise only a signal.
  UniqueFd exit_fd = std::move(child->pidfd);
  if (!child->runs_command && a.pid > 0) exit_fd.reset(static_cast<int>(::syscall(SYS_pidfd_open, a.pid, 0)));

  (*metrics)->add(group_of("tap", link.counters()));
  (*metrics)->add(group_of("backend", backend->counters()));
  if (*mmds) (*metrics)->add(group_of("mmds", (*mmds)->counters()));
  UniqueFd metrics_timer;
  if ((*metrics)->writes_file()) {
    metrics_timer.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    const auto ms = (*metrics)->interval().count();
    itimerspec its{};
    its.it_interval.tv_sec = its.it_value.tv_sec = ms / 1000;
    its.it_interval.tv_nsec = its.it_value.tv_nsec = static_cast<long>(ms % 1000) * 1'000'000;
    ::timerfd_settime(metrics_timer.get(), 0, &its, nullptr);
  }

  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  bool ok = epoll.valid() && epoll_add(epoll.get(), link.tap_fd(), EPOLLIN, kTap) &&
            epoll_add(epoll.get(), backend->rx_fd(), EPOLLIN, kBackend) &&
            epoll_add(epoll.get(), signals->get(), EPOLLIN, kSignal);
  if (exit_fd.valid()) ok = ok && epoll_add(epoll.get(), exit_fd.get(), EPOLLIN, kExit);
  if (metrics_timer.valid()) ok = ok && epoll_add(epoll.get(), metrics_timer.get(), EPOLLIN, kMetrics);
  if ((*metrics)->http_fd() >= 0) ok = ok && epoll_add(epoll.get(), (*metrics)->http_fd(), EPOLLIN, kMetricsHttp);
  if (!ok) return fail(fmt::format("epoll: {}", std::strerror(errno)));

  if (plan->has_value()) {
    // From here on only open files are reachable.
    if (auto r = (*metrics)->keep_open(); !r) return fail(r.error());
    if (*mmds) (*mmds)->store().pin_file();
  }
  if (auto r = enter_planned_sandbox(*plan); !r) return fail(r.error());

  log::info("vnetkit netns: {} {}/{} gateway {} DNS {} MTU {}{}{}", a.ifname, cfg->guest.to_string(), cfg->prefix,
            cfg->gateway.to_string(), cfg->dns.to_string(), cfg->mtu,
            offloads ? ", checksum and TCP segmentation offload" : ", no offloads",
            child->runs_command ? fmt::format(", running {}", request.command.front())
                                : fmt::format(" in {}", request.join_path));

  int exit_code = 0;
  bool more = true;  // work may be waiting without an event
  for (bool running = true; running;) {
    std::array<epoll_event, 8> events{};
    const int n = ::epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), more ? 0 : -1);
    if (n < 0 && errno != EINTR) return fail(fmt::format("epoll_wait: {}", std::strerror(errno)));
    more = false;
    bool backend_ready = false;
    for (int i = 0; i < n; ++i) {
      switch (events[i].data.u64) {
        case kTap: more |= link.from_tap(); break;
        case kBackend: backend_ready = true; break;  // to_tap() below takes it
        case kSignal: {
          signalfd_siginfo si{};
          while (::read(signals->get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            if (si.ssi_signo == SIGTTIN || si.ssi_signo == SIGTTOU) {
              // Sent to us (kill): the log level. The terminal's reach the
              // command by itself.
              if (si.ssi_code != SI_KERNEL) change_log_level(static_cast<int>(si.ssi_signo));
            } else if (!child->runs_command) {
              log::info("vnetkit netns: signal {}, stopping", si.ssi_signo);
              running = false;
            } else if (si.ssi_code != SI_KERNEL) {
              // Relay signals sent to us; the terminal's (SI_KERNEL) reach
              // the command by itself, being in our process group.
              netns::relay_signal(*child, static_cast<int>(si.ssi_signo));
            }
          }
          break;
        }
        case kExit:
          if (child->runs_command) exit_code = netns::wait_exit_code(child->pid);
          else log::info("vnetkit netns: process {} exited, stopping", a.pid);
          running = false;
          break;
        case kMetrics: {
          std::uint64_t expirations = 0;
          (void)!::read(metrics_timer.get(), &expirations, sizeof expirations);
          (*metrics)->tick();
          break;
        }
        case kMetricsHttp: (*metrics)->on_http_ready(); break;
        default: break;
      }
    }
    more |= link.to_tap(backend_ready);
    more |= link.pending();
  }
  (*metrics)->tick();
  return exit_code;
}

}  // namespace

void add_netns_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<NetnsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "netns", "Give a network namespace (a rootless container, a sandbox) user-mode networking through a TAP device");
  cmd->footer(
      "Usage: vnetkit netns [OPTIONS] [--netns PATH | --pid PID] [-- COMMAND [ARGS...]]\n"
      "Without --netns or --pid, a new network namespace is created (with a user namespace mapping you to root\n"
      "inside when you are not root) and COMMAND, or $SHELL, runs in it; vnetkit exits with its status.\n"
      "With --netns or --pid the existing namespace is joined; vnetkit serves it until SIGINT/SIGTERM\n"
      "(with --pid alone, until that process exits).\n"
      "The TAP device is set up as DHCP would: address, netmask, default route via the gateway, MTU.\n"
      "The command sees a private /etc/resolv.conf naming the DNS address.\n"
      "Exit status: the command's, 128+N if signal N killed it, 125 if vnetkit failed,\n"
      "126 if the command cannot run, 127 if it was not found.\n"
      "Example: vnetkit netns --forward tcp:8080:80 -- python3 -m http.server 80");
  cmd->add_option("--netns", args->netns_path, "Join this network namespace (/run/netns/NAME, /proc/PID/ns/net)");
  cmd->add_option("--pid", args->pid, "Join the network namespace of this process")->check(CLI::PositiveNumber);
  cmd->add_option("--ifname", args->ifname, "Name of the TAP device in the namespace")->capture_default_str();
  cmd->add_option("--mac", args->mac, "MAC address of the TAP device")->capture_default_str();
  auto* user = cmd->add_option_group("user-mode network");
  add_usernet_options(*user, args->user, "namespace", "--mtu");
  add_mmds_options(*cmd, args->mmds);
  add_sandbox_options(*cmd, args->sandbox);
  cmd->add_flag("--no-offload", args->no_offload,
                "Exchange only whole, checksummed frames of at most the MTU with the namespace (no TUNSETOFFLOAD)");
  add_metrics_options(*cmd, args->metrics);
  cmd->add_option("command", args->command, "The command to run inside, after --");
  cmd->positionals_at_end();
  cmd->callback([args, &exit_code] {
    if (!args->netns_path.empty() && args->pid > 0) throw CLI::ValidationError("--netns and --pid", "give one of them");
    exit_code = run_netns(*args);
  });
}

}  // namespace vnk::cli
