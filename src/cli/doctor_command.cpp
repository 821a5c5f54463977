#include "cli/doctor_command.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/host_features.hpp"
#include "base/unique_fd.hpp"

namespace vnk::cli {

namespace {

enum class Verdict { ok, fallback, missing, info };

struct Check {
  std::string item;
  Verdict verdict;
  std::string detail;  // what was found, and what to do when it is not ok
};

// In a child, so this process keeps its namespaces.
bool can_create_user_namespace() {
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) ::_exit(::unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string on_path(const char* program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  std::size_t at = 0;
  while (at <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', at), dirs.size());
    const std::string candidate = dirs.substr(at, end - at) + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    at = end + 1;
  }
  return {};
}

std::vector<Check> run_checks() {
  std::vector<Check> c;
  const HostFeatures f = probe_host_features();
  c.push_back({"kernel", Verdict::info, "Linux " + f.kernel});

  const bool peek = f.tcp_peek_off_v4 && f.tcp_peek_off_v6;
  c.push_back({"TCP SO_PEEK_OFF", peek ? Verdict::ok : Verdict::fallback,
               peek ? "available" : "not available (Linux 6.9 adds it): TCP re-reads in-flight bytes from the "
                                    "socket's queue instead; it works, at some CPU cost"});

  const bool ping = f.ping_sockets_v4 && f.ping_sockets_v6;
  const bool raw = f.raw_icmp_v4 && f.raw_icmp_v6;
  c.push_back({"guest pings", ping ? Verdict::ok : raw ? Verdict::fallback : Verdict::missing,
               ping  ? "ping sockets are open to this user"
               : raw ? "no ping sockets for this user; vnetkit uses a raw ICMP socket (CAP_NET_RAW) instead"
                     : "no ping sockets for this user and no CAP_NET_RAW: guest pings are dropped. Fix: "
                       "sysctl -w net.ipv4.ping_group_range='0 2147483647'"});

  const bool userns = can_create_user_namespace();
  const bool root = ::geteuid() == 0;
  c.push_back({"user namespaces", userns ? Verdict::ok : root ? Verdict::fallback : Verdict::missing,
               userns ? "this user may create them (the sandbox, vnetkit netns without root)"
               : root ? std::string("not available; as root vnetkit netns works and the sandbox drops to --runas "
                                    "without one. ") +
                            kUserNamespaceHint
                      : std::string("not available: vnetkit netns needs root, and the sandbox runs with fewer "
                                    "layers. ") +
                            kUserNamespaceHint});

  {
    UniqueFd tun(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    const int err = tun.valid() ? 0 : errno;
    c.push_back({"/dev/net/tun", tun.valid() ? Verdict::ok : Verdict::missing,
                 tun.valid()       ? "opens"
                 : err == ENOENT   ? "missing: vnetkit netns and --net tap need it. Fix: modprobe tun (and mknod "
                                     "/dev/net/tun c 10 200 in a container)"
                 : err == EACCES || err == EPERM
                     ? "not permitted for this user: vnetkit netns opens it inside its own user namespace, --net "
                       "tap needs root or CAP_NET_ADMIN"
                     : fmt::format("cannot open: {}", std::strerror(err))});
  }

  {
    rlimit r{};
    ::getrlimit(RLIMIT_NOFILE, &r);
    const auto hard = r.rlim_max;
    const bool plenty = hard == RLIM_INFINITY || hard >= 16384;
    c.push_back({"open files (RLIMIT_NOFILE)", plenty ? Verdict::ok : Verdict::fallback,
                 fmt::format("soft {}, hard {}; vnetkit raises the soft limit to the hard one{}",
                             r.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : std::to_string(r.rlim_cur),
                             hard == RLIM_INFINITY ? std::string("unlimited") : std::to_string(hard),
                             plenty ? ""
                                    : ": every guest flow holds a socket, so connections beyond that are refused "
                                      "(counted). Raise it with ulimit -Hn, limits.conf or systemd's LimitNOFILE")});
  }

  {
    // vhost-user frontends share guest memory as memfds that vnetkit maps.
    UniqueFd m(static_cast<int>(::memfd_create("vnetkit-doctor", MFD_CLOEXEC)));
    bool mapped = false;
    if (m.valid() && ::ftruncate(m.get(), 1 << 20) == 0) {
      void* p = ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, m.get(), 0);
      mapped = p != MAP_FAILED;
      if (mapped) ::munmap(p, 1 << 20);
    }
    c.push_back({"shared memory (vhost-user)", mapped ? Verdict::ok : Verdict::missing,
                 mapped ? "memfd_create and shared mappings work"
                        : fmt::format("memfd_create or a shared mapping failed ({}): vhost-user cannot map guest "
                                      "memory", std::strerror(errno))});
  }

  {
    const bool seccomp = ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0;
    c.push_back({"seccomp", seccomp ? Verdict::ok : Verdict::fallback,
                 seccomp ? "available for the sandbox's system-call allowlist"
                         : "not available: the sandbox runs without its system-call filter"});
  }

  c.push_back({"pidfd_open", f.pidfd ? Verdict::ok : Verdict::missing,
               f.pidfd ? "available" : "not available (Linux 5.3): vnetkit netns cannot wait for its command or --pid"});

  for (const auto& [program, what] : {std::pair{"linux.uml", "User-Mode Linux (vnetkit demo; apt install user-mode-linux)"},
                                      std::pair{"qemu-system-x86_64", "QEMU (apt install qemu-system-x86)"}}) {
    const std::string at = on_path(program);
    c.push_back({program, Verdict::info,
                 at.empty() ? fmt::format("not found: {} -- only to run guests, vnetkit itself does not need it", what)
                            : "found at " + at});
  }
  return c;
}

int run_doctor() {
  const auto checks = run_checks();
  std::size_t width = 0;
  for (const auto& c : checks) width = std::max(width, c.item.size());
  int missing = 0;
  for (const auto& c : checks) {
    const char* tag = c.verdict == Verdict::ok         ? "ok      "
                      : c.verdict == Verdict::fallback ? "fallback"
                      : c.verdict == Verdict::missing  ? "MISSING "
                                                       : "        ";
    missing += c.verdict == Verdict::missing;
    fmt::print("{}  {:<{}}  {}\n", tag, c.item, width, c.detail);
  }
  fmt::print("{}\n", missing == 0 ? "vnetkit doctor: nothing missing"
                                  : fmt::format("vnetkit doctor: {} missing (see above)", missing));
  return missing == 0 ? 0 : 1;
}

}  // namespace

void add_doctor_command(CLI::App& app, int& exit_code) {
  CLI::App* cmd = app.add_subcommand("doctor", "Check this host for everything vnetkit relies on");
  cmd->footer(
      "One line per item: ok; fallback (vnetkit works, another way); MISSING (a feature will not work: the line says "
      "what to do); or plain information. Exit status 1 when something is missing, else 0.\n"
      "VNETKIT_PRETEND_MISSING=tcp-peek-off,ping-sockets,raw-icmp makes those probes fail (for testing).");
  cmd->callback([&exit_code] { exit_code = run_doctor(); });
}

}  // namespace vnk::cli
