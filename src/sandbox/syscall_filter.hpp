// The seccomp-bpf allowlist each subcommand runs under once set up.
//
// The lists hold what the serving loop calls, read off the code and checked
// with strace over the integration suite: epoll, socket I/O, the guest's
// memory (mmap of the fds the vhost-user frontend sends), timers, memory
// allocation, and what abort() needs. Arguments are narrowed where the
// kernel can check them: socket() only for AF_INET, AF_INET6 (and AF_UNIX
// where vhost-user connects), ioctl() only SIOCOUTQ, mmap() and mprotect()
// never executable. Anything else stops the process with a log line naming
// the system call (SIGSYS, then the default action: terminate).
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace vnk::sandbox {

enum class Profile {
  serve,  // vnetkit serve: vhost-user + a backend
  netns,  // vnetkit netns: a TAP fd + usernet, and the command it waits for
};

struct FilterNeeds {
  Profile profile = Profile::serve;
  bool connects_unix = false;  // serve --vhost-user-connect: socket(AF_UNIX) + connect by path
  bool tap_offloads = false;   // serve --net tap: TUNSETOFFLOAD when a guest negotiates offloads
};

// The system calls allowed (names, sorted), for --help, the docs and tests.
[[nodiscard]] std::vector<std::string> allowed_syscalls(const FilterNeeds& needs);

// Installs the filter on this process (needs no_new_privs or
// CAP_SYS_ADMIN), with a SIGSYS handler that names a forbidden call on
// stderr and then terminates the process.
[[nodiscard]] std::expected<void, std::string> install_syscall_filter(const FilterNeeds& needs);

}  // namespace vnk::sandbox
