#include "cli/sandbox_options.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include "base/log.hpp"

namespace vnk::cli {

void add_sandbox_options(CLI::App& cmd, SandboxArgs& args) {
  auto* group = cmd.add_option_group(
      "sandbox",
      "Once set up, vnetkit confines itself: started as root it becomes --runas; it enters new user, mount, IPC and UTS "
      "namespaces with an empty read-only root (files it needs stay open); it sets no_new_privs, drops every "
      "capability, and installs a seccomp allowlist of the system calls serving needs (a forbidden one stops vnetkit "
      "and names the call). Layers the host forbids (no user namespaces) are reported at start-up.");
  group->add_option("--runas", args.runas,
                    "Started as root, become USER[:GROUP] (names or numbers) before serving; default nobody");
  group->add_flag("--no-sandbox", args.disabled, "Stay unconfined, with every privilege vnetkit started with (debugging)");
}

std::expected<std::optional<sandbox::SandboxPlan>, std::string> plan_sandbox(const SandboxArgs& args,
                                                                           sandbox::FilterNeeds filter,
                                                                           std::vector<std::string> visible_dirs) {
  if (args.disabled) {
    if (!args.runas.empty()) return std::unexpected("--runas and --no-sandbox: give one of them");
    return std::nullopt;
  }
  sandbox::SandboxPlan plan;
  plan.filter = filter;
  plan.visible_dirs = std::move(visible_dirs);
  const std::string spec = args.runas.empty() ? "nobody" : args.runas;
  if (::geteuid() == 0) {
    auto id = sandbox::resolve_identity(spec);
    if (!id && args.runas.empty())
      return std::unexpected(fmt::format("started as root, and there is no user 'nobody' to become: {}; name one with --runas",
                                         id.error()));
    if (!id) return std::unexpected(id.error());
    plan.runas = *id;
  } else if (!args.runas.empty()) {
    auto id = sandbox::resolve_identity(spec);
    if (!id) return std::unexpected(id.error());
    if (id->uid != ::geteuid() || id->gid != ::getegid())
      return std::unexpected(fmt::format("--runas {}: only root can change user (this is uid {})", spec, ::geteuid()));
  }
  return plan;
}

std::expected<void, std::string> enter_planned_sandbox(const std::optional<sandbox::SandboxPlan>& plan) {
  if (!plan) {
    log::warn("sandbox: off (--no-sandbox): a subverted vnetkit could do all its user can");
    return {};
  }
  auto r = sandbox::enter_sandbox(*plan);
  if (!r) return std::unexpected(fmt::format("cannot enter the sandbox: {}", r.error()));
  log::info("sandbox: {}", *r);
  return {};
}

}  // namespace vnk::cli
