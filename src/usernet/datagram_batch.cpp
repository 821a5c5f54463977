#include "usernet/datagram_batch.hpp"

#include "memory/iovec_ops.hpp"

namespace vnk::usernet {

DatagramBatch::DatagramBatch() : bytes_(new std::byte[kMaxDatagrams * kMaxBytes]) {}

void DatagramBatch::add(int fd, const SocketAddress* to, bool icmp, std::span<const iovec> payload,
                        std::size_t length) noexcept {
  std::byte* slot = bytes_.get() + count_ * kMaxBytes;
  const std::size_t n = iov_read(payload, 0, std::span(slot, length));
  iov_[count_] = iovec{slot, n};
  mmsghdr& m = msgs_[count_];
  m = mmsghdr{};
  m.msg_hdr.msg_iov = &iov_[count_];
  m.msg_hdr.msg_iovlen = 1;
  if (to != nullptr) {
    to_[count_] = *to;
    m.msg_hdr.msg_name = const_cast<sockaddr*>(to_[count_].get());
    m.msg_hdr.msg_namelen = to_[count_].length();
  }
  icmp_[count_] = icmp;
  fd_ = fd;
  ++count_;
}

DatagramBatch::Outcome DatagramBatch::send() noexcept {
  Outcome out;
  std::size_t done = 0;
  while (done < count_) {
    const int n = ::sendmmsg(fd_, &msgs_[done], static_cast<unsigned>(count_ - done), MSG_DONTWAIT | MSG_NOSIGNAL);
    // sendmmsg stops at the first datagram that fails: that one is lost
    // (as its own send would have been) and the rest are tried again.
    const std::size_t sent = n > 0 ? static_cast<std::size_t>(n) : 0;
    for (std::size_t i = done; i < done + sent; ++i) ++(icmp_[i] ? out.icmp_sent : out.udp_sent);
    done += sent;
    if (n <= 0) ++(icmp_[done++] ? out.icmp_failed : out.udp_failed);
  }
  count_ = 0;
  return out;
}

}  // namespace vnk::usernet
