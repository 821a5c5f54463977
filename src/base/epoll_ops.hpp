// Thin epoll_ctl wrappers: an event set is keyed by a 64-bit tag the owner
// chooses (what became ready), never by a pointer.
#pragma once

#include <cstdint>

namespace vnk {

bool epoll_add(int ep, int fd, std::uint32_t events, std::uint64_t tag) noexcept;
bool epoll_mod(int ep, int fd, std::uint32_t events, std::uint64_t tag) noexcept;
// ENOENT/EBADF are ignored: a closed fd has already left the set.
void epoll_del(int ep, int fd) noexcept;

}  // namespace vnk
