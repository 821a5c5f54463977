// --runas and --no-sandbox, shared by `serve` and `netns`, and entering the
// sandbox (sandbox/sandbox.hpp) at the end of their set-up.
#pragma once

#include <CLI/CLI.hpp>
#include <expected>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/sandbox.hpp"

namespace vnk::cli {

struct SandboxArgs {
  std::string runas;  // empty: nobody, when started as root
  bool disabled = false;
};

void add_sandbox_options(CLI::App& cmd, SandboxArgs& args);

// The plan, resolved before set-up (the user database is unreadable once
// sandboxed); nullopt with --no-sandbox.
[[nodiscard]] std::expected<std::optional<sandbox::SandboxPlan>, std::string> plan_sandbox(
    const SandboxArgs& args, sandbox::FilterNeeds filter, std::vector<std::string> visible_dirs = {});

// Enters the sandbox and logs what is in force; nothing with --no-sandbox.
[[nodiscard]] std::expected<void, std::string> enter_planned_sandbox(const std::optional<sandbox::SandboxPlan>& plan);

}  // namespace vnk::cli
