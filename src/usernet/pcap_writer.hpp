// Writes frames to a pcap file (the classic format: microsecond timestamps,
// LINKTYPE_ETHERNET), readable by tcpdump and Wireshark. Each frame is one
// writev() straight from its iovecs (guest memory), so nothing is buffered
// and a crash loses nothing already captured.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <string>

#include "base/unique_fd.hpp"

namespace vnk::usernet {

class PcapWriter {
 public:
  static constexpr std::size_t kSnapLen = 65535;

  // Creates (truncates) `path` and writes the file header; throws
  // std::runtime_error with a sentence for the user on failure.
  explicit PcapWriter(const std::string& path);

  // Records the first `length` bytes of `frame` (at most kSnapLen).
  void write(std::span<const iovec> frame, std::size_t length) noexcept;
  [[nodiscard]] std::size_t frames() const noexcept { return frames_; }
  [[nodiscard]] std::size_t errors() const noexcept { return errors_; }

 private:
  UniqueFd fd_;
  std::size_t frames_ = 0;
  std::size_t errors_ = 0;
};

}  // namespace vnk::usernet
