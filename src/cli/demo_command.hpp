// `vnetkit demo`: boots the bundled User-Mode Linux guest on `vnetkit serve
// --net user` and reports what the guest got (see scripts/demo.py).
#pragma once

#include <CLI/CLI.hpp>

namespace vnk::cli {

void add_demo_command(CLI::App& app, int& exit_code);

}  // namespace vnk::cli
