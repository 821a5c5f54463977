#include "netns/namespace_child.hpp"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>

#include "base/host_features.hpp"
#include "base/small_file.hpp"

namespace vnk::netns {

namespace {

// Messages from the helper, one per SOCK_SEQPACKET datagram: a kind byte and
// a body. 'T': the TAP fd rides along (SCM_RIGHTS); 'E': setup failed, the
// body says why; 'X': exec failed, the body is the errno.
void send_message(int sock, char kind, std::string_view body, int fd = -1) {
  std::string buf(1, kind);
  buf.append(body);
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  if (fd >= 0) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  }
  while (::sendmsg(sock, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

struct Message {
  char kind = 0;  // 0: the helper closed its end (exec succeeded, or it died)
  std::string body;
  UniqueFd fd;
};

Message receive_message(int sock) {
  std::array<char, 4096> buf{};
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  Message m;
  if (n <= 0) return m;
  m.kind = buf[0];
  m.body.assign(buf.data() + 1, static_cast<std::size_t>(n) - 1);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
      m.fd.reset(fd);
    }
  }
  return m;
}

bool in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/bin:/usr/bin";
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    const std::string file = fmt::format("{}/{}", dir.empty() ? "." : dir, name);
    if (::access(file.c_str(), F_OK) == 0) return true;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return false;
}

class Helper {
 public:
  Helper(const NamespaceRequest& req, int sock) : req_(req), sock_(sock) {}

  [[noreturn]] void run() {
    enter_namespace();
    if (!req_.command.empty() && !req_.resolv_conf.empty()) replace_resolv_conf();
    if (auto r = bring_up_loopback(); !r) fail(r.error());
    auto tap = create_tap(req_.interface.name);
    if (!tap) fail(tap.error());
    if (auto r = configure_interface(req_.interface); !r) fail(r.error());
    send_message(sock_, 'T', {}, tap->get());
    tap->reset();
    if (req_.command.empty()) ::_exit(0);
    run_command();
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    send_message(sock_, 'E', why);
    ::_exit(125);
  }

