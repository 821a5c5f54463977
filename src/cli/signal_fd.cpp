#include "cli/signal_fd.hpp"

#include <sys/signalfd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "base/log.hpp"

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

void change_log_level(int signo) {
  if (signo != SIGTTIN && signo != SIGTTOU) return;
  const log::Level l = signo == SIGTTIN ? log::more_verbose() : log::less_verbose();
  // Said whatever the new level, since someone asked for it.
  log::write(log::Level::warn, fmt::format("log level is now {} ({})", log::to_string(l), signo == SIGTTIN ? "SIGTTIN" : "SIGTTOU"));
}

}  // namespace vnk::cli
