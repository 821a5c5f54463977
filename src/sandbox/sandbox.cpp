#include "sandbox/sandbox.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fmt/format.h>
#include <string_view>

#include "base/log.hpp"
#include "sandbox/capabilities.hpp"
#include "sandbox/namespaces.hpp"

namespace vnk::sandbox {

namespace {

#ifdef VNETKIT_TEST_HOOKS
// Test builds only: VNETKIT_TEST_SANDBOX_ESCAPE=execve|open makes the
// sandboxed process try what the sandbox must stop, so a test can check
// that it is stopped.
void escape_for_test() {
  const char* what = std::getenv("VNETKIT_TEST_SANDBOX_ESCAPE");
  if (what == nullptr) return;
  const std::string_view w(what);
  if (w == "execve") {
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    ::execve("/bin/true", argv, environ);
  } else if (w == "open") {
    (void)::open("/etc/passwd", O_RDONLY | O_CLOEXEC);
  }
}
#endif

}  // namespace

std::expected<std::string, std::string> enter_sandbox(const SandboxPlan& plan) {
  log::prepare();
  std::string in_force;
  std::string missing;
  auto note_missing = [&missing](const std::string& what) { missing += (missing.empty() ? "" : "; ") + what; };

  const bool root = ::geteuid() == 0;
  if (root) {
    // Built while root, owned by the host's user namespace.
    if (auto r = enter_empty_root(plan.visible_dirs); r) in_force += "mount/IPC/UTS namespaces, empty root, ";
    else note_missing(fmt::format("no empty root ({})", r.error()));
    if (!plan.runas) return std::unexpected("started as root without a user to become (--runas)");
    if (auto r = become(*plan.runas); !r) return std::unexpected(r.error());
    in_force = fmt::format("user {}, ", plan.runas->text) + in_force;
    if (auto r = enter_user_namespace(false); r) in_force += "user namespace, ";
    else note_missing(fmt::format("no user namespace ({})", r.error()));
  } else if (auto r = enter_user_namespace(true); !r) {
    note_missing(fmt::format("no namespaces and no empty root ({})", r.error()));
  } else {
    in_force += "user namespace, ";
    if (auto e = enter_empty_root(plan.visible_dirs); e) in_force += "mount/IPC/UTS namespaces, empty root, ";
    else note_missing(fmt::format("no empty root ({})", e.error()));
  }
  if (auto r = forbid_new_privileges(); !r) return std::unexpected(r.error());
  if (auto r = drop_capabilities(); !r) return std::unexpected(r.error());
  if (auto r = install_syscall_filter(plan.filter); !r) return std::unexpected(r.error());
  in_force += fmt::format("no new privileges, no capabilities, seccomp allowlist of {} system calls",
                          allowed_syscalls(plan.filter).size());
#ifdef VNETKIT_TEST_HOOKS
  escape_for_test();
#endif
  return missing.empty() ? in_force : fmt::format("{} — host allows no more: {}", in_force, missing);
}

}  // namespace vnk::sandbox
