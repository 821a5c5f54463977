// `vnetkit stats SOURCE`: the counters a person looks at first, from a
// running vnetkit's --metrics file or --metrics-listen endpoint: traffic
// both ways with rates, flows, and every drop and error by reason.
#pragma once

#include <CLI/CLI.hpp>

namespace vnk::cli {

void add_stats_command(CLI::App& app, int& exit_code);

}  // namespace vnk::cli
