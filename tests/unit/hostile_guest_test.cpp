// The hostile-guest catalogue. Each case plays a broken or malicious driver
// and checks: no crash, no hang (every popped chain is completed), the right
// counter and nothing else, the right status bits.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <vector>

#include "memory/iovec_ops.hpp"

#include "counter_delta.hpp"
#include "net_rig.hpp"

namespace vnk::net {
namespace {

using namespace virtio::status;
using test::Buffer;
using test::CounterDelta;
using test::kDescIndirect;
using test::kDescNext;
using test::kDescWrite;
using test::make_frame;
using test::NetRig;
using test::RawDesc;
namespace mmio = virtio::mmio;

constexpr std::uint32_t kAll = kAcknowledge | kDriver | kFeaturesOk | kDriverOk;

class HostileGuest : public ::testing::Test {
 protected:
  HostileGuest() {
    rig.probe();
    rig.post_rx(8, 2048);
    frame_buf = rig.alloc(4096, 64);
    auto f = make_frame(100);
    std::vector<std::byte> with_hdr(12);
    with_hdr.insert(with_hdr.end(), f.begin(), f.end());
    rig.write_guest(frame_buf, with_hdr);
  }
  // Publishes raw descriptor 0 (and friends) as a TX chain and kicks.
  void kick_raw_tx() {
    rig.txq().push_head(0);
    rig.kick_tx();
  }
  // The TX chain came back completed with length 0: the guest is not stuck.
  void expect_tx_completed() {
    auto u = rig.txq().pop_used();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->id, 0u);
    EXPECT_EQ(u->len, 0u);
  }
  void expect_device_still_works() {
    const std::uint64_t before = rig.counters().tx_packets.get();
    rig.send(make_frame(64, 5));
    auto got = rig.take_rx();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].data, make_frame(64, 5));
    EXPECT_EQ(rig.counters().tx_packets.get() - before, 1u);
  }

  NetRig rig;
  GuestAddress frame_buf;
};

TEST_F(HostileGuest, LoopingChainIsCompletedAndCounted) {
  rig.txq().write_desc(0, RawDesc{frame_buf.value, 12, kDescNext, 1});
  rig.txq().write_desc(1, RawDesc{frame_buf.value + 12, 100, kDescNext, 0});
  CounterDelta d(rig.counters());
  kick_raw_tx();
  expect_tx_completed();
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_drop_malformed_chain", 1}, {"tx_interrupts", 1}}));
  EXPECT_EQ(rig.status(), kAll);
}

TEST_F(HostileGuest, NextIndexBeyondQueueSizeIsCompletedAndCounted) {
  rig.txq().write_desc(0, RawDesc{frame_buf.value, 12, kDescNext, 4000});
  CounterDelta d(rig.counters());
  kick_raw_tx();
  expect_tx_completed();
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_drop_malformed_chain", 1}, {"tx_interrupts", 1}}));
}

TEST_F(HostileGuest, NestedIndirectIsCompletedAndCounted) {
  const GuestAddress table = rig.alloc(64, 16);
  rig.txq().write_desc(0, RawDesc{table.value, 32, kDescIndirect, 0});
  rig.txq().write_desc_at(table, 0, RawDesc{frame_buf.value, 12, kDescNext, 1});
  rig.txq().write_desc_at(table, 1, RawDesc{table.value, 32, kDescIndirect, 0});
  CounterDelta d(rig.counters());
  kick_raw_tx();
  expect_tx_completed();
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_drop_malformed_chain", 1}, {"tx_interrupts", 1}}));
}

TEST_F(HostileGuest, IndirectWithoutTheFeatureIsCompletedAndCounted) {
  NetRig plain;
  plain.probe(plain.device_features() & ~virtio::bit(virtio::kFeatureRingIndirectDesc));
  CounterDelta d(plain.counters());
  plain.send(make_frame(100), {.indirect = true});
  EXPECT_EQ(plain.reap_tx(), 1u);
  EXPECT_TRUE(d.moved(plain.counters(), {{"tx_drop_malformed_chain", 1}, {"tx_interrupts", 1}}));
}

