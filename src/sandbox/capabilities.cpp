#include "sandbox/capabilities.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

namespace vnk::sandbox {

namespace {

// Two 32-bit words per set with _LINUX_CAPABILITY_VERSION_3.
using CapData = __user_cap_data_struct[_LINUX_CAPABILITY_U32S_3];

bool get_caps(CapData& data) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  return ::syscall(SYS_capget, &header, data) == 0;
}

}  // namespace

std::expected<void, std::string> forbid_new_privileges() {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return std::unexpected(fmt::format("prctl(PR_SET_NO_NEW_PRIVS): {}", std::strerror(errno)));
  return {};
}

std::expected<void, std::string> drop_capabilities() {
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return std::unexpected(fmt::format("clearing ambient capabilities: {}", std::strerror(errno)));
  // The bounding set can only be emptied while CAP_SETPCAP is effective;
  // without it the permitted set is already empty and cannot grow (no new
  // privileges), so there is nothing it could bound.
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL && errno != EPERM)
      return std::unexpected(fmt::format("dropping capability {} from the bounding set: {}", cap, std::strerror(errno)));
  }
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  CapData none{};
  if (::syscall(SYS_capset, &header, none) != 0)
    return std::unexpected(fmt::format("capset: {}", std::strerror(errno)));
  if (effective_capabilities() != 0) return std::unexpected("capabilities remain after capset");
  return {};
}

std::uint64_t effective_capabilities() {
  CapData data{};
  if (!get_caps(data)) return ~std::uint64_t{0};
  return (static_cast<std::uint64_t>(data[1].effective) << 32) | data[0].effective;
}

}  // namespace vnk::sandbox
