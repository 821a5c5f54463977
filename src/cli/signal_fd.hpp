// Signals a command handles are blocked and read from a signalfd, so they
// arrive in its event loop instead of interrupting it.
#pragma once

#include <expected>
#include <initializer_list>
#include <string>

#include "base/unique_fd.hpp"

namespace vnk::cli {

// Blocks `signals`, returns a nonblocking signalfd for them, and ignores
// SIGPIPE (a peer closing a socket is an error return, not a death).
std::expected<UniqueFd, std::string> block_signals(std::initializer_list<int> signals);

// SIGTTIN logs more (one level towards debug), SIGTTOU less: what a serving
// command does with them. Says the new level. Other signals are ignored.
void change_log_level(int signo);

}  // namespace vnk::cli
