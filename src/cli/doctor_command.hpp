// `vnetkit doctor`: probes this host for everything vnetkit relies on and
// prints one line per item -- ok, a fallback vnetkit uses instead, or what
// is missing and what to do about it.
#pragma once

#include <CLI/CLI.hpp>

namespace vnk::cli {

void add_doctor_command(CLI::App& app, int& exit_code);

}  // namespace vnk::cli
