#include "sandbox/syscall_filter.hpp"

#include <linux/if_tun.h>

#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sockios.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <memory>

namespace vnk::sandbox {

namespace {

// Called with no arguments checked: I/O on fds we hold, and the runtime.
constexpr std::array kCommon = {
    // The event loop and I/O on sockets, eventfds, timerfds, the TAP fd.
    "epoll_wait", "epoll_pwait", "epoll_ctl", "read", "write", "readv", "writev", "pread64", "pwrite64",
    "recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg", "sendmmsg", "close", "fcntl",
    // usernet's host sockets (socket() itself is narrowed below); listening
    // sockets (forwards, vhost-user) were bound during set-up.
    "connect", "accept4", "shutdown", "setsockopt", "getsockopt", "getsockname", "getpeername",
    // Timers and time (the vDSO answers most; these are its fallbacks).
    "timerfd_settime", "timerfd_gettime", "clock_gettime", "clock_getres", "gettimeofday",
    // Memory allocation (mmap and mprotect are narrowed below).
    "brk", "munmap", "mremap", "madvise", "futex",
    // fstat (MMDS document changes), random numbers (session tokens, ids).
    "newfstatat", "fstat", "lseek", "getrandom",
    // Signals, exiting, and what abort() and our SIGSYS handler call.
    "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "restart_syscall", "exit", "exit_group", "getpid", "gettid",
    "tgkill"};

// What the AddressSanitizer runtime calls on its own (test builds only).
#if defined(__SANITIZE_ADDRESS__) || defined(__has_feature)
#if defined(__SANITIZE_ADDRESS__) || __has_feature(address_sanitizer)
#define VNK_SANITIZER_RUNTIME 1
#endif
#endif
#ifdef VNK_SANITIZER_RUNTIME
constexpr std::array kSanitizerRuntime = {"sigaltstack"};
#endif

// vnetkit netns waits for the helper that runs its command (signals for the
// command go to the helper as messages).
constexpr std::array kNetns = {"wait4", "waitid"};

// Names of system calls by number, filled before the filter is installed:
// the SIGSYS handler may not allocate.
constexpr int kNamedSyscalls = 512;
std::array<char[32], kNamedSyscalls> g_names{};

void name_syscalls() {
  for (int n = 0; n < kNamedSyscalls; ++n) {
    std::unique_ptr<char, decltype(&std::free)> name(seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, n), &std::free);
    std::snprintf(g_names[n], sizeof g_names[n], "%s", name ? name.get() : "?");
  }
}

void append(char*& p, const char* end, const char* s) {
  while (*s != 0 && p < end) *p++ = *s++;
}

// Async-signal-safe: no allocation, no stdio.
void on_forbidden_syscall(int, siginfo_t* info, void*) {
  char line[160];
  char* p = line;
  const char* end = line + sizeof line;
  const int nr = info->si_syscall;
  append(p, end, "vnetkit: sandbox: system call ");
  append(p, end, nr >= 0 && nr < kNamedSyscalls ? g_names[nr] : "?");
  char num[16];
  char* q = num + sizeof num;
  *--q = 0;
  unsigned v = static_cast<unsigned>(nr);
  do {
    *--q = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && q > num);
  append(p, end, " (");
  append(p, end, q);
  append(p, end, ") is not allowed; stopping (run with --no-sandbox to debug)\n");
  (void)!::write(STDERR_FILENO, line, static_cast<std::size_t>(p - line));
  // SA_RESETHAND made the action the default again, and SA_NODEFER lets it
  // be delivered now: the process ends by SIGSYS, as a seccomp kill would.
  ::syscall(SYS_tgkill, ::getpid(), ::gettid(), SIGSYS);
  ::_exit(128 + SIGSYS);
}

scmp_arg_cmp arg(unsigned index, scmp_compare op, std::uint64_t a, std::uint64_t b = 0) {
  return scmp_arg_cmp{index, op, a, b};
}

struct Rule {
  int nr;
  std::vector<scmp_arg_cmp> args;
};

std::vector<Rule> rules_for(const FilterNeeds& needs) {
  std::vector<Rule> rules;
  auto add = [&rules](const char* name) {
    const int nr = seccomp_syscall_resolve_name(name);
    if (nr != __NR_SCMP_ERROR) rules.push_back({nr, {}});
  };
  for (const char* name : kCommon) add(name);
#ifdef VNK_SANITIZER_RUNTIME
  for (const char* name : kSanitizerRuntime) add(name);
#endif
  if (needs.profile == Profile::netns)
    for (const char* name : kNetns) add(name);
  // Sockets only of the families usernet (and vhost-user) open.
  rules.push_back({SCMP_SYS(socket), {arg(0, SCMP_CMP_EQ, AF_INET)}});
  rules.push_back({SCMP_SYS(socket), {arg(0, SCMP_CMP_EQ, AF_INET6)}});
  if (needs.connects_unix) rules.push_back({SCMP_SYS(socket), {arg(0, SCMP_CMP_EQ, AF_UNIX)}});
  // TCP flows ask how much the host peer has not acknowledged yet.
  rules.push_back({SCMP_SYS(ioctl), {arg(1, SCMP_CMP_EQ, SIOCOUTQ)}});
  // A TAP backend tells the TAP which offloads each new guest takes.
  if (needs.tap_offloads) rules.push_back({SCMP_SYS(ioctl), {arg(1, SCMP_CMP_EQ, TUNSETOFFLOAD)}});
  // Memory never becomes executable: no code can be loaded.
  rules.push_back({SCMP_SYS(mmap), {arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)}});
  rules.push_back({SCMP_SYS(mprotect), {arg(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)}});
  return rules;
}

}  // namespace

