#include "cli/signal_fd.hpp"

#include <sys/signalfd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

namespace vnk::cli {

std::expected<UniqueFd, std::string> block_signals(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  if (::sigprocmask(SIG_BLOCK, &set, nullptr) != 0) return std::unexpected(std::string("sigprocmask: ") + std::strerror(errno));
  UniqueFd fd(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!fd.valid()) return std::unexpected(std::string("signalfd: ") + std::strerror(errno));
  std::signal(SIGPIPE, SIG_IGN);
  return fd;
}

}  // namespace vnk::cli
