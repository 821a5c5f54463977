#include "netns/tap_backend.hpp"

#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "base/log.hpp"
#include "net/net_header.hpp"
#include "netns/tap_device.hpp"

namespace vnk::netns {

std::expected<std::unique_ptr<TapBackend>, std::string> TapBackend::open(const std::string& ifname) {
  auto tap = create_tap(ifname);
  if (!tap) return std::unexpected(tap.error());
  auto b = std::unique_ptr<TapBackend>(new TapBackend(std::move(*tap), ifname));
  b->set_rx_offloads({});  // whole, checksummed frames until a guest negotiates more
  return b;
}

void TapBackend::set_rx_offloads(net::RxOffloads o) {
  unsigned flags = 0;
  if (o.partial_csum) flags |= TUN_F_CSUM;
  if (o.partial_csum && o.tso4) flags |= TUN_F_TSO4;
  if (o.partial_csum && o.tso6) flags |= TUN_F_TSO6;
  if (::ioctl(tap_.get(), TUNSETOFFLOAD, flags) != 0)
    log::warn("tap {}: TUNSETOFFLOAD {:#x}: {}", ifname_, flags, std::strerror(errno));
}

net::TxResult TapBackend::transmit(const net::TxFrame& frame) {
  net::NetHeader header = frame.header;
  header.num_buffers = 0;  // meaningless to a TAP
  const auto raw = header.serialize();
  std::array<iovec, 1 + 64> iov;  // the header, then the frame where it lies
  iov[0] = iovec{const_cast<std::byte*>(raw.data()), raw.size()};
  if (frame.data.size() + 1 > iov.size()) {
    counters_.write_errors.add();
    return net::TxResult::dropped;
  }
  std::copy(frame.data.begin(), frame.data.end(), iov.begin() + 1);
  ssize_t n;
  do {
    n = ::writev(tap_.get(), iov.data(), static_cast<int>(frame.data.size() + 1));
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(raw.size() + frame.length)) {
    if (counters_.write_errors.get() == 0) log::warn("tap {}: writing a frame failed: {}", ifname_, std::strerror(errno));
    counters_.write_errors.add();
    return net::TxResult::dropped;
  }
  counters_.frames_to_tap.add();
  counters_.bytes_to_tap.add(frame.length);
  return net::TxResult::sent;
}

net::RxResult TapBackend::receive(std::span<const iovec> buffer) {
  std::array<std::byte, net::kNetHeaderSize> raw{};
  std::array<iovec, 1 + 64> iov;
  iov[0] = iovec{raw.data(), raw.size()};
  const std::size_t parts = std::min(buffer.size(), iov.size() - 1);
  std::copy_n(buffer.begin(), parts, iov.begin() + 1);
  std::size_t room = 0;
  for (std::size_t i = 0; i < parts; ++i) room += buffer[i].iov_len;
  ssize_t n;
  do {
    n = ::readv(tap_.get(), iov.data(), static_cast<int>(parts + 1));
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN) return {};
    counters_.read_errors.add();
    return net::RxResult{net::RxStatus::error};
  }
  if (static_cast<std::size_t>(n) < raw.size()) return net::RxResult{net::RxStatus::error};
  // A TAP reports a frame's whole length even when the buffer was shorter.
  const std::size_t len = static_cast<std::size_t>(n) - raw.size();
  const std::size_t written = std::min(len, room);
  if (written < len) counters_.rx_truncated.add();
  counters_.frames_from_tap.add();
  counters_.bytes_from_tap.add(written);
  return net::RxResult{net::RxStatus::frame, len, written, net::NetHeader::parse(raw)};
}

}  // namespace vnk::netns
