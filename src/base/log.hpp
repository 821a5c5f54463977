// Logging front end: fmt-style formatting here, spdlog behind log.cpp so the
// heavy header stays in one translation unit.
#pragma once

#include <fmt/core.h>

#include <string_view>
#include <utility>

namespace vnk::log {

enum class Level { debug, info, warn, error };

// Where messages go:
//   terminal  stderr with time stamps (in colour on a terminal);
//   journal   stderr as systemd's journal reads it: one line per message with
//             its priority as a "<N>" prefix (sd-daemon(3)), no time stamp;
//   syslog    syslog(3), facility daemon, connected at prepare() so it keeps
//             working in the sandbox.
// automatic: journal when stderr is the journal (JOURNAL_STREAM names it, as
// systemd sets for a service), else terminal.
enum class Target { automatic, terminal, journal, syslog };

void write(Level level, std::string_view message);
[[nodiscard]] bool enabled(Level level) noexcept;
void set_level(Level level);
[[nodiscard]] Level level() noexcept;
[[nodiscard]] std::string_view to_string(Level level) noexcept;
// One step more (debug-wards) or less verbose; returns the new level.
Level more_verbose() noexcept;
Level less_verbose() noexcept;
// Before the first message (later calls change nothing).
void set_target(Target target);
// The target in effect: automatic resolved.
[[nodiscard]] Target target();
// Sets the logger up now: it asks whether stderr is a terminal, loads the
// time zone and connects to syslog, which the sandbox forbids later.
void prepare();

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::debug)) write(Level::debug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::info)) write(Level::info, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::warn)) write(Level::warn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  if (enabled(Level::error)) write(Level::error, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace vnk::log
