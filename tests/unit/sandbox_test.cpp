// The sandbox's parts, each in a child process (a filter or a dropped
// capability cannot be undone in the test runner itself).
#include "sandbox/sandbox.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <functional>
#include <string>

#include "sandbox/capabilities.hpp"
#include "sandbox/identity.hpp"
#include "sandbox/syscall_filter.hpp"

namespace vnk::sandbox {
namespace {

struct ChildResult {
  int status = 0;
  std::string err;  // what the child wrote to stderr
};

// Runs `body` in a forked child with stderr captured; the child exits 0 if
// body returns true, 1 otherwise.
ChildResult in_child(const std::function<bool()>& body) {
  int pipe_fds[2];
  EXPECT_EQ(::pipe(pipe_fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::close(pipe_fds[0]);
    ::_exit(body() ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  ChildResult r;
  char buf[512];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) r.err.append(buf, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  ::waitpid(pid, &r.status, 0);
  return r;
}

bool has(const std::vector<std::string>& names, const std::string& n) {
  return std::find(names.begin(), names.end(), n) != names.end();
}

TEST(IdentityTest, ResolvesNamesAndNumbers) {
  auto nobody = resolve_identity("nobody");
  ASSERT_TRUE(nobody.has_value()) << nobody.error();
  EXPECT_EQ(nobody->uid, 65534u);
  auto numeric = resolve_identity("65534:65534");
  ASSERT_TRUE(numeric.has_value()) << numeric.error();
  EXPECT_EQ(numeric->uid, 65534u);
  EXPECT_EQ(numeric->gid, 65534u);
  auto unlisted = resolve_identity("54321:54321");
  ASSERT_TRUE(unlisted.has_value()) << unlisted.error();
  EXPECT_EQ(unlisted->uid, 54321u);
}

TEST(IdentityTest, RefusesRootUnknownNamesAndHalfSpecs) {
  EXPECT_FALSE(resolve_identity("root").has_value());
  EXPECT_FALSE(resolve_identity("0:0").has_value());
  EXPECT_FALSE(resolve_identity("no-such-user-here").has_value());
  EXPECT_FALSE(resolve_identity("nobody:no-such-group-here").has_value());
  EXPECT_FALSE(resolve_identity("nobody:").has_value());
  EXPECT_FALSE(resolve_identity(":nogroup").has_value());
  EXPECT_FALSE(resolve_identity("54321").has_value()) << "an unlisted uid needs its group";
}

TEST(SyscallFilterTest, AllowlistsHoldWhatServingNeedsAndNothingThatEscapes) {
  const auto serve = allowed_syscalls({Profile::serve, false});
  const auto netns = allowed_syscalls({Profile::netns, false});
  for (const auto* n : {"epoll_wait", "recvmsg", "sendmsg", "connect", "socket*", "ioctl*", "mmap*", "timerfd_settime"}) {
    EXPECT_TRUE(has(serve, n)) << n;
    EXPECT_TRUE(has(netns, n)) << n;
  }
  for (const auto* n : {"execve", "execveat", "open", "openat", "openat2", "ptrace", "clone", "clone3", "fork", "unshare",
                        "setns", "mount", "chroot", "bpf", "process_vm_readv", "kill", "unlink", "rename", "bind", "listen"}) {
    EXPECT_FALSE(has(serve, n)) << n;
  }
  EXPECT_TRUE(has(netns, "wait4"));
  EXPECT_FALSE(has(netns, "kill")) << "signals for the command go through its helper";
}

TEST(SyscallFilterTest, AForbiddenCallStopsTheProcessAndIsNamed) {
  const ChildResult r = in_child([] {
    if (!forbid_new_privileges() || !install_syscall_filter({Profile::serve, false})) return false;
    (void)::getpid();  // allowed: still running
    ::syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY);
    return true;  // not reached
  });
  ASSERT_TRUE(WIFSIGNALED(r.status)) << "status " << r.status << ": " << r.err;
  EXPECT_EQ(WTERMSIG(r.status), SIGSYS);
  EXPECT_NE(r.err.find("system call openat (257) is not allowed"), std::string::npos) << r.err;
}

TEST(SyscallFilterTest, AllowedCallsWorkUnderTheFilter) {
  const ChildResult r = in_child([] {
    if (!forbid_new_privileges() || !install_syscall_filter({Profile::netns, false})) return false;
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    const bool ok = s >= 0;
    ::close(s);
    return ok;
  });
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.status << ": " << r.err;
}

TEST(SyscallFilterTest, SocketFamiliesAreNarrowed) {
  const ChildResult r = in_child([] {
    if (!forbid_new_privileges() || !install_syscall_filter({Profile::serve, false})) return false;
    ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
    return true;
  });
  ASSERT_TRUE(WIFSIGNALED(r.status)) << r.status << ": " << r.err;
  EXPECT_NE(r.err.find("system call socket"), std::string::npos) << r.err;
}

TEST(CapabilitiesTest, DroppingLeavesNoEffectiveCapability) {
  const ChildResult r = in_child([] { return drop_capabilities().has_value() && effective_capabilities() == 0; });
  EXPECT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.status << ": " << r.err;
}

}  // namespace
}  // namespace vnk::sandbox
