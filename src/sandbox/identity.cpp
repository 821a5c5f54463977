#include "sandbox/identity.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fmt/format.h>
#include <optional>
#include <vector>

namespace vnk::sandbox {

namespace {

std::optional<unsigned> number(std::string_view s) {
  unsigned v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// getpwnam_r/getgrnam_r want a buffer whose size sysconf only suggests.
std::vector<char> lookup_buffer() { return std::vector<char>(16384); }

}  // namespace

std::expected<Identity, std::string> resolve_identity(std::string_view spec) {
  const auto colon = spec.find(':');
  const std::string user(spec.substr(0, colon));
  const std::string group = colon == std::string_view::npos ? "" : std::string(spec.substr(colon + 1));
  if (user.empty() || (colon != std::string_view::npos && group.empty()))
    return std::unexpected(fmt::format("--runas '{}': expected USER or USER:GROUP", spec));

  Identity id;
  std::string user_name = user;
  std::vector<char> buf = lookup_buffer();
  passwd pw{};
  passwd* found_pw = nullptr;
  if (auto n = number(user)) {
    id.uid = *n;
    // A number need not be in the password database; its group must then be given.
    if (::getpwuid_r(id.uid, &pw, buf.data(), buf.size(), &found_pw) == 0 && found_pw != nullptr) {
      id.gid = pw.pw_gid;
      user_name = pw.pw_name;
    } else if (group.empty()) {
      return std::unexpected(fmt::format("--runas '{}': uid {} has no entry in the user database; give a group too (UID:GID)", spec, id.uid));
    }
  } else {
    if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found_pw) != 0 || found_pw == nullptr)
      return std::unexpected(fmt::format("--runas '{}': no user named {}", spec, user));
    id.uid = pw.pw_uid;
    id.gid = pw.pw_gid;
  }
  std::string group_name;
  if (!group.empty()) {
    group_name = group;
    if (auto n = number(group)) {
      id.gid = *n;
    } else {
      ::group buf_gr{};
      ::group* found_gr = nullptr;
      if (::getgrnam_r(group.c_str(), &buf_gr, buf.data(), buf.size(), &found_gr) != 0 || found_gr == nullptr)
        return std::unexpected(fmt::format("--runas '{}': no group named {}", spec, group));
      id.gid = found_gr->gr_gid;
    }
  } else {
    ::group gr{};
    ::group* found_gr = nullptr;
    group_name = ::getgrgid_r(id.gid, &gr, buf.data(), buf.size(), &found_gr) == 0 && found_gr != nullptr
                     ? std::string(gr.gr_name)
                     : std::to_string(id.gid);
  }
  if (id.uid == 0) return std::unexpected(fmt::format("--runas '{}': that is root; name an unprivileged user", spec));
  id.text = fmt::format("{}:{} ({}:{})", user_name, group_name, id.uid, id.gid);
  return id;
}

std::expected<void, std::string> become(const Identity& id) {
  auto failed = [&id](const char* call) {
    return std::unexpected(fmt::format("cannot become {}: {}: {}", id.text, call, std::strerror(errno)));
  };
  if (::setgroups(1, &id.gid) != 0) return failed("setgroups");
  if (::setresgid(id.gid, id.gid, id.gid) != 0) return failed("setresgid");
  if (::setresuid(id.uid, id.uid, id.uid) != 0) return failed("setresuid");
  // With every uid changed, root is gone for good: going back must fail.
  if (::setuid(0) == 0 || ::seteuid(0) == 0)
    return std::unexpected(fmt::format("cannot become {}: root could still be regained", id.text));
  return {};
}

}  // namespace vnk::sandbox
