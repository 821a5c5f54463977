#include "cli/demo_command.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace vnk::cli {

namespace {

struct DemoArgs {
  unsigned seconds = 3;
  unsigned megabytes = 100;
  bool keep_log = false;
};

// The orchestration (host services, the guest, the report) lives in a Python
// driver next to the test harness it shares code with; this command finds it
// and the built guest image, then hands over.
int run_demo(const DemoArgs& a) {
  namespace fs = std::filesystem;
  const fs::path source = VNETKIT_SOURCE_DIR;
  const fs::path build = VNETKIT_BINARY_DIR;
  const fs::path driver = source / "scripts" / "demo.py";
  if (!fs::exists(driver)) {
    fmt::print(stderr, "vnetkit demo: {} is missing (the demo runs from a source checkout)\n", driver.string());
    return 2;
  }
  if (!fs::exists(build / "guest" / "uml-initramfs.cpio.gz")) {
    fmt::print(stderr, "vnetkit demo: the guest image is not built; run: cmake --build {} --target guest_images\n",
               build.string());
    return 2;
  }
  std::vector<std::string> args = {"python3",
                                   driver.string(),
                                   "--vnetkit",
                                   fs::read_symlink("/proc/self/exe").string(),
                                   "--build",
                                   build.string(),
                                   "--seconds",
                                   std::to_string(a.seconds),
                                   "--megabytes",
                                   std::to_string(a.megabytes)};
  if (a.keep_log) args.emplace_back("--keep-log");
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  ::execvp("python3", argv.data());
  fmt::print(stderr, "vnetkit demo: cannot run python3: {}\n", std::strerror(errno));
  return 2;
}

}  // namespace

void add_demo_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<DemoArgs>();
  CLI::App* cmd = app.add_subcommand(
      "demo", "Boot the bundled User-Mode Linux guest on the user-mode network and report what it gets");
  cmd->footer(
      "Starts `vnetkit serve --net user`, a DNS server, an HTTP server and an iperf3 server on\n"
      "127.0.0.1, boots the test guest, and reports the DHCP lease, the gateway RTT, a DNS answer,\n"
      "a sha256-checked download and upload, an MMDS answer fetched with a session token, and\n"
      "iperf3 throughput both ways. Nothing leaves\n"
      "this machine.");
  cmd->add_option("--seconds", args->seconds, "iperf3 seconds per direction")->check(CLI::Range(1u, 60u))->capture_default_str();
  cmd->add_option("--megabytes", args->megabytes, "Size of the HTTP download/upload")
      ->check(CLI::Range(1u, 200u))
      ->capture_default_str();
  cmd->add_flag("--keep-log", args->keep_log, "Keep the guest console and server log (their paths are printed)");
  cmd->callback([args, &exit_code] { exit_code = run_demo(*args); });
}

}  // namespace vnk::cli