std::vector<std::string> allowed_syscalls(const FilterNeeds& needs) {
  std::vector<std::string> names;
  for (const Rule& r : rules_for(needs)) {
    std::unique_ptr<char, decltype(&std::free)> name(seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, r.nr), &std::free);
    std::string n = name ? name.get() : std::to_string(r.nr);
    if (!r.args.empty()) n += "*";  // arguments checked
    if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(std::move(n));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::expected<void, std::string> install_syscall_filter(const FilterNeeds& needs) {
  name_syscalls();
  struct sigaction sa {};
  sa.sa_sigaction = on_forbidden_syscall;
  sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  if (::sigaction(SIGSYS, &sa, nullptr) != 0) return std::unexpected(fmt::format("sigaction(SIGSYS): {}", std::strerror(errno)));
  // SIGSYS must reach the handler even while other signals are blocked.
  sigset_t sys;
  sigemptyset(&sys);
  sigaddset(&sys, SIGSYS);
  ::sigprocmask(SIG_UNBLOCK, &sys, nullptr);

  std::unique_ptr<void, decltype(&seccomp_release)> ctx(seccomp_init(SCMP_ACT_TRAP), &seccomp_release);
  if (!ctx) return std::unexpected("seccomp_init failed");
  // A binary tree over syscall numbers instead of a linear chain of
  // compares: every system call of the data path pays for the filter, and
  // the allowlist is long. Left at the default where libseccomp lacks it.
  (void)seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
  for (const Rule& r : rules_for(needs)) {
    const int rc = seccomp_rule_add_array(ctx.get(), SCMP_ACT_ALLOW, r.nr, static_cast<unsigned>(r.args.size()),
                                          r.args.empty() ? nullptr : r.args.data());
    if (rc != 0) return std::unexpected(fmt::format("seccomp_rule_add({}): {}", r.nr, std::strerror(-rc)));
  }
  if (const int rc = seccomp_load(ctx.get()); rc != 0)
    return std::unexpected(fmt::format("seccomp_load: {}", std::strerror(-rc)));
  return {};
}

}  // namespace vnk::sandbox
