#include "memory/iovec_ops.hpp"

#include <algorithm>
#include <cstring>

namespace vnk {

std::size_t iov_length(std::span<const iovec> iov) noexcept {
  std::size_t n = 0;
  for (const iovec& v : iov) n += v.iov_len;
  return n;
}

namespace {

// Calls f(ptr, len) for each piece of `iov` after skipping `offset` bytes,
// until f has consumed `limit` bytes. Returns bytes visited.
template <typename F>
std::size_t walk(std::span<const iovec> iov, std::size_t offset, std::size_t limit, F&& f) {
  std::size_t done = 0;
  for (const iovec& v : iov) {
    if (done == limit) break;
    if (offset >= v.iov_len) {
      offset -= v.iov_len;
      continue;
    }
    const std::size_t n = std::min(v.iov_len - offset, limit - done);
    f(static_cast<std::byte*>(v.iov_base) + offset, done, n);
    done += n;
    offset = 0;
  }
  return done;
}

}  // namespace

std::size_t iov_read(std::span<const iovec> iov, std::size_t offset, std::span<std::byte> out) noexcept {
  return walk(iov, offset, out.size(),
              [&](std::byte* p, std::size_t done, std::size_t n) { std::memcpy(out.data() + done, p, n); });
}

std::size_t iov_write(std::span<const iovec> iov, std::size_t offset, std::span<const std::byte> in) noexcept {
  return walk(iov, offset, in.size(),
              [&](std::byte* p, std::size_t done, std::size_t n) { std::memcpy(p, in.data() + done, n); });
}

std::size_t iov_copy(std::span<const iovec> dst, std::span<const iovec> src) noexcept {
  std::size_t copied = 0;
  for (const iovec& s : src) {
    const std::size_t n =
        iov_write(dst, copied, std::span(static_cast<const std::byte*>(s.iov_base), s.iov_len));
    copied += n;
    if (n < s.iov_len) break;
  }
  return copied;
}

std::size_t iov_tail(std::span<const iovec> iov, std::size_t offset, std::span<iovec> out) noexcept {
  std::size_t used = 0;
  for (const iovec& v : iov) {
    if (offset >= v.iov_len) {
      offset -= v.iov_len;
      continue;
    }
    if (used == out.size()) break;
    out[used++] = iovec{static_cast<std::byte*>(v.iov_base) + offset, v.iov_len - offset};
    offset = 0;
  }
  return used;
}

}  // namespace vnk

namespace vnk {

std::size_t iov_slice(std::span<const iovec> iov, std::size_t offset, std::size_t len, std::span<iovec> out) noexcept {
  std::size_t used = iov_tail(iov, offset, out);
  for (std::size_t i = 0; i < used; ++i) {
    if (out[i].iov_len >= len) {
      out[i].iov_len = len;
      return len == 0 ? i : i + 1;
    }
    len -= out[i].iov_len;
  }
  return used;
}

}  // namespace vnk
