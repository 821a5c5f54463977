#include "base/host_features.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <string_view>

#include "base/unique_fd.hpp"

namespace vnk {

namespace {

bool pretend_missing(std::string_view name) {
  const char* env = std::getenv("VNETKIT_PRETEND_MISSING");
  if (env == nullptr) return false;
  std::string_view list(env);
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (list.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// Before 6.9 TCP has no set_peek_off, and setsockopt(SO_PEEK_OFF) fails
// with EOPNOTSUPP; the option needs no connection to be probed.
bool tcp_peek_off(int family) {
  UniqueFd s(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int zero = 0;
  return s.valid() && ::setsockopt(s.get(), SOL_SOCKET, SO_PEEK_OFF, &zero, sizeof zero) == 0;
}

bool opens(int family, int type, int protocol) {
  UniqueFd s(::socket(family, type | SOCK_CLOEXEC, protocol));
  return s.valid();
}

}  // namespace

HostFeatures probe_host_features() {
  HostFeatures f;
  utsname u{};
  if (::uname(&u) == 0) f.kernel = u.release;
  const bool peek = !pretend_missing("tcp-peek-off");
  f.tcp_peek_off_v4 = peek && tcp_peek_off(AF_INET);
  f.tcp_peek_off_v6 = peek && tcp_peek_off(AF_INET6);
  const bool ping = !pretend_missing("ping-sockets");
  f.ping_sockets_v4 = ping && opens(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
  f.ping_sockets_v6 = ping && opens(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
  const bool raw = !pretend_missing("raw-icmp");
  f.raw_icmp_v4 = raw && opens(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  f.raw_icmp_v6 = raw && opens(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  const long pidfd = ::syscall(SYS_pidfd_open, ::getpid(), 0);
  f.pidfd = pidfd >= 0;
  if (pidfd >= 0) ::close(static_cast<int>(pidfd));
  return f;
}

const HostFeatures& host_features() {
  static const HostFeatures probed = probe_host_features();
  return probed;
}

std::string describe(const HostFeatures& f) {
  std::string missing;
  auto add = [&](std::string_view what) {
    if (!missing.empty()) missing += "; ";
    missing += what;
  };
  if (!f.tcp_peek_off_v4) add("no TCP SO_PEEK_OFF (Linux 6.9): TCP re-reads unacknowledged data from the socket's queue");
  if (!f.ping_sockets_v4) {
    add(f.raw_icmp_v4 ? "no ping sockets (net.ipv4.ping_group_range): guest pings use a raw ICMP socket"
                      : "no ping sockets (net.ipv4.ping_group_range) and no CAP_NET_RAW: guest pings are dropped");
  }
  if (!f.pidfd) add("no pidfd_open (Linux 5.3): vnetkit netns cannot wait for its command or --pid");
  return "host: Linux " + f.kernel + (missing.empty() ? "; every feature vnetkit uses is available" : "; " + missing);
}

}  // namespace vnk
