// What the running kernel lets this process use, probed once at start-up.
//
// Our own machines run a new kernel; users mostly do not (Debian 12 ships
// 6.1, Ubuntu 22.04 5.15, RHEL 9 5.14). Every feature vnetkit can do
// without is probed here and has a fallback; the start-up log says in one
// line what is missing and what is used instead, so nothing fails silently
// on a guest's first packet.
//
// VNETKIT_PRETEND_MISSING=name[,name...] makes the probe report features as
// missing (names as in feature_names(): tcp-peek-off, ping-sockets,
// raw-icmp), so tests run the fallbacks on a kernel that has everything.
#pragma once

#include <string>

namespace vnk {

struct HostFeatures {
  std::string kernel;             // uname release, for the log
  bool tcp_peek_off_v4 = false;   // SO_PEEK_OFF on TCP sockets (Linux 6.9)
  bool tcp_peek_off_v6 = false;
  bool ping_sockets_v4 = false;   // unprivileged ICMP sockets (net.ipv4.ping_group_range)
  bool ping_sockets_v6 = false;
  bool raw_icmp_v4 = false;       // raw ICMP sockets (CAP_NET_RAW)
  bool raw_icmp_v6 = false;
  bool pidfd = false;             // pidfd_open (Linux 5.3)
};

// What to check when creating an unprivileged user namespace fails.
inline constexpr const char* kUserNamespaceHint =
    "unprivileged user namespaces may be disabled: check sysctl user.max_user_namespaces (must be > 0), "
    "kernel.unprivileged_userns_clone (Debian kernels before 6.x) and "
    "kernel.apparmor_restrict_unprivileged_userns (Ubuntu); in a chroot the kernel allows none at all; "
    "or run as root";

// Probes the kernel now (a few sockets opened and closed), honouring
// VNETKIT_PRETEND_MISSING.
[[nodiscard]] HostFeatures probe_host_features();
// The process-wide probe result, probed on first use.
[[nodiscard]] const HostFeatures& host_features();
// One line for the start-up log: the kernel and each missing feature with
// what is done instead; empty list when nothing is missing.
[[nodiscard]] std::string describe(const HostFeatures& f);

}  // namespace vnk
