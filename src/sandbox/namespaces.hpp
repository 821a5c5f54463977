// Detaching from the host's namespaces, and the empty root.
//
// The order matters, and differs with who we are:
// - not root: a new user namespace first (mapping our own uid and gid to
//   themselves), which grants the capabilities to build the rest;
// - root: the mount, IPC and UTS namespaces and the empty root are built
//   while still root, then the identity is dropped (identity.hpp), then a
//   user namespace is entered as the unprivileged user.
// Either way the file system ends as one empty, read-only tmpfs, with the
// host's tree unmounted from this process's view: what vnetkit needs later
// it reaches through file descriptors opened before (or, for a vhost-user
// socket vnetkit connects to, its directory mounted read-only at the same
// path).
#pragma once

#include <expected>
#include <string>
#include <vector>

namespace vnk::sandbox {

// unshare(CLONE_NEWUSER); with `map_self`, writes uid_map and gid_map
// mapping the current ids to themselves (needs /proc, so before the empty
// root). The error names the sysctls that may forbid it.
[[nodiscard]] std::expected<void, std::string> enter_user_namespace(bool map_self);

// unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS), then make an empty,
// read-only tmpfs the root of this process. `visible_dirs` (absolute paths)
// stay visible, read-only, at the same paths. Fails, having mounted nothing,
// where / is not a mount point (a chroot): mounts there could not be made
// private.
[[nodiscard]] std::expected<void, std::string> enter_empty_root(const std::vector<std::string>& visible_dirs);

}  // namespace vnk::sandbox
