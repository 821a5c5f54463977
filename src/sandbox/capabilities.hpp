// Giving up capabilities and the means to regain privileges.
#pragma once

#include <cstdint>
#include <expected>
#include <string>

namespace vnk::sandbox {

// prctl(PR_SET_NO_NEW_PRIVS): no execve can grant privileges again (set-uid
// files, file capabilities); also what lets an unprivileged process install
// a seccomp filter.
[[nodiscard]] std::expected<void, std::string> forbid_new_privileges();

// Clears the ambient set, empties the bounding set where allowed
// (CAP_SETPCAP), and sets the effective, permitted and inheritable sets to
// nothing.
[[nodiscard]] std::expected<void, std::string> drop_capabilities();

// This thread's effective capability mask (CapEff in /proc/PID/status).
[[nodiscard]] std::uint64_t effective_capabilities();

}  // namespace vnk::sandbox
