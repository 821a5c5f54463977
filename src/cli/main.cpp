// vnetkit: networking for virtual machines.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "base/fd_limit.hpp"
#include "base/log.hpp"
#include "cli/demo_command.hpp"
#include "cli/doctor_command.hpp"
#include "cli/netns_command.hpp"
#include "cli/serve_command.hpp"
#include "cli/stats_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"vnetkit: a hardened virtio-net device and user-mode networking for VMs", "vnetkit"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("vnetkit ") + VNETKIT_VERSION);
  std::string level;
  app.add_option("--log-level", level, "debug, info (default), warn or error; also VNETKIT_LOG. SIGTTIN logs more, SIGTTOU less")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  std::string target = "auto";
  app.add_option("--log-target", target,
                 "Where log messages go: auto (the journal when stderr is systemd's journal, else stderr), "
                 "stderr, journal (stderr with <N> priority prefixes) or syslog")
      ->check(CLI::IsMember({"auto", "stderr", "journal", "syslog"}))
      ->capture_default_str();
  // Options of the program itself may also follow the command
  // (`vnetkit serve --config FILE`).
  app.fallthrough();
  auto* config = app.set_config("--config", "",
                                "Read options from this TOML or INI file: top-level keys, and each command's in its "
                                "own section ([serve], [netns]); the command line wins, an unknown key is an error")
                     ->check(CLI::ExistingFile);
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.parse_complete_callback([&level, &target] {
    using vnk::log::Level;
    // A command tells its user what it is doing: info unless asked otherwise.
    if (level.empty() && std::getenv("VNETKIT_LOG") == nullptr) level = "info";
    if (level == "debug") vnk::log::set_level(Level::debug);
    if (level == "info") vnk::log::set_level(Level::info);
    if (level == "warn") vnk::log::set_level(Level::warn);
    if (level == "error") vnk::log::set_level(Level::error);
    using Target = vnk::log::Target;
    vnk::log::set_target(target == "stderr"    ? Target::terminal
                         : target == "journal" ? Target::journal
                         : target == "syslog"  ? Target::syslog
                                               : Target::automatic);
    // Every guest flow holds a host socket: take all the open files the
    // hard limit allows (desktops start programs with a soft 1024).
    vnk::raise_fd_limit();
  });
  app.footer(
      "Environment: VNETKIT_LOG=LEVEL sets the log level; VNETKIT_PRETEND_MISSING=tcp-peek-off,ping-sockets,raw-icmp "
      "makes vnetkit act as on a kernel or host without those (for testing the fallbacks).");
  int exit_code = 0;
  vnk::cli::add_serve_command(app, exit_code);
  vnk::cli::add_netns_command(app, exit_code);
  vnk::cli::add_demo_command(app, exit_code);
  vnk::cli::add_doctor_command(app, exit_code);
  vnk::cli::add_stats_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ConfigError& e) {
    // CLI11 says "INI was not able to parse serve.bogus": name the file and
    // what a key must be.
    std::fprintf(stderr,
                 "vnetkit: %s: %s (a key is a long option without its dashes; a command's keys go in its section, "
                 "e.g. [serve])\n",
                 config->as<std::string>().c_str(), e.what());
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
