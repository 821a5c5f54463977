#include "base/small_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace vnk {

bool write_small_file(const char* path, std::string_view text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::close(fd);
  if (n == static_cast<ssize_t>(text.size())) return true;
  errno = n < 0 ? err : EIO;
  return false;
}

}  // namespace vnk
