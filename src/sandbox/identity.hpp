// The user and group vnetkit runs as once its set-up is done.
//
// Started as root (the usual case for a TAP device, a low forwarded port or
// a system service), vnetkit gives up root before it serves a guest: it
// becomes `--runas USER[:GROUP]`, by default the system's `nobody`. A
// process that is not root stays who it is.
#pragma once

#include <sys/types.h>

#include <expected>
#include <string>
#include <string_view>

namespace vnk::sandbox {

struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string text;  // "nobody:nogroup" (65534:65534), for the log
};

// Parses USER[:GROUP] (names or numbers). Without GROUP, the user's primary
// group. The error is a sentence for the user.
[[nodiscard]] std::expected<Identity, std::string> resolve_identity(std::string_view spec);

// Sets the supplementary groups to just `id.gid`, then the real, effective
// and saved group and user ids, and checks that root cannot be regained.
// Needs root (CAP_SETUID and CAP_SETGID).
[[nodiscard]] std::expected<void, std::string> become(const Identity& id);

}  // namespace vnk::sandbox
