// Attaching a peer over a plain frame socket: StreamDeframer on its own
// (frames split anywhere across reads, bad lengths), and SocketLink between
// the loopback backend (which sends every frame back) and a socketpair end
// playing the peer -- QEMU stream framing with partial writes and a peer
// that stops reading (backpressure: nothing lost, nothing reordered), a
// malformed length closing the connection, and one frame per datagram on
// a socketpair and on a bound unixgram socket answered at the sender's
// address.
#include "attach/socket_link.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "backend/loopback_backend.hpp"
#include "base/byte_order.hpp"

namespace vnk::attach {
namespace {

using Bytes = std::vector<std::byte>;

Bytes frame(std::size_t len, std::uint8_t seed) {
  Bytes f(len);
  for (std::size_t i = 0; i < len; ++i) f[i] = std::byte(static_cast<std::uint8_t>(seed + i * 7));
  return f;
}
Bytes with_length(const Bytes& f) {
  Bytes out(4);
  store_be<std::uint32_t>(out.data(), static_cast<std::uint32_t>(f.size()));
  out.insert(out.end(), f.begin(), f.end());
  return out;
}

TEST(StreamDeframer, FramesSplitAnywhereAcrossReadsComeOutWhole) {
  Bytes stream;
  std::vector<Bytes> sent;
  for (std::uint8_t i = 0; i < 20; ++i) {
    sent.push_back(frame(14 + i * 331u, i));
    const Bytes w = with_length(sent.back());
    stream.insert(stream.end(), w.begin(), w.end());
  }
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{4}, std::size_t{1000}, stream.size()}) {
    StreamDeframer d;
    std::vector<Bytes> got;
    for (std::size_t at = 0; at < stream.size();) {
      const auto space = d.space();
      const std::size_t n = std::min({chunk, stream.size() - at, space.size()});
      std::memcpy(space.data(), stream.data() + at, n);
      d.commit(n);
      at += n;
      while (auto f = d.next()) got.emplace_back(f->begin(), f->end());
    }
    EXPECT_EQ(got, sent) << "reads of " << chunk;
    EXPECT_EQ(d.buffered(), 0u);
    EXPECT_FALSE(d.error());
  }
}

TEST(StreamDeframer, ALengthOfZeroOrOverTheLargestFrameIsAnErrorForGood) {
  for (std::uint32_t bad : {0u, std::uint32_t{StreamDeframer::kMaxFrame + 1}, 0xffffffffu}) {
    StreamDeframer d;
    Bytes in = with_length(frame(60, 1));
    Bytes b(4);
    store_be<std::uint32_t>(b.data(), bad);
    in.insert(in.end(), b.begin(), b.end());
    const Bytes after = with_length(frame(60, 2));
    in.insert(in.end(), after.begin(), after.end());
    const auto space = d.space();
    std::memcpy(space.data(), in.data(), in.size());
    d.commit(in.size());
    EXPECT_TRUE(d.next()) << "the frame before is whole";
    EXPECT_FALSE(d.next());
    EXPECT_TRUE(d.error());
    EXPECT_EQ(d.bad_length(), bad);
    EXPECT_FALSE(d.next()) << "nothing after an error";
    EXPECT_TRUE(d.space().empty());
  }
  StreamDeframer largest;
  const Bytes big = with_length(frame(StreamDeframer::kMaxFrame, 3));
  for (std::size_t at = 0; at < big.size();) {
    const auto space = largest.space();
    const std::size_t n = std::min(space.size(), big.size() - at);
    std::memcpy(space.data(), big.data() + at, n);
    largest.commit(n);
    at += n;
  }
  auto f = largest.next();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->size(), StreamDeframer::kMaxFrame);
}

bool readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

