#include "base/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdlib>
#include <ctime>
#include <string>

namespace vnk::log {
namespace {

Level initial_level() {
  const char* env = std::getenv("VNETKIT_LOG");
  if (env == nullptr) return Level::warn;
  const std::string v(env);
  if (v == "debug") return Level::debug;
  if (v == "info") return Level::info;
  if (v == "error") return Level::error;
  return Level::warn;
}

std::atomic<Level> g_level{initial_level()};

spdlog::logger& logger() {
  // stderr: stdout belongs to reports and machine-readable output.
  static const auto instance = spdlog::stderr_color_mt("vnetkit");
  return *instance;
}

spdlog::level::level_enum to_spdlog(Level l) {
  switch (l) {
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
  }
  return spdlog::level::err;
}

}  // namespace

bool enabled(Level level) noexcept { return level >= g_level.load(std::memory_order_relaxed); }

void set_level(Level level) { g_level.store(level, std::memory_order_relaxed); }

void prepare() {
  ::tzset();
  (void)logger();
}

void write(Level level, std::string_view message) {
  auto& l = logger();
  l.set_level(spdlog::level::trace);
  l.log(to_spdlog(level), message);
}

}  // namespace vnk::log