TEST_F(HostileGuest, AvailIndexJumpPoisonsTxOnlyWithOneConfigInterrupt) {
  CounterDelta d(rig.counters());
  const int irqs = rig.irqs;
  rig.txq().set_avail_idx(static_cast<std::uint16_t>(rig.txq().avail_idx() + 300));
  rig.kick_tx();
  EXPECT_EQ(rig.status(), kAll | kNeedsReset);
  EXPECT_EQ(rig.read32(mmio::kInterruptStatus), mmio::kIntConfig);
  EXPECT_EQ(rig.irqs - irqs, 1);
  // Re-kicking a poisoned queue: no new counter, no new interrupt.
  rig.kick_tx();
  rig.kick_tx();
  EXPECT_EQ(rig.irqs - irqs, 1);
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_poisoned", 1}}));
  // RX is a different queue and still delivers what the backend has.
  rig.loopback.transmit(TxFrame{NetHeader{}, {}, 0, {}});
  rig.kick_rx();
  EXPECT_EQ(rig.take_rx().size(), 1u);
}

TEST_F(HostileGuest, OnlyAResetClearsPoisonAndCountersSurviveIt) {
  rig.txq().set_avail_idx(static_cast<std::uint16_t>(rig.txq().avail_idx() + 300));
  rig.kick_tx();
  ASSERT_TRUE(rig.status() & kNeedsReset);
  rig.write32(mmio::kStatus, kAll | kNeedsReset);  // echoing status back does not clear it
  EXPECT_TRUE(rig.status() & kNeedsReset);
  rig.probe();  // writes 0 first: the reset
  rig.post_rx(4, 2048);
  EXPECT_EQ(rig.status(), kAll);
  EXPECT_EQ(rig.counters().tx_poisoned.get(), 1u);
  rig.send(make_frame(64, 5));
  EXPECT_EQ(rig.take_rx().size(), 1u);
}

TEST_F(HostileGuest, AvailIndexJumpOnRxPoisonsRxAndTxKeepsCompleting) {
  CounterDelta d(rig.counters());
  rig.rxq().set_avail_idx(static_cast<std::uint16_t>(rig.rxq().avail_idx() + 1000));
  rig.send(make_frame(64));
  EXPECT_TRUE(rig.status() & kNeedsReset);
  EXPECT_EQ(rig.reap_tx(), 1u);  // the TX chain still completed
  rig.send(make_frame(64));
  EXPECT_EQ(rig.reap_tx(), 1u);
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_packets", 2}, {"tx_bytes", 128}, {"rx_poisoned", 1},
                                       {"tx_interrupts", 2}}));
}

TEST_F(HostileGuest, HeadIndexBeyondQueueSizePoisons) {
  CounterDelta d(rig.counters());
  rig.txq().push_head(256);
  rig.kick_tx();
  EXPECT_TRUE(rig.status() & kNeedsReset);
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_poisoned", 1}}));
}

TEST_F(HostileGuest, UnmappedHeaderAddressIsCompletedAndCounted) {
  rig.txq().write_desc(0, RawDesc{0x1000, 12, kDescNext, 1});
  rig.txq().write_desc(1, RawDesc{frame_buf.value + 12, 100, 0, 0});
  CounterDelta d(rig.counters());
  kick_raw_tx();
  expect_tx_completed();
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_drop_unmapped", 1}, {"tx_interrupts", 1}}));
}

TEST_F(HostileGuest, UnmappedDataAddressIsCompletedAndCounted) {
  rig.txq().write_desc(0, RawDesc{frame_buf.value, 12, kDescNext, 1});
  rig.txq().write_desc(1, RawDesc{0xffff'ffff'ffff'ff00, 0x200, 0, 0});  // also wraps past 2^64
  CounterDelta d(rig.counters());
  kick_raw_tx();
  expect_tx_completed();
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_drop_unmapped", 1}, {"tx_interrupts", 1}}));
}

TEST_F(HostileGuest, UnmappedRxBufferIsCompletedEmptyAndTheFrameWaits) {
  NetRig r2;
  r2.probe();
  const Buffer bad{GuestAddress{0x2000}, 2048, true};
  r2.rxq().add(std::span(&bad, 1));
  r2.post_rx(1, 2048);
  CounterDelta d(r2.counters());
  r2.send(make_frame(64));
  auto got = r2.take_rx();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].used_len, 0u);
  EXPECT_EQ(got[1].data, make_frame(64));
  EXPECT_TRUE(d.moved(r2.counters(), {{"tx_packets", 1}, {"tx_bytes", 64}, {"rx_packets", 1}, {"rx_bytes", 64},
                                      {"rx_drop_unmapped", 1}, {"tx_interrupts", 1}, {"rx_interrupts", 1}}));
}

