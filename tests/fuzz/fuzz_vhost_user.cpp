// libFuzzer target: a hostile vhost-user frontend against NetSession.
//
// Input: messages, each {u8 request, u8 flags (bit 0 need-reply, bit 1 attach
// an fd), u16 payload size, payload}. The attached fd is an eventfd, or for
// SET_MEM_TABLE a 1 MiB memfd (so fuzzed region tables map real memory).
// Between messages a kick on queue 0 or 1 is delivered when the request byte
// says so. fd ownership is checked by the unit tests (vhost_user_channel_test).
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backend/loopback_backend.hpp"
#include "base/log.hpp"
#include "vhost_user/net_session.hpp"

using namespace vnk;

namespace {
int memfd() {
  static const int fd = [] {
    const int f = ::memfd_create("fuzz-guest", MFD_CLOEXEC);
    if (::ftruncate(f, 1 << 20) != 0) __builtin_trap();
    return f;
  }();
  return fd;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  log::set_level(log::Level::error);
  backend::LoopbackBackend loopback(8);
  vhost_user::NetSession session(net::NetConfig{}, loopback);
  std::size_t pos = 0;
  while (pos + 4 <= size) {
    const std::uint8_t req = data[pos];
    const std::uint8_t flags = data[pos + 1];
    std::uint16_t len = 0;
    std::memcpy(&len, data + pos + 2, 2);
    pos += 4;
    len = static_cast<std::uint16_t>(std::min({std::size_t{len}, size - pos, vhost_user::kMaxPayload}));
    if (req >= 0xf0) {  // not a message: a kick or backend readiness
      session.on_kick(req & 1);
      session.backend_ready();
      // As the server does between its other sources: a few more bounded
      // rounds while work is left (never unbounded: a hang is a finding).
      for (int round = 0; round < 8 && session.work_pending(); ++round) session.resume();
      continue;
    }
    vhost_user::Message m;
    m.header = {req, vhost_user::kVersion | ((flags & 1) ? vhost_user::kFlagNeedReply : 0u), len};
    std::memcpy(m.storage.data(), data + pos, len);
    pos += len;
    if (flags & 2) {
      const bool mem = req == static_cast<std::uint8_t>(vhost_user::Request::set_mem_table);
      m.fds[m.fd_count++].reset(mem ? ::dup(memfd()) : ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    }
    if (!session.handle(m)) break;  // the server would disconnect here
  }
  return 0;
}
