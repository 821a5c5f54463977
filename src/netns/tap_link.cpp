#include "netns/tap_link.hpp"

#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/log.hpp"

namespace vnk::netns {

using net::kNetHeaderSize;

TapLink::TapLink(UniqueFd tap, net::NetBackend& backend, net::FrameInterceptor* interceptor)
    : tap_(std::move(tap)),
      backend_(backend),
      interceptor_(interceptor),
      in_(kNetHeaderSize + net::kMaxFrameSize),
      out_(kNetHeaderSize + net::kMaxFrameSize) {}

bool TapLink::enable_offloads() {
  if (::ioctl(tap_.get(), TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) != 0) return false;
  backend_.set_rx_offloads(net::RxOffloads{true, true, true});
  return true;
}

bool TapLink::from_tap() {
  const bool more = read_burst();
  backend_.flush_tx();  // what the backend held from this burst goes now
  return more;
}

bool TapLink::read_burst() {
  for (unsigned i = 0; i < kBudget; ++i) {
    const ssize_t n = ::read(tap_.get(), in_.data(), in_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) counters_.read_errors.add();
      return false;
    }
    const auto len = static_cast<std::size_t>(n);
    if (len < kNetHeaderSize + net::kEthernetHeaderSize) {
      counters_.drop_runt.add();
      continue;
    }
    // A TAP reports the frame's full length even when it did not fit the
    // buffer (tun_put_user returns the total): never look past what we own.
    if (len > in_.size()) {
      counters_.drop_oversize.add();
      continue;
    }
    const net::NetHeader header = net::NetHeader::parse(std::span(in_).first<kNetHeaderSize>());
    const iovec data{in_.data() + kNetHeaderSize, len - kNetHeaderSize};
    // A TAP frame is in our own buffer already: all of it is "head".
    const net::TxFrame frame{header, std::span(&data, 1), data.iov_len,
                             std::span(in_).subspan(kNetHeaderSize, std::min(data.iov_len, net::kTxHeadBytes))};
    switch (net::transmit_through(backend_, interceptor_, frame)) {
      case net::TxPath::intercepted: counters_.intercepted.add(); continue;
      case net::TxPath::dropped: counters_.drop_backend.add(); continue;
      case net::TxPath::sent: break;
    }
    counters_.frames_from_tap.add();
    counters_.bytes_from_tap.add(data.iov_len);
  }
  return true;
}

bool TapLink::pending() const { return net::rx_pending_through(backend_, interceptor_); }

bool TapLink::to_tap(bool backend_ready) {
  const iovec space{out_.data() + kNetHeaderSize, out_.size() - kNetHeaderSize};
  const std::span<const iovec> buffer(&space, 1);
  for (unsigned i = 0; i < kBudget; ++i, backend_ready = false) {
    if (!backend_ready && !pending()) return false;
    const net::RxResult r = net::receive_through(backend_, interceptor_, buffer);
    if (r.status == net::RxStatus::empty) return false;
    if (r.status == net::RxStatus::error) {
      counters_.drop_backend.add();
      continue;
    }
    if (r.written < r.frame_len) {
      counters_.drop_truncated.add();
      continue;
    }
    net::NetHeader header = r.header;
    header.num_buffers = 0;  // meaningless to a TAP
    const auto raw = header.serialize();
    std::copy(raw.begin(), raw.end(), out_.begin());
    const std::size_t len = kNetHeaderSize + r.written;
    ssize_t n;
    do {
      n = ::write(tap_.get(), out_.data(), len);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(len)) {
      if (counters_.write_errors.get() == 0) log::warn("netns: writing a frame to the TAP failed: {}", std::strerror(errno));
      counters_.write_errors.add();
      continue;
    }
    counters_.frames_to_tap.add();
    counters_.bytes_to_tap.add(r.written);
    if (i % kReadEvery == kReadEvery - 1) from_tap();  // the ACKs for what we just wrote
  }
  return true;
}

}  // namespace vnk::netns
