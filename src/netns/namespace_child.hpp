// The helper process that stands in the target network namespace: it creates
// (or joins) the namespace, creates and configures the TAP device there,
// hands the TAP's fd back to vnetkit over a socket, and then either exits or
// starts the user's command and stays as its parent: it reports the exec,
// relays the signals vnetkit asks it to, ends the command if vnetkit dies,
// and exits with the command's status.
//
// vnetkit itself never leaves the namespace it was started in, so every host
// socket usernet opens is a socket of the caller's network, and the TAP fd is
// the only thing that crosses over. Without the privilege to create a
// network namespace (not root) the helper also creates a user namespace
// mapping the caller to root inside, as `unshare -rn` and pasta do; to join
// one it owns, it enters the namespace's owning user namespace first.
#pragma once

#include <sys/types.h>

#include <expected>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"
#include "netns/tap_device.hpp"

namespace vnk::netns {

struct NamespaceRequest {
  std::string join_path;             // a netns file (/run/netns/NAME, /proc/PID/ns/net); empty: create one
  std::vector<std::string> command;  // run inside (searched in PATH); empty: none
  InterfaceSettings interface;
  // When a command runs: bind-mounted over /etc/resolv.conf in a private
  // mount namespace, so the command's resolver asks usernet's DNS address.
  std::string resolv_conf;
};

struct NamespaceChild {
  pid_t pid = -1;     // the helper that runs the command (it exits with its status); -1 when none runs
  UniqueFd pidfd;     // readable when the helper (so the command) exits
  UniqueFd control;   // to the helper: signals to relay; closing it ends the command
  UniqueFd tap;       // the TAP device's fd, nonblocking
  bool runs_command = false;
};

struct SpawnError {
  std::string message;  // a sentence for the user
  int exit_code;        // 125: setting up failed; 126: the command cannot run; 127: it was not found
};

std::expected<NamespaceChild, SpawnError> spawn_namespace(const NamespaceRequest& request);

// Asks the helper to send `signal` to the command (vnetkit, sandboxed, may
// not be allowed to signal it itself). False when no command runs.
bool relay_signal(const NamespaceChild& child, int signal);

// Waits for `pid` and returns its status as a shell would: the exit code, or
// 128 + the signal that killed it.
int wait_exit_code(pid_t pid);

}  // namespace vnk::netns
