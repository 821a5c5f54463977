// The sandbox vnetkit enters once set up, before it serves a guest.
//
// A guest's frames are parsed by this process; if that parsing were ever
// subverted, what the process can still do is what the guest gains. So once
// every socket is bound, the TAP fd received, the vhost-user socket
// listening and the pcap, metrics and MMDS files open, vnetkit gives up the
// rest, in this order (each layer is described in --help and the README):
//   1. identity: started as root, it becomes --runas (default nobody);
//   2. namespaces: new user, mount, IPC and UTS namespaces;
//   3. empty root: an empty read-only tmpfs replaces the file system;
//   4. no_new_privs, and every capability dropped (CapEff 0);
//   5. a seccomp allowlist for the subcommand (syscall_filter.hpp).
// Layers 2 and 3 need user namespaces (or root); where the host forbids
// them, vnetkit says so at start-up and goes on with the others. A failure
// in 1, 4 or 5 stops vnetkit: it never serves a guest less confined than it
// reported.
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/identity.hpp"
#include "sandbox/syscall_filter.hpp"

namespace vnk::sandbox {

struct SandboxPlan {
  FilterNeeds filter;
  std::optional<Identity> runas;          // applied only when started as root
  std::vector<std::string> visible_dirs;  // kept visible, read-only (a vhost-user socket's directory)
};

// Enters the sandbox; returns one line for the log saying what is in force
// (and what the host did not allow), or why it could not be entered.
[[nodiscard]] std::expected<std::string, std::string> enter_sandbox(const SandboxPlan& plan);

}  // namespace vnk::sandbox
