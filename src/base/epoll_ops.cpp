#include "base/epoll_ops.hpp"

#include <sys/epoll.h>

namespace vnk {

bool epoll_add(int ep, int fd, std::uint32_t events, std::uint64_t tag) noexcept {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  return ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool epoll_mod(int ep, int fd, std::uint32_t events, std::uint64_t tag) noexcept {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = tag;
  return ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void epoll_del(int ep, int fd) noexcept { (void)::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr); }

}  // namespace vnk
