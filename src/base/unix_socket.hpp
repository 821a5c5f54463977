// Unix sockets at a path, as peers find vnetkit: a listening stream socket
// (vhost-user server mode -- QEMU `-chardev socket,path=...`, User-Mode
// Linux `virtio_uml.device=PATH:1` -- and QEMU's `-netdev stream`), a stream
// socket we connect to (client modes), and a bound datagram socket (QEMU's
// `-netdev dgram`).
#pragma once

#include <sys/socket.h>

#include <expected>
#include <string>

#include "base/unique_fd.hpp"

namespace vnk {

// Binds and listens on `path` (SOCK_STREAM, or SOCK_SEQPACKET). A stale
// socket file left by an earlier run is replaced; a socket someone still
// serves, or any other existing file, is refused rather than deleted.
std::expected<UniqueFd, std::string> listen_unix(const std::string& path, int type = SOCK_STREAM);

// One connection attempt to `path`. ECONNREFUSED/ENOENT (the frontend is not
// up yet) come back as an empty fd so the caller can retry; anything else is
// an error.
std::expected<UniqueFd, std::string> try_connect_unix(const std::string& path);

// Binds a non-blocking SOCK_DGRAM socket at `path`, replacing a stale socket
// file the same way listen_unix does.
std::expected<UniqueFd, std::string> bind_unix_dgram(const std::string& path);

}  // namespace vnk
