#include "cli/signal_fd.hpp"

#include <sys/signalfd.h>

#include <csignal>

namespace vnk::cli {

std::expected<UniqueFd, std::string> block_signals(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return std::unexpected("sigprocmask failed");
  UniqueFd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd.valid()) return std::unexpected("signalfd failed");
  std::signal(SIGPIPE, SIG_IGN);
  return fd;
}

}  // namespace vnk::cli