TEST_F(HostileGuest, UnmappedUsedRingIsCountedWithoutPoison) {
  // A frontend can swap the memory table under a live queue (vhost-user
  // SET_MEM_TABLE). Map the same memfd again with a hole where TX's used
  // ring sits.
  const auto& region = rig.memory->regions()[0];
  const std::uint64_t used_off = rig.txq().used().value - test::kGuestBase.value;
  const std::uint64_t hole = 2056;  // the 256-entry used ring: 6 + 8 * 256 bytes, rounded to 8
  const std::array specs{
      FdRegionSpec{region.mapping->fd(), test::kGuestBase, used_off, 0, 0},
      FdRegionSpec{region.mapping->fd(), GuestAddress{rig.txq().used().value + hole},
                   test::kGuestSize - used_off - hole, 0, used_off + hole}};
  auto holed = GuestMemory::from_fds(specs);
  ASSERT_TRUE(holed);
  rig.device.queue_pair()->set_memory(std::make_shared<const GuestMemory>(std::move(*holed)));
  CounterDelta d(rig.counters());
  rig.send(make_frame(64));
  EXPECT_EQ(rig.status(), kAll);  // no poison: the used ring may come back
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_packets", 1}, {"tx_bytes", 64}, {"tx_add_used_failures", 1},
                                       {"rx_packets", 1}, {"rx_bytes", 64}, {"rx_interrupts", 1}}));
}

TEST_F(HostileGuest, UnmappedOrMisalignedRingsRefuseActivation) {
  for (std::uint64_t used : {std::uint64_t{0x1000}, rig.txq().used().value + 2}) {
    NetRig r2;
    r2.probe_until_queues(~0ull, 256);
    r2.write32(mmio::kQueueSel, 1);
    r2.write32(mmio::kQueueUsedLow, static_cast<std::uint32_t>(used));
    r2.write32(mmio::kQueueUsedHigh, static_cast<std::uint32_t>(used >> 32));
    r2.write32(mmio::kStatus, kAll);
    EXPECT_TRUE(r2.status() & kNeedsReset);
    EXPECT_EQ(r2.transport.counters().activation_failed.get(), 1u);
    r2.kick_tx();  // nothing to process, nothing crashes
    EXPECT_EQ(r2.counters().tx_packets.get(), 0u);
  }
}

TEST_F(HostileGuest, OversizeFrameIsDroppedNotTruncated) {
  CounterDelta d(rig.counters());
  rig.send(make_frame(kMaxFrameSize + 1), {.chunk = 8192});
  EXPECT_EQ(rig.reap_tx(), 1u);
  EXPECT_EQ(rig.take_rx().size(), 0u);
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_drop_oversize", 1}, {"tx_interrupts", 1}}));
}

TEST_F(HostileGuest, HugeDescriptorLengthCostsNothing) {
  rig.txq().write_desc(0, RawDesc{frame_buf.value, 0xffff'ffff, 0, 0});
  CounterDelta d(rig.counters());
  kick_raw_tx();
  expect_tx_completed();
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_drop_oversize", 1}, {"tx_interrupts", 1}}));
}

TEST_F(HostileGuest, WriteOnlyDescriptorInTxIsCompletedAndCounted) {
  rig.txq().write_desc(0, RawDesc{frame_buf.value, 12, kDescNext, 1});
  rig.txq().write_desc(1, RawDesc{frame_buf.value + 12, 100, kDescWrite, 0});
  CounterDelta d(rig.counters());
  kick_raw_tx();
  expect_tx_completed();
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_drop_wrong_direction", 1}, {"tx_interrupts", 1}}));
}

TEST_F(HostileGuest, ReadOnlyDescriptorInRxIsCompletedEmpty) {
  NetRig r2;
  r2.probe();
  const GuestAddress b = r2.alloc(2048);
  const Buffer ro{b, 2048, false};
  r2.rxq().add(std::span(&ro, 1));
  CounterDelta d(r2.counters());
  r2.send(make_frame(64));
  auto got = r2.take_rx();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].used_len, 0u);
  EXPECT_TRUE(d.moved(r2.counters(), {{"tx_packets", 1}, {"tx_bytes", 64}, {"rx_drop_wrong_direction", 1},
                                      {"rx_no_buffer", 1}, {"tx_interrupts", 1}, {"rx_interrupts", 1}}));
}

TEST_F(HostileGuest, ShortHeaderIsCompletedAndCounted) {
  rig.txq().write_desc(0, RawDesc{frame_buf.value, 8, 0, 0});
  CounterDelta d(rig.counters());
  kick_raw_tx();
  expect_tx_completed();
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_drop_short_header", 1}, {"tx_interrupts", 1}}));
}

TEST_F(HostileGuest, QueueNotifyBeforeDriverOkIsIgnored) {
  NetRig r2;
  r2.probe_until_queues(~0ull, 256);
  r2.queue_tx(make_frame(64));
  CounterDelta d(r2.counters());
  CounterDelta t(r2.transport.counters());
  r2.kick_tx();
  EXPECT_TRUE(d.moved(r2.counters(), {}));
  EXPECT_TRUE(t.moved(r2.transport.counters(), {{"notify_before_driver_ok", 1}}));
  EXPECT_EQ(r2.txq().used_idx(), 0);
}

