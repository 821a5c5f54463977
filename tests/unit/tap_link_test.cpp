// TapLink between a NetBackend and a frame fd, driven over a SOCK_SEQPACKET
// socketpair (one frame per datagram, like a TAP fd).
#include "netns/tap_link.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <csignal>
#include <vector>

#include "backend/loopback_backend.hpp"

namespace vnk::netns {
namespace {

using Bytes = std::vector<std::byte>;

class TapLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    link = std::make_unique<TapLink>(UniqueFd(sv[0]), backend, nullptr);
    peer.reset(sv[1]);
  }

  // A virtio-net header with `flags`, then an Ethernet frame of `len` bytes.
  static Bytes framed(std::size_t len, std::uint8_t flags = 0, std::byte fill = std::byte{0x42}) {
    net::NetHeader h;
    h.flags = flags;
    h.num_buffers = 7;
    Bytes b(net::kNetHeaderSize + len, fill);
    const auto raw = h.serialize();
    std::copy(raw.begin(), raw.end(), b.begin());
    return b;
  }

  void put(const Bytes& b) { ASSERT_EQ(::write(peer.get(), b.data(), b.size()), static_cast<ssize_t>(b.size())); }

  std::optional<Bytes> take() {
    Bytes b(net::kNetHeaderSize + net::kMaxFrameSize);
    const ssize_t n = ::read(peer.get(), b.data(), b.size());
    if (n < 0) return std::nullopt;
    b.resize(static_cast<std::size_t>(n));
    return b;
  }

  backend::LoopbackBackend backend;
  std::unique_ptr<TapLink> link;
  UniqueFd peer;
};

TEST_F(TapLinkTest, FramesCrossBothWaysWithTheHeaderStrippedAndRewritten) {
  const Bytes small = framed(60, 0, std::byte{1});
  const Bytes jumbo = framed(65000, 0, std::byte{2});
  put(small);
  put(jumbo);
  EXPECT_FALSE(link->from_tap());  // drained before the budget
  EXPECT_EQ(backend.queued(), 2u);
  EXPECT_FALSE(link->to_tap());
  for (const Bytes* want : {&small, &jumbo}) {
    auto got = take();
    ASSERT_TRUE(got);
    ASSERT_EQ(got->size(), want->size());
    const auto h = net::NetHeader::parse(std::span(*got).first<net::kNetHeaderSize>());
    EXPECT_EQ(h.num_buffers, 0) << "a TAP has no buffers to merge";
    EXPECT_TRUE(std::equal(got->begin() + net::kNetHeaderSize, got->end(), want->begin() + net::kNetHeaderSize));
  }
  EXPECT_FALSE(take());
  EXPECT_EQ(link->counters().frames_from_tap.get(), 2u);
  EXPECT_EQ(link->counters().bytes_from_tap.get(), 65060u);
  EXPECT_EQ(link->counters().frames_to_tap.get(), 2u);
  EXPECT_EQ(link->counters().bytes_to_tap.get(), 65060u);
}

TEST_F(TapLinkTest, ReadsTooShortForAHeaderAndAnEthernetHeaderAreDroppedAndCounted) {
  put(Bytes(5));
  put(framed(13));
  put(framed(14));
  link->from_tap();
  EXPECT_EQ(link->counters().drop_runt.get(), 2u);
  EXPECT_EQ(link->counters().frames_from_tap.get(), 1u);
  EXPECT_EQ(backend.queued(), 1u);
}

TEST_F(TapLinkTest, EachCallStopsAtTheBudgetAndSaysMoreIsWaiting) {
  for (unsigned i = 0; i < TapLink::kBudget + 10; ++i) put(framed(60));
  EXPECT_TRUE(link->from_tap());
  EXPECT_EQ(link->counters().frames_from_tap.get(), TapLink::kBudget);
  EXPECT_FALSE(link->from_tap());
  EXPECT_EQ(link->counters().frames_from_tap.get(), TapLink::kBudget + 10);
  EXPECT_TRUE(link->pending());
  EXPECT_TRUE(link->to_tap());
  EXPECT_FALSE(link->to_tap());
  EXPECT_FALSE(link->pending());
  EXPECT_EQ(link->counters().frames_to_tap.get(), TapLink::kBudget + 10);
}

TEST_F(TapLinkTest, AFailedWriteLosesOnlyThatFrameAndIsCounted) {
  std::signal(SIGPIPE, SIG_IGN);
  put(framed(60));
  put(framed(60));
  link->from_tap();
  peer.reset();  // the TAP went away
  EXPECT_FALSE(link->to_tap());
  EXPECT_EQ(link->counters().write_errors.get(), 2u);
  EXPECT_EQ(link->counters().frames_to_tap.get(), 0u);
  EXPECT_FALSE(link->pending());
}

}  // namespace
}  // namespace vnk::netns
