// `vnetkit serve`: the vhost-user-net server as a command.
#pragma once

#include <CLI/App.hpp>

namespace vnk::cli {

// Adds the `serve` subcommand to `app`; its callback runs the server and
// stores the process exit status in `exit_code`.
void add_serve_command(CLI::App& app, int& exit_code);

}  // namespace vnk::cli