TEST_F(HostileGuest, FeatureViolationsFailNegotiation) {
  NetRig r2;
  EXPECT_TRUE(r2.probe(~0ull, 256, /*force_features=*/true) & kFailed);
  NetRig r3;
  EXPECT_TRUE(r3.probe(r3.device_features() & ~virtio::bit(virtio::kFeatureVersion1)) & kFailed);
  EXPECT_FALSE(r3.device.active());
  EXPECT_EQ(r2.transport.counters().features_rejected.get() + r3.transport.counters().features_rejected.get(), 2u);
}

TEST_F(HostileGuest, ResetMidTrafficThenFreshDriverWorks) {
  for (int i = 0; i < 5; ++i) rig.queue_tx(make_frame(100));
  rig.write32(mmio::kStatus, 0);  // driver vanished with chains in flight
  rig.probe();
  rig.post_rx(4, 2048);
  expect_device_still_works();
}

// Time of check to time of use: another vCPU rewrites the frame's headers in
// guest memory while the device is handling it -- here, the interceptor
// itself does, the moment it is asked. Whatever reaches the backend must be
// what the interceptor saw: the headers come from the TX engine's one copy.
class RewritesGuestMemory final : public FrameInterceptor {
 public:
  RewritesGuestMemory(NetRig*& rig, std::array<std::byte, 4> from, std::array<std::byte, 4> to)
      : rig_(rig), from_(from), to_(to) {}
  bool intercept_tx(const TxFrame& frame) override {
    seen = {frame.head.begin() + 30, frame.head.begin() + 34};
    // Find the frame's destination address in guest memory and change it.
    std::vector<std::byte> all(test::kGuestSize);
    EXPECT_TRUE(rig_->memory->read(test::kGuestBase, all));
    for (std::size_t i = 0; i + 4 <= all.size(); ++i) {
      if (std::equal(from_.begin(), from_.end(), all.begin() + static_cast<std::ptrdiff_t>(i))) {
        rig_->write_guest(GuestAddress{test::kGuestBase.value + i}, to_);
        ++rewritten;
      }
    }
    return false;
  }
  RxResult receive(std::span<const iovec>) override { return {}; }
  [[nodiscard]] bool rx_pending() const override { return false; }

  std::vector<std::byte> seen;
  int rewritten = 0;

 private:
  NetRig*& rig_;
  std::array<std::byte, 4> from_, to_;
};

class RecordsHeaders final : public NetBackend {
 public:
  TxResult transmit(const TxFrame& frame) override {
    std::array<std::byte, 4> dst{};
    iov_read(frame.data, 30, dst);  // as a backend would parse it, from the frame's spans
    got.assign(dst.begin(), dst.end());
    return TxResult::sent;
  }
  RxResult receive(std::span<const iovec>) override { return {}; }
  [[nodiscard]] bool rx_pending() const override { return false; }
  [[nodiscard]] std::string_view name() const override { return "records"; }
  std::vector<std::byte> got;
};

TEST(HostileGuestRace, HeadersRewrittenAfterTheInterceptorLookedDoNotReachTheBackend) {
  const std::array<std::byte, 4> guest_dst{std::byte{198}, std::byte{51}, std::byte{100}, std::byte{77}};
  const std::array<std::byte, 4> imds{std::byte{169}, std::byte{254}, std::byte{169}, std::byte{254}};
  NetRig* rig_ptr = nullptr;
  RewritesGuestMemory interceptor(rig_ptr, guest_dst, imds);
  RecordsHeaders backend;
  NetRig rig(test::RigOptions{{}, &backend, &interceptor});
  rig_ptr = &rig;
  rig.probe();
  auto frame = make_frame(600, 9);
  std::copy(guest_dst.begin(), guest_dst.end(), frame.begin() + 30);  // IPv4 destination's offset
  ASSERT_TRUE(rig.send(frame, test::TxLayout{.header_separate = true, .split_header_at = 0, .chunk = 100}));
  EXPECT_GE(interceptor.rewritten, 1) << "the guest's buffer really changed under the device";
  EXPECT_EQ(interceptor.seen, std::vector<std::byte>(guest_dst.begin(), guest_dst.end()));
  EXPECT_EQ(backend.got, interceptor.seen) << "the backend acts on what the interceptor saw";
}

}  // namespace
}  // namespace vnk::net
