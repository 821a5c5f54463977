#include "attach/socket_link.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "base/log.hpp"

namespace vnk::attach {

SocketLink::SocketLink(UniqueFd sock, Framing framing, bool connected, net::NetBackend& backend,
                       net::FrameInterceptor* interceptor, SocketLinkCounters& counters)
    : sock_(std::move(sock)),
      framing_(framing),
      backend_(backend),
      interceptor_(interceptor),
      counters_(counters),
      in_(framing == Framing::datagram ? kDatagramBatch * StreamDeframer::kMaxFrame : 0),
      out_(framing == Framing::stream ? StreamDeframer::kLengthSize + StreamDeframer::kMaxFrame
                                      : kDatagramBatch * StreamDeframer::kMaxFrame),
      connected_(connected) {
  int type = 0;
  socklen_t len = sizeof type;
  seqpacket_ = framing == Framing::datagram && ::getsockopt(sock_.get(), SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
               type == SOCK_SEQPACKET;
}

void SocketLink::deliver(std::span<const std::byte> frame) {
  if (frame.size() < net::kEthernetHeaderSize) {
    counters_.drop_runt.add();
    return;
  }
  // The frame is in our own buffer already: all of it is "head".
  const iovec data{const_cast<std::byte*>(frame.data()), frame.size()};
  const net::TxFrame tx{net::NetHeader{}, std::span(&data, 1), frame.size(),
                        frame.first(std::min(frame.size(), net::kTxHeadBytes))};
  switch (net::transmit_through(backend_, interceptor_, tx)) {
    case net::TxPath::intercepted: counters_.intercepted.add(); return;
    case net::TxPath::dropped: counters_.drop_backend.add(); return;
    case net::TxPath::sent: break;
  }
  counters_.frames_from_peer.add();
  counters_.bytes_from_peer.add(frame.size());
}

bool SocketLink::from_peer() {
  if (closed_) return false;
  const bool more = framing_ == Framing::stream ? read_stream() : read_datagrams();
  backend_.flush_tx();  // what the backend held from this burst goes now
  return more;
}

bool SocketLink::read_stream() {
  for (unsigned i = 0; i < kBudget; ++i) {
    const auto space = deframer_.space();
    const ssize_t n = ::recv(sock_.get(), space.data(), space.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        counters_.read_errors.add();
        closed_ = true;
      }
      return false;
    }
    if (n == 0) {
      counters_.disconnects.add();
      closed_ = true;
      return false;
    }
    deframer_.commit(static_cast<std::size_t>(n));
    while (auto frame = deframer_.next()) deliver(*frame);
    if (deframer_.error()) {
      log::warn("attach: the peer sent a frame length of {}: not a QEMU stream; closing the connection",
                deframer_.bad_length());
      counters_.bad_length.add();
      closed_ = true;
      return false;
    }
  }
  return true;
}

bool SocketLink::read_datagrams() {
  // Up to kDatagramBatch datagrams per recvmmsg(), each into a frame-sized
  // slot of in_, until EAGAIN or the budget.
  std::array<mmsghdr, kDatagramBatch> msgs{};
  std::array<iovec, kDatagramBatch> iov{};
  std::array<sockaddr_storage, kDatagramBatch> from{};
  for (unsigned taken = 0; taken < kBudget;) {
    for (std::size_t k = 0; k < kDatagramBatch; ++k) {
      iov[k] = iovec{in_.data() + k * StreamDeframer::kMaxFrame, StreamDeframer::kMaxFrame};
      msgs[k] = mmsghdr{};
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
      msgs[k].msg_hdr.msg_name = &from[k];
      msgs[k].msg_hdr.msg_namelen = sizeof from[k];
    }
    const int n = ::recvmmsg(sock_.get(), msgs.data(), kDatagramBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) counters_.read_errors.add();
      return false;
    }
    for (int k = 0; k < n; ++k) {
      const mmsghdr& m = msgs[static_cast<std::size_t>(k)];
      if (m.msg_len == 0 && seqpacket_) {
        counters_.disconnects.add();
        closed_ = true;
        return false;
      }
      // A named sender (an unconnected unixgram peer) is where answers go.
      if (m.msg_hdr.msg_namelen > sizeof(sa_family_t)) {
        peer_ = from[static_cast<std::size_t>(k)];
        peer_len_ = m.msg_hdr.msg_namelen;
      }
      if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        counters_.drop_runt.add();  // (oversize: no Ethernet frame is this long)
        continue;
      }
      deliver(std::span(in_).subspan(static_cast<std::size_t>(k) * StreamDeframer::kMaxFrame, m.msg_len));
    }
    taken += static_cast<unsigned>(n);
    if (static_cast<std::size_t>(n) < kDatagramBatch) return false;  // drained
  }
  return true;
}