class SocketLinkTest : public ::testing::Test {
 protected:
  void attach(int type, SocketLink::Framing framing) {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    link = std::make_unique<SocketLink>(UniqueFd(sv[0]), framing, true, backend, nullptr, counters);
    peer.reset(sv[1]);
  }
  // Everything the peer can read now (stream), within `ms`.
  Bytes drain(int ms = 200) {
    Bytes out;
    std::vector<std::byte> buf(1 << 20);
    while (readable(peer.get(), ms)) {
      const ssize_t n = ::recv(peer.get(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n <= 0) break;
      out.insert(out.end(), buf.begin(), buf.begin() + n);
      ms = 20;
    }
    return out;
  }
  void pump() {
    for (int i = 0; i < 1000; ++i) {
      const bool more = link->from_peer();
      const bool out = link->to_peer(true);
      if (!more && !out && !link->pending()) break;
    }
  }

  backend::LoopbackBackend backend;
  SocketLinkCounters counters;
  std::unique_ptr<SocketLink> link;
  UniqueFd peer;
};

TEST_F(SocketLinkTest, StreamFramesGoToTheBackendAndComeBackFramed) {
  attach(SOCK_STREAM, SocketLink::Framing::stream);
  Bytes wire, want;
  for (std::uint8_t i = 0; i < 10; ++i) {
    const Bytes w = with_length(frame(60 + i * 100u, i));
    wire.insert(wire.end(), w.begin(), w.end());
  }
  want = wire;
  // Written in pieces that cut lengths and frames anywhere.
  for (std::size_t at = 0; at < wire.size(); at += 97) {
    const std::size_t n = std::min<std::size_t>(97, wire.size() - at);
    ASSERT_EQ(::send(peer.get(), wire.data() + at, n, 0), static_cast<ssize_t>(n));
    pump();
  }
  EXPECT_EQ(drain(), want) << "the loopback backend's echo, in order, framed the same way";
  EXPECT_EQ(counters.frames_from_peer.get(), 10u);
  EXPECT_EQ(counters.frames_to_peer.get(), 10u);
  EXPECT_FALSE(link->closed());
}

TEST_F(SocketLinkTest, APeerThatStopsReadingHoldsFramesBackAndLosesNone) {
  attach(SOCK_STREAM, SocketLink::Framing::stream);
  const int small = 16384;
  ::setsockopt(link->fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  ::setsockopt(peer.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  Bytes want;
  // 200 frames of 9000 bytes echoed toward a peer that reads nothing yet.
  for (std::uint8_t i = 0; i < 200; ++i) {
    const Bytes w = with_length(frame(9000, i));
    want.insert(want.end(), w.begin(), w.end());
    ASSERT_EQ(::send(peer.get(), w.data(), w.size(), 0), static_cast<ssize_t>(w.size())) << i;
    link->from_peer();
    link->to_peer(true);
  }
  EXPECT_TRUE(link->wants_write()) << "the peer's socket filled up";
  EXPECT_GT(counters.write_waits.get(), 0u);
  // The peer reads; the link writes whenever there is room.
  Bytes got;
  std::vector<std::byte> buf(1 << 16);
  for (int i = 0; i < 100000 && got.size() < want.size(); ++i) {
    const ssize_t n = ::recv(peer.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n > 0) got.insert(got.end(), buf.begin(), buf.begin() + n);
    link->to_peer(false);
  }
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want) << "every frame, whole and in order";
  EXPECT_EQ(counters.write_errors.get(), 0u);
}

TEST_F(SocketLinkTest, ABadLengthClosesTheConnectionAndIsCounted) {
  attach(SOCK_STREAM, SocketLink::Framing::stream);
  Bytes bad(4);
  store_be<std::uint32_t>(bad.data(), 0);
  ASSERT_EQ(::send(peer.get(), bad.data(), bad.size(), 0), 4);
  link->from_peer();
  EXPECT_TRUE(link->closed());
  EXPECT_EQ(counters.bad_length.get(), 1u);
}

TEST_F(SocketLinkTest, AStreamPeerThatHangsUpIsSeen) {
  attach(SOCK_STREAM, SocketLink::Framing::stream);
  peer.reset();
  link->from_peer();
  EXPECT_TRUE(link->closed());
  EXPECT_EQ(counters.disconnects.get(), 1u);
}

TEST_F(SocketLinkTest, OneFramePerDatagramOnASocketpair) {
  for (int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
    attach(type, SocketLink::Framing::datagram);
    const Bytes f = frame(1514, 9), runt = frame(10, 1);
    ASSERT_EQ(::send(peer.get(), f.data(), f.size(), 0), static_cast<ssize_t>(f.size()));
    ASSERT_EQ(::send(peer.get(), runt.data(), runt.size(), 0), static_cast<ssize_t>(runt.size()));
    pump();
    ASSERT_TRUE(readable(peer.get(), 200));
    Bytes back(4096);
    back.resize(static_cast<std::size_t>(::recv(peer.get(), back.data(), back.size(), 0)));
    EXPECT_EQ(back, f);
    EXPECT_FALSE(readable(peer.get(), 20)) << "the runt went nowhere";
    EXPECT_EQ(counters.drop_runt.get(), type == SOCK_DGRAM ? 1u : 2u);  // counters carry over
  }
}

// A datagram peer that does not read fills its queue: the frames the link
// gathered wait (sendmmsg stops at EAGAIN) and go once the peer reads, all
// of them, in order.
TEST_F(SocketLinkTest, DatagramsWaitForAPeerThatStopsReadingAndNoneIsLost) {
  for (int type : {SOCK_DGRAM, SOCK_SEQPACKET}) {
    attach(type, SocketLink::Framing::datagram);
    for (std::uint8_t i = 0; i < 100; ++i) {
      const Bytes f = frame(1000, i);
      ASSERT_EQ(::send(peer.get(), f.data(), f.size(), 0), static_cast<ssize_t>(f.size())) << int{i};
      link->from_peer();
      link->to_peer(true);
    }
    EXPECT_TRUE(link->wants_write()) << "the peer's queue filled up";
    std::vector<Bytes> got;
    Bytes buf(4096);
    for (int spin = 0; spin < 100000 && got.size() < 100; ++spin) {
      const ssize_t n = ::recv(peer.get(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) got.emplace_back(buf.begin(), buf.begin() + n);
      link->to_peer(false);
    }
    ASSERT_EQ(got.size(), 100u);
    for (std::uint8_t i = 0; i < 100; ++i) EXPECT_EQ(got[i], frame(1000, i)) << int{i};
    EXPECT_EQ(counters.write_errors.get(), 0u);
  }
}

TEST_F(SocketLinkTest, ABoundUnixgramSocketAnswersTheAddressADatagramCameFrom) {
  char dir[] = "/tmp/vnk-dgram-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string ours = std::string(dir) + "/vnetkit.sock", theirs = std::string(dir) + "/qemu.sock";
  auto bound = [](const std::string& path) {
    UniqueFd s(::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
    EXPECT_EQ(::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    return std::pair{std::move(s), sa};
  };
  auto [server, server_addr] = bound(ours);
  auto [client, client_addr] = bound(theirs);
  SocketLink l(std::move(server), SocketLink::Framing::datagram, false, backend, nullptr, counters);
  EXPECT_FALSE(l.to_peer(true)) << "nowhere to send before the peer speaks";
  const Bytes f = frame(600, 4);
  ASSERT_EQ(::sendto(client.get(), f.data(), f.size(), 0, reinterpret_cast<sockaddr*>(&server_addr), sizeof server_addr),
            static_cast<ssize_t>(f.size()));
  l.from_peer();
  l.to_peer(true);
  ASSERT_TRUE(readable(client.get(), 200));
  Bytes back(4096);
  back.resize(static_cast<std::size_t>(::recv(client.get(), back.data(), back.size(), 0)));
  EXPECT_EQ(back, f);
  ::unlink(ours.c_str());
  ::unlink(theirs.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace vnk::attach
