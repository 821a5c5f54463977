// Copies between scatter-gather lists of host memory (iovecs that
// GuestMemory::translate produced, or ordinary buffers). Used by in-process
// backends (loopback) and by the net engines to peel or place the 12-byte
// virtio-net header without assuming it sits in one descriptor.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>

namespace vnk {

// Total bytes covered by `iov`.
[[nodiscard]] std::size_t iov_length(std::span<const iovec> iov) noexcept;

// Copies up to out.size() bytes starting `offset` bytes into `iov`; returns
// bytes copied.
std::size_t iov_read(std::span<const iovec> iov, std::size_t offset, std::span<std::byte> out) noexcept;

// Copies `in` into `iov` starting `offset` bytes in; returns bytes copied
// (less than in.size() when `iov` is too short).
std::size_t iov_write(std::span<const iovec> iov, std::size_t offset, std::span<const std::byte> in) noexcept;

// Copies min(len(src), len(dst)) bytes from src to dst; returns bytes copied.
std::size_t iov_copy(std::span<const iovec> dst, std::span<const iovec> src) noexcept;

// Splits `iov` at `offset`: writes the entries for bytes [offset, end) into
// `out` (adjusting the first) and returns how many it wrote. No data moves.
std::size_t iov_tail(std::span<const iovec> iov, std::size_t offset, std::span<iovec> out) noexcept;
// Like iov_tail, but covering at most `len` bytes from `offset`.
std::size_t iov_slice(std::span<const iovec> iov, std::size_t offset, std::size_t len, std::span<iovec> out) noexcept;

}  // namespace vnk