  void enter_namespace() {
    const int mount_ns = req_.command.empty() ? 0 : CLONE_NEWNS;
    if (req_.join_path.empty()) {
      if (::unshare(CLONE_NEWNET | mount_ns) == 0) return;
      if (errno != EPERM) fail(fmt::format("cannot create a network namespace: {}", std::strerror(errno)));
      const uid_t uid = ::geteuid();
      const gid_t gid = ::getegid();
      if (::unshare(CLONE_NEWUSER | CLONE_NEWNET | mount_ns) != 0)
        fail(fmt::format("no permission to create a network namespace ({}); {}", std::strerror(errno), kUserNamespaceHint));
      // Map the caller to root inside, so it may configure the namespace.
      if (!write_small_file("/proc/self/setgroups", "deny") || !write_small_file("/proc/self/uid_map", fmt::format("0 {} 1", uid)) ||
          !write_small_file("/proc/self/gid_map", fmt::format("0 {} 1", gid)))
        fail(fmt::format("cannot write the user namespace's id maps: {}", std::strerror(errno)));
      return;
    }
    UniqueFd ns(::open(req_.join_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns.valid()) fail(fmt::format("cannot open {}: {}", req_.join_path, std::strerror(errno)));
    if (::setns(ns.get(), CLONE_NEWNET) != 0) {
      if (errno == EINVAL) fail(fmt::format("{} is not a network namespace", req_.join_path));
      if (errno != EPERM) fail(fmt::format("cannot join {}: {}", req_.join_path, std::strerror(errno)));
      // Not privileged here: enter the user namespace that owns it first.
      UniqueFd owner(::ioctl(ns.get(), NS_GET_USERNS));
      if (!owner.valid() || ::setns(owner.get(), CLONE_NEWUSER) != 0 || ::setns(ns.get(), CLONE_NEWNET) != 0)
        fail(fmt::format("no permission to join the network namespace {}: {}", req_.join_path, std::strerror(errno)));
    }
    if (mount_ns != 0 && ::unshare(CLONE_NEWNS) != 0) skip_resolv_conf_ = true;
  }

  void replace_resolv_conf() {
    auto warn = [](const std::string& why) {
      fmt::print(stderr, "vnetkit netns: warning: /etc/resolv.conf left as it is: {}\n", why);
    };
    if (skip_resolv_conf_) return warn("no private mount namespace");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      // In a chroot (and some containers) / is not a mount point, so its
      // mounts cannot be made private here, and a bind mount over
      // /etc/resolv.conf could propagate to the host's mount namespace.
      if (errno == EINVAL)
        return warn(
            "/ is not a mount point here (a chroot?), so vnetkit cannot give the command its own resolv.conf "
            "without the change reaching the host's mounts. DNS in the namespace asks this resolv.conf's servers, "
            "not usernet's DNS address (10.0.2.3 unless --dns); make the chroot's directory a mount point before "
            "entering it (mount --bind DIR DIR), or point the command's resolver at usernet's DNS address yourself");
      return warn(fmt::format("making mounts private: {}", std::strerror(errno)));
    }
    const char* dir = std::getenv("TMPDIR");
    std::string path = fmt::format("{}/vnetkit-resolv.XXXXXX", dir != nullptr && *dir != 0 ? dir : "/tmp");
    const int fd = ::mkstemp(path.data());
    if (fd < 0) return warn(fmt::format("mkstemp {}: {}", path, std::strerror(errno)));
    const bool wrote = ::write(fd, req_.resolv_conf.data(), req_.resolv_conf.size()) ==
                       static_cast<ssize_t>(req_.resolv_conf.size());
    ::fchmod(fd, 0644);
    ::close(fd);
    if (!wrote || ::mount(path.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0)
      warn(fmt::format("bind mount: {}", std::strerror(errno)));
    ::unlink(path.c_str());  // the mount keeps the file
  }

  // The helper stays as the command's parent (its reaper): it relays the
  // signals vnetkit is sent ('S' messages) and ends the command when vnetkit
  // goes away (the socket closes). vnetkit cannot do either itself once
  // sandboxed: it may run as another user than the command (root), and the
  // kernel checks a parent-death signal like a kill().
  [[noreturn]] void run_command() {
    int exec_pipe[2];  // the command's exec errno; closed (end of file) by a successful exec
    if (::pipe2(exec_pipe, O_CLOEXEC) != 0) fail(fmt::format("pipe: {}", std::strerror(errno)));
    const pid_t command = ::fork();
    if (command < 0) fail(fmt::format("fork: {}", std::strerror(errno)));
    if (command == 0) {
      ::close(exec_pipe[0]);
      exec_command(exec_pipe[1]);
    }
    ::close(exec_pipe[1]);
    int err = 0;
    ssize_t n;
    do {
      n = ::read(exec_pipe[0], &err, sizeof err);
    } while (n < 0 && errno == EINTR);
    ::close(exec_pipe[0]);
    if (n == static_cast<ssize_t>(sizeof err)) {
      // execvp reports EACCES when some PATH directory could not be searched,
      // even if the command is in none of them: call that "not found".
      if (err == EACCES && req_.command.front().find('/') == std::string::npos && !in_path(req_.command.front()))
        err = ENOENT;
      send_message(sock_, 'X', std::to_string(err));
      wait_exit_code(command);
      ::_exit(err == ENOENT ? 127 : 126);
    }
    send_message(sock_, 'R', {});
    reap(command);
  }

  [[noreturn]] void reap(pid_t command) {
    // Signals from the terminal reach the command directly (one process
    // group); the reaper only waits. SIGCHLD arrives through a signalfd.
    sigset_t blocked;
    sigemptyset(&blocked);
    for (int sig : {SIGCHLD, SIGINT, SIGQUIT, SIGHUP, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU}) sigaddset(&blocked, sig);
    ::sigprocmask(SIG_BLOCK, &blocked, nullptr);
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    UniqueFd sfd(::signalfd(-1, &child, SFD_CLOEXEC | SFD_NONBLOCK));
    bool vnetkit_gone = false;
    for (;;) {
      int status = 0;
      const pid_t done = ::waitpid(command, &status, WNOHANG);
      if (done == command && (WIFEXITED(status) || WIFSIGNALED(status)))
        ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
      std::array<pollfd, 2> fds{{{sfd.get(), POLLIN, 0}, {vnetkit_gone ? -1 : sock_, POLLIN, 0}}};
      if (::poll(fds.data(), fds.size(), sfd.valid() ? -1 : 100) < 0 && errno != EINTR) ::_exit(125);
      if (fds[0].revents != 0) {
        signalfd_siginfo si{};
        while (::read(sfd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        }
      }
      if (fds[1].revents != 0) {
        const Message m = receive_message(sock_);
        if (m.kind == 'S') {
          ::kill(command, std::atoi(m.body.c_str()));
        } else if (m.kind == 0) {
          vnetkit_gone = true;  // without vnetkit the namespace has no network
          ::kill(command, SIGTERM);
        }
      }
    }
  }

  [[noreturn]] void exec_command(int exec_pipe) {
    // The command gets default signal handling, and is told to stop if its
    // reaper dies.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    std::signal(SIGPIPE, SIG_DFL);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    std::vector<char*> argv;
    for (const auto& a : req_.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    const int err = errno;
    (void)!::write(exec_pipe, &err, sizeof err);
    ::_exit(127);
  }

  const NamespaceRequest& req_;
  int sock_;
  bool skip_resolv_conf_ = false;
};

}  // namespace

std::expected<NamespaceChild, SpawnError> spawn_namespace(const NamespaceRequest& request) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return std::unexpected(SpawnError{fmt::format("socketpair: {}", std::strerror(errno)), 125});
  UniqueFd ours(sv[0]);
  UniqueFd theirs(sv[1]);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return std::unexpected(SpawnError{fmt::format("fork: {}", std::strerror(errno)), 125});
  if (pid == 0) {
    ours.reset();
    if (::getppid() != parent) ::_exit(125);
    Helper(request, theirs.get()).run();
  }
  theirs.reset();

  NamespaceChild child;
  child.pid = pid;
  child.runs_command = !request.command.empty();
  auto failed = [&](std::string message, int code) {
    wait_exit_code(pid);
    return std::unexpected(SpawnError{std::move(message), code});
  };
  Message m = receive_message(ours.get());
  if (m.kind == 'E') return failed(m.body, 125);
  if (m.kind != 'T' || !m.fd.valid()) return failed("the namespace helper died before it created the TAP device", 125);
  child.tap = std::move(m.fd);
  if (child.runs_command) {
    // 'R' once the command runs (its exec succeeded), 'X' if it could not.
    Message e = receive_message(ours.get());
    if (e.kind == 'X') {
      const int err = std::atoi(e.body.c_str());
      return failed(fmt::format("cannot run {}: {}", request.command.front(), std::strerror(err)), err == ENOENT ? 127 : 126);
    }
    if (e.kind != 'R') return failed("the namespace helper died before it started the command", 125);
    child.control = std::move(ours);
  }
  if (!child.runs_command) {
    wait_exit_code(pid);  // the helper's work is done
    child.pid = -1;
    return child;
  }
  child.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!child.pidfd.valid()) return failed(fmt::format("pidfd_open: {}", std::strerror(errno)), 125);
  return child;
}

bool relay_signal(const NamespaceChild& child, int signal) {
  if (!child.control.valid()) return false;
  send_message(child.control.get(), 'S', std::to_string(signal));
  return true;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 125;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 125;
}

}  // namespace vnk::netns