bool SocketLink::pending() const {
  return !closed_ && net::rx_pending_through(backend_, interceptor_);
}

std::size_t SocketLink::next_frame(std::span<std::byte> space, bool backend_ready) {
  const iovec v{space.data(), space.size()};
  const std::span<const iovec> buffer(&v, 1);
  for (;;) {
    if (!backend_ready && !pending()) return 0;
    const net::RxResult r = net::receive_through(backend_, interceptor_, buffer);
    if (r.status == net::RxStatus::empty) return 0;
    if (r.status == net::RxStatus::error) {
      counters_.drop_backend.add();
      continue;
    }
    if (r.written < r.frame_len) {
      counters_.drop_truncated.add();
      continue;
    }
    return r.written;
  }
}

void SocketLink::warn_send_failed(int err) {
  if (counters_.write_errors.get() == 0)
    log::warn("attach: sending to the peer failed: {}{}", std::strerror(err),
              framing_ == Framing::datagram && (err == ENOENT || err == EACCES)
                  ? " (once sandboxed, vnetkit reaches the peer's socket only in the directory of its own, "
                    "and as its --runas user: put it there and let that user write it, or use --no-sandbox)"
                  : "");
  counters_.write_errors.add();
}

bool SocketLink::flush() {
  if (framing_ == Framing::datagram) return flush_datagrams();
  while (out_begin_ < out_end_) {
    const ssize_t n = ::send(sock_.get(), out_.data() + out_begin_, out_end_ - out_begin_, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == ENOBUFS) {
        counters_.write_waits.add();
        return false;
      }
      warn_send_failed(errno);
      closed_ = true;  // a stream cannot skip half a frame
      return false;
    }
    out_begin_ += static_cast<std::size_t>(n);
  }
  out_begin_ = out_end_ = 0;
  return true;
}

bool SocketLink::flush_datagrams() {
  std::array<mmsghdr, kDatagramBatch> msgs{};
  std::array<iovec, kDatagramBatch> iov{};
  while (dgram_sent_ < dgram_count_) {
    const std::size_t n = dgram_count_ - dgram_sent_;
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t slot = dgram_sent_ + k;
      iov[k] = iovec{out_.data() + slot * StreamDeframer::kMaxFrame, dgram_lens_[slot]};
      msgs[k] = mmsghdr{};
      msgs[k].msg_hdr.msg_iov = &iov[k];
      msgs[k].msg_hdr.msg_iovlen = 1;
      if (peer_len_ != 0) {
        msgs[k].msg_hdr.msg_name = &peer_;
        msgs[k].msg_hdr.msg_namelen = peer_len_;
      }
    }
    const int sent = ::sendmmsg(sock_.get(), msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == ENOBUFS) {
        counters_.write_waits.add();  // the rest waits for room
        return false;
      }
      warn_send_failed(errno);
      ++dgram_sent_;  // this datagram is lost, as on a wire; the next may go
      continue;
    }
    dgram_sent_ += static_cast<std::size_t>(sent);
  }
  dgram_sent_ = dgram_count_ = 0;
  return true;
}

bool SocketLink::to_peer(bool backend_ready) {
  if (closed_ || !flush()) return false;  // the peer has not taken what went before yet
  // An unconnected datagram socket learns where to send from the first
  // datagram; until then frames wait in the backend.
  const bool stream = framing_ == Framing::stream;
  if (!stream && !connected_ && peer_len_ == 0) return false;
  constexpr std::size_t kLen = StreamDeframer::kLengthSize;
  for (unsigned i = 0; i < kBudget; ++i, backend_ready = false) {
    if (stream) {
      const std::size_t len = next_frame(std::span(out_).subspan(kLen), backend_ready);
      if (len == 0) return false;
      store_stream_length(std::span(out_).first<kLen>(), len);
      out_begin_ = 0;
      out_end_ = kLen + len;
      counters_.frames_to_peer.add();  // it goes, now or once the socket drains
      counters_.bytes_to_peer.add(len);
      if (!flush()) return false;
      continue;
    }
    // Datagrams are gathered into slots and leave with one sendmmsg().
    const std::size_t slot = dgram_count_;
    const std::size_t len =
        next_frame(std::span(out_).subspan(slot * StreamDeframer::kMaxFrame, StreamDeframer::kMaxFrame), backend_ready);
    if (len == 0) {
      flush();
      return false;
    }
    dgram_lens_[slot] = len;
    ++dgram_count_;
    counters_.frames_to_peer.add();
    counters_.bytes_to_peer.add(len);
    if (dgram_count_ == kDatagramBatch && !flush()) return false;
  }
  return flush();  // the budget is spent: more may be waiting
}

}  // namespace vnk::attach
