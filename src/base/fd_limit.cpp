#include "base/fd_limit.hpp"

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.hpp"

namespace vnk {

namespace {

std::size_t open_fds() noexcept {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  std::size_t n = 0;
  while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n > 0 ? n - 1 : 0;  // less the directory's own fd
}

}  // namespace

std::size_t raise_fd_limit() noexcept {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    const rlim_t before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &lim) == 0) {
      log::debug("open files: soft limit raised from {} to the hard limit {}", before, lim.rlim_max);
    } else {
      log::debug("open files: cannot raise the soft limit {} to {}: {}", before, lim.rlim_max, std::strerror(errno));
      ::getrlimit(RLIMIT_NOFILE, &lim);
    }
  }
  return lim.rlim_cur == RLIM_INFINITY ? SIZE_MAX : static_cast<std::size_t>(lim.rlim_cur);
}

FdBudget::FdBudget() : limit_(kMinFlowFds) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const std::size_t soft = lim.rlim_cur == RLIM_INFINITY ? SIZE_MAX / 2 : static_cast<std::size_t>(lim.rlim_cur);
  const std::size_t taken = open_fds() + kFdReserve;
  limit_ = std::max(kMinFlowFds, soft > taken ? soft - taken : 0);
}

}  // namespace vnk
