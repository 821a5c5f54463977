#include "usernet/pcap_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <stdexcept>

#include "memory/iovec_ops.hpp"

namespace vnk::usernet {

namespace {

struct FileHeader {
  std::uint32_t magic = 0xa1b2c3d4;  // microsecond timestamps, host byte order
  std::uint16_t major = 2, minor = 4;
  std::int32_t thiszone = 0;
  std::uint32_t sigfigs = 0;
  std::uint32_t snaplen = PcapWriter::kSnapLen;
  std::uint32_t linktype = 1;  // LINKTYPE_ETHERNET
};

struct RecordHeader {
  std::uint32_t ts_sec, ts_usec, incl_len, orig_len;
};

}  // namespace

PcapWriter::PcapWriter(const std::string& path)
    : fd_(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_APPEND, 0644)) {
  if (!fd_.valid()) throw std::runtime_error("--pcap " + path + ": " + std::strerror(errno));
  const FileHeader h;
  if (::write(fd_.get(), &h, sizeof h) != static_cast<ssize_t>(sizeof h))
    throw std::runtime_error("--pcap " + path + ": cannot write: " + std::strerror(errno));
}

void PcapWriter::write(std::span<const iovec> frame, std::size_t length) noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const auto incl = static_cast<std::uint32_t>(std::min(length, kSnapLen));
  RecordHeader rh{static_cast<std::uint32_t>(ts.tv_sec), static_cast<std::uint32_t>(ts.tv_nsec / 1000), incl,
                  static_cast<std::uint32_t>(length)};
  std::array<iovec, 65> iov{};
  iov[0] = iovec{&rh, sizeof rh};
  const std::size_t n = iov_slice(frame, 0, incl, std::span(iov).subspan(1));
  const ssize_t want = static_cast<ssize_t>(sizeof rh + incl);
  if (::writev(fd_.get(), iov.data(), static_cast<int>(n + 1)) != want) {
    ++errors_;
    return;
  }
  ++frames_;
}

}  // namespace vnk::usernet
