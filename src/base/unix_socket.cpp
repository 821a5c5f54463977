#include "base/unix_socket.hpp"

#include <fmt/core.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vnk {

namespace {

std::expected<sockaddr_un, std::string> unix_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return std::unexpected(fmt::format("socket path '{}' must be 1..{} bytes", path, sizeof addr.sun_path - 1));
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

namespace {

// A socket file left by an earlier run is removed; anything else there, or
// a socket someone still serves, is refused.
std::expected<void, std::string> clear_stale_socket(const std::string& path, int type) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};
  if (!S_ISSOCK(st.st_mode)) return std::unexpected(fmt::format("{} exists and is not a socket; not replacing it", path));
  if (auto addr = unix_address(path)) {
    UniqueFd s(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
    if (s.valid() && ::connect(s.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) == 0)
      return std::unexpected(fmt::format("{} is in use by another server", path));
  }
  ::unlink(path.c_str());
  return {};
}

std::expected<UniqueFd, std::string> bind_unix(const std::string& path, int type) {
  auto addr = unix_address(path);
  if (!addr) return std::unexpected(addr.error());
  if (auto r = clear_stale_socket(path, type); !r) return std::unexpected(r.error());
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC | (type == SOCK_DGRAM ? SOCK_NONBLOCK : 0), 0));
  if (!fd.valid()) return std::unexpected("socket(AF_UNIX): " + errno_text(errno));
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) != 0)
    return std::unexpected(fmt::format("bind {}: {}", path, errno_text(errno)));
  return fd;
}

}  // namespace

std::expected<UniqueFd, std::string> listen_unix(const std::string& path, int type) {
  auto fd = bind_unix(path, type);
  if (!fd) return fd;
  if (::listen(fd->get(), 16) != 0) return std::unexpected(fmt::format("listen {}: {}", path, errno_text(errno)));
  return fd;
}

std::expected<UniqueFd, std::string> bind_unix_dgram(const std::string& path) { return bind_unix(path, SOCK_DGRAM); }

std::expected<UniqueFd, std::string> try_connect_unix(const std::string& path) {
  auto addr = unix_address(path);
  if (!addr) return std::unexpected(addr.error());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return std::unexpected("socket(AF_UNIX): " + errno_text(errno));
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr) == 0) return fd;
  const int err = errno;
  if (err == ECONNREFUSED || err == ENOENT) return UniqueFd{};
  return std::unexpected(fmt::format("connect {}: {}", path, errno_text(err)));
}

}  // namespace vnk
