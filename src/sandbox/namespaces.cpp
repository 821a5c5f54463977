#include "sandbox/namespaces.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "base/host_features.hpp"
#include "base/small_file.hpp"
#include "base/unique_fd.hpp"

namespace vnk::sandbox {

namespace {

// Where the empty tmpfs is mounted before it becomes the root: any existing
// directory does; /tmp exists on every system we run on.
constexpr const char* kStaging = "/tmp";

std::unexpected<std::string> failed(const std::string& what) {
  return std::unexpected(fmt::format("{}: {}", what, std::strerror(errno)));
}

// mkdir -p, relative to the current directory.
bool make_dirs(const std::string& path) {
  for (std::size_t i = 1; i <= path.size(); ++i) {
    if (i != path.size() && path[i] != '/') continue;
    const std::string part = path.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

// The per-mount flags of the mount holding `fd`, for a read-only bind
// remount that keeps them: a user namespace may add flags but not clear
// the ones the host set (they are locked).
unsigned long mount_flags_of(int fd) {
  struct statvfs st {};
  if (::fstatvfs(fd, &st) != 0) return 0;
  unsigned long flags = 0;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

}  // namespace

std::expected<void, std::string> enter_user_namespace(bool map_self) {
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  if (::unshare(CLONE_NEWUSER) != 0)
    return std::unexpected(fmt::format("unshare(user namespace): {}; {}", std::strerror(errno), kUserNamespaceHint));
  if (!map_self) return {};
  if (!write_small_file("/proc/self/setgroups", "deny") ||
      !write_small_file("/proc/self/uid_map", fmt::format("{} {} 1", uid, uid)) ||
      !write_small_file("/proc/self/gid_map", fmt::format("{} {} 1", gid, gid)))
    return failed("writing the user namespace's id maps");
  return {};
}

std::expected<void, std::string> enter_empty_root(const std::vector<std::string>& visible_dirs) {
  if (::unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS) != 0) return failed("unshare(mount, IPC, UTS namespaces)");
  // Open what stays visible before anything is covered (it may be /tmp).
  std::vector<UniqueFd> dirs;
  for (const std::string& d : visible_dirs) {
    dirs.emplace_back(::open(d.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dirs.back().valid()) return failed(fmt::format("opening {}", d));
  }
  // Nothing done here may reach the host's mount namespace: make every
  // mount private first. That fails where / is not a mount point (a
  // chroot), and then nothing is mounted at all.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return failed("making mounts private (is / a mount point? in a chroot it is not)");
  if (::mount("vnetkit", kStaging, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,nr_inodes=256,mode=0755") != 0)
    return failed(fmt::format("mounting a tmpfs on {}", kStaging));
  if (::chdir(kStaging) != 0) return failed(fmt::format("chdir {}", kStaging));
  for (std::size_t i = 0; i < dirs.size(); ++i) {
    const std::string target = "." + visible_dirs[i];
    const std::string source = fmt::format("/proc/self/fd/{}", dirs[i].get());
    if (!make_dirs(target)) return failed(fmt::format("mkdir {} in the new root", visible_dirs[i]));
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
      return failed(fmt::format("bind-mounting {}", visible_dirs[i]));
    const unsigned long keep = mount_flags_of(dirs[i].get());
    if (::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | keep,
                nullptr) != 0)
      return failed(fmt::format("making {} read-only", visible_dirs[i]));
  }
  // pivot_root(".", ".") stacks the old root on top of the new one; the
  // detach then takes the old root (and every host mount under it) away.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return failed("pivot_root");
  if (::umount2(".", MNT_DETACH) != 0) return failed("detaching the host's file system");
  if (::chdir("/") != 0) return failed("chdir /");
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return failed("making the new root read-only");
  return {};
}

}  // namespace vnk::sandbox
