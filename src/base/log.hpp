// Logging front end: fmt-style formatting here, spdlog behind log.cpp so the
// heavy header stays in one translation unit.
#pragma once

#include <fmt/core.h>

#include <string_view>
#include <utility>

namespace vnk::log {

enum class Level { debug, info, warn, error };

void write(Level level, std::string_view message);
[[nodiscard]] bool enabled(Level level) noexcept;
void set_level(Level level);
// Sets the logger up now: it asks whether stderr is a terminal and loads the
// time zone, which the sandbox forbids later.
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
