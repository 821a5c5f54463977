// Backends on their own, and the socketpair backend behind the device with a
// real peer socket.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/loopback_backend.hpp"
#include "backend/socketpair_backend.hpp"
#include "counter_delta.hpp"
#include "memory/iovec_ops.hpp"
#include "net_rig.hpp"

namespace vnk::backend {
namespace {

using test::CounterDelta;
using test::make_frame;

net::TxFrame as_frame(std::vector<std::byte>& bytes, iovec& iov) {
  static const net::NetHeader kHeader{};
  iov = iovec{bytes.data(), bytes.size()};
  return net::TxFrame{kHeader, std::span<const iovec>(&iov, 1), bytes.size(), std::span(bytes).first(std::min(bytes.size(), net::kTxHeadBytes))};
}

TEST(LoopbackBackend, BoundedRingDropsWhenFull) {
  LoopbackBackend lb(2);
  auto f = make_frame(60);
  iovec iov{};
  EXPECT_EQ(lb.transmit(as_frame(f, iov)), net::TxResult::sent);
  EXPECT_EQ(lb.transmit(as_frame(f, iov)), net::TxResult::sent);
  CounterDelta d(lb.counters());
  EXPECT_EQ(lb.transmit(as_frame(f, iov)), net::TxResult::dropped);
  EXPECT_TRUE(d.moved(lb.counters(), {{"drops_ring_full", 1}}));
  std::vector<std::byte> out(100);
  iovec o{out.data(), out.size()};
  auto r = lb.receive(std::span(&o, 1));
  EXPECT_EQ(r.status, net::RxStatus::frame);
  EXPECT_EQ(r.frame_len, 60u);
  EXPECT_EQ(std::vector<std::byte>(out.begin(), out.begin() + 60), f);
  EXPECT_TRUE(lb.rx_pending());
  lb.receive(std::span(&o, 1));
  EXPECT_FALSE(lb.rx_pending());
  EXPECT_EQ(lb.receive(std::span(&o, 1)).status, net::RxStatus::empty);
}

TEST(LoopbackBackend, DeviceDropsCountedWhenGuestPostsNoRxBuffers) {
  LoopbackBackend lb(4);
  test::NetRig rig({.backend = &lb});
  rig.probe();
  for (int i = 0; i < 6; ++i) rig.send(make_frame(60));
  EXPECT_EQ(lb.counters().drops_ring_full.get(), 2u);
  EXPECT_EQ(rig.counters().tx_drop_backend.get(), 2u);
  EXPECT_EQ(rig.counters().tx_packets.get(), 4u);
}

class SocketpairTest : public ::testing::Test {
 protected:
  SocketpairTest() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_DGRAM, 0, fds) != 0) throw std::runtime_error("socketpair");
    peer = UniqueFd(fds[1]);
    auto b = SocketpairBackend::create(UniqueFd(fds[0]));
    if (!b) throw std::runtime_error(b.error());
    backend = std::move(*b);
  }
  UniqueFd peer;
  std::unique_ptr<SocketpairBackend> backend;
};

TEST_F(SocketpairTest, RejectsAStreamSocket) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ::close(fds[1]);
  auto b = SocketpairBackend::create(UniqueFd(fds[0]));
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().find("SOCK_DGRAM"), std::string::npos);
  EXPECT_FALSE(SocketpairBackend::create(UniqueFd(::dup(0))));
}

TEST_F(SocketpairTest, GuestFramesBecomeDatagramsAndDatagramsBecomeGuestFrames) {
  test::NetRig rig({.backend = backend.get()});
  rig.probe();
  rig.post_rx(4, 2048);
  // guest -> peer: one datagram per frame, no virtio header
  const auto out = make_frame(1514, 4);
  rig.send(out, {.chunk = 500});
  std::vector<std::byte> got(4096);
  const ssize_t n = ::recv(peer.get(), got.data(), got.size(), MSG_DONTWAIT);
  ASSERT_EQ(n, 1514);
  got.resize(1514);
  EXPECT_EQ(got, out);
  // peer -> guest
  const auto in = make_frame(300, 8);
  ASSERT_EQ(::send(peer.get(), in.data(), in.size(), 0), 300);
  rig.device.backend_ready();
  auto frames = rig.take_rx();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].data, in);
  EXPECT_EQ(frames[0].header.num_buffers, 1);
  // Nothing more to read: the buffer stays posted for the next datagram.
  rig.device.backend_ready();
  EXPECT_EQ(rig.take_rx().size(), 0u);
}

TEST_F(SocketpairTest, OversizeDatagramIsDeliveredTruncatedAndRuntsDropped) {
  net::NetConfig one_buffer_per_frame;
  one_buffer_per_frame.mergeable_rx = false;
  test::NetRig rig({.config = one_buffer_per_frame, .backend = backend.get()});
  rig.probe();
  rig.post_rx(2, 12 + 200);
  const auto runt = make_frame(6);
  ASSERT_EQ(::send(peer.get(), runt.data(), runt.size(), 0), 6);
  const auto big = make_frame(1000, 1);
  ASSERT_EQ(::send(peer.get(), big.data(), big.size(), 0), 1000);
  CounterDelta d(rig.counters());
  rig.device.backend_ready();
  auto frames = rig.take_rx();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].data, std::vector<std::byte>(big.begin(), big.begin() + 200));
  EXPECT_EQ(backend->counters().rx_runts.get(), 1u);
  EXPECT_TRUE(d.moved(rig.counters(), {{"rx_packets", 1}, {"rx_bytes", 200}, {"rx_truncated", 1},
                                       {"rx_interrupts", 1}}));
}

TEST_F(SocketpairTest, FullSocketDropsAndCountsInsteadOfBlocking) {
  test::NetRig rig({.backend = backend.get()});
  rig.probe();
  const auto f = make_frame(65000);
  std::uint64_t sent = 0;
  for (int i = 0; i < 200; ++i) {  // far past any socket buffer; the peer never reads
    rig.send(f, {.chunk = 16384});
    rig.reap_tx();
    sent = rig.counters().tx_packets.get();
  }
  EXPECT_GT(backend->counters().tx_would_block.get(), 0u);
  EXPECT_EQ(sent + rig.counters().tx_drop_backend.get(), 200u);
}

TEST_F(SocketpairTest, ClosedPeerIsAnErrorNotACrash) {
  test::NetRig rig({.backend = backend.get()});
  rig.probe();
  peer.reset();
  rig.send(make_frame(100));
  EXPECT_EQ(rig.counters().tx_drop_backend.get(), 1u);
  EXPECT_EQ(backend->counters().tx_errors.get(), 1u);
  EXPECT_EQ(rig.reap_tx(), 1u);
}

}  // namespace
}  // namespace vnk::backend
