// Where frontends come from: a listening Unix socket (server mode, the
// frontend connects: QEMU `-chardev socket,path=...`, User-Mode Linux
// `virtio_uml.device=PATH:1`) or a socket we connect to (client mode, QEMU
// `-chardev socket,server=on`).
#pragma once

#include <expected>
#include <string>

#include "base/unique_fd.hpp"

namespace vnk::vhost_user {

// Binds and listens on `path`. A stale socket file left by an earlier run is
// replaced; any other existing file is refused rather than deleted.
std::expected<UniqueFd, std::string> listen_unix(const std::string& path);

// One connection attempt to `path`. ECONNREFUSED/ENOENT (the frontend is not
// up yet) come back as an empty fd so the caller can retry; anything else is
// an error.
std::expected<UniqueFd, std::string> try_connect_unix(const std::string& path);

}  // namespace vnk::vhost_user
