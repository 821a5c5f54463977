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

}  // namespace vnk::cli
