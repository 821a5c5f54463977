#include "base/log.hpp"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
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
Target g_target = Target::automatic;

// systemd sets JOURNAL_STREAM=DEVICE:INODE for a service whose stderr is
// connected to the journal.
bool stderr_is_journal() {
  const char* env = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (env == nullptr || ::fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  return dev == st.st_dev && ino == st.st_ino;
}

// One line per message, "<priority>text", which journald files under that
// priority (and syslog-style readers understand).
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    int priority = LOG_INFO;
    switch (msg.level) {
      case spdlog::level::trace:
      case spdlog::level::debug: priority = LOG_DEBUG; break;
      case spdlog::level::info: priority = LOG_INFO; break;
      case spdlog::level::warn: priority = LOG_WARNING; break;
      case spdlog::level::err: priority = LOG_ERR; break;
      default: priority = LOG_CRIT; break;
    }
    std::string line = fmt::format("<{}>", priority);
    // A message with newlines is still one journal entry per line: keep
    // the priority on each.
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      line += c;
      if (c == '\n') line += fmt::format("<{}>", priority);
    }
    line += '\n';
    (void)!::write(STDERR_FILENO, line.data(), line.size());
  }
  void flush_() override {}
};

Target resolve(Target t) {
  if (t != Target::automatic) return t;
  return stderr_is_journal() ? Target::journal : Target::terminal;
}

spdlog::logger& logger() {
  // stderr: stdout belongs to reports and machine-readable output.
  static const std::shared_ptr<spdlog::logger> instance = [] {
    switch (resolve(g_target)) {
      case Target::journal: return std::make_shared<spdlog::logger>("vnetkit", std::make_shared<JournalSink>());
      case Target::syslog:
        // LOG_NDELAY: connect to /dev/log now, before the sandbox hides it.
        return std::make_shared<spdlog::logger>(
            "vnetkit", std::make_shared<spdlog::sinks::syslog_sink_mt>("vnetkit", LOG_PID | LOG_NDELAY, LOG_DAEMON, true));
      default: return spdlog::stderr_color_mt("vnetkit");
    }
  }();
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

Level level() noexcept { return g_level.load(std::memory_order_relaxed); }

std::string_view to_string(Level l) noexcept {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "error";
}

Level more_verbose() noexcept {
  const Level l = level() == Level::error ? Level::warn : level() == Level::warn ? Level::info : Level::debug;
  set_level(l);
  return l;
}

Level less_verbose() noexcept {
  const Level l = level() == Level::debug ? Level::info : level() == Level::info ? Level::warn : Level::error;
  set_level(l);
  return l;
}

void set_target(Target t) { g_target = t; }

Target target() { return resolve(g_target); }

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
