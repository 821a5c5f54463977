// `vnetkit netns`: usernet for a network namespace (a rootless container, a
// sandbox) through a TAP device inside it, as pasta and slirp4netns do.
#pragma once

#include <CLI/App.hpp>

namespace vnk::cli {

void add_netns_command(CLI::App& app, int& exit_code);

}  // namespace vnk::cli
