// The split virtqueue and the descriptor-chain walker, driven by the mock
// driver's ring layout without a device on top.
#include "virtio/virtqueue.hpp"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "driver_queue.hpp"
#include "net_rig.hpp"
#include "virtio/chain_iovecs.hpp"

namespace vnk::virtio {
namespace {

using test::Buffer;
using test::DriverQueue;
using test::RawDesc;

class VirtqueueTest : public ::testing::Test {
 protected:
  static constexpr std::uint16_t kSize = 8;
  VirtqueueTest() {
    const RegionSpec spec{test::kGuestBase, 1 << 20, 0};
    mem = std::make_unique<GuestMemory>(*GuestMemory::create(std::span(&spec, 1)));
    drv.emplace(*mem, test::kGuestBase, kSize);
  }
  Virtqueue make(bool event_idx = false, bool indirect = true) {
    QueueConfig cfg{kSize, true, drv->desc(), drv->avail(), drv->used()};
    return *Virtqueue::create(cfg, 256, *mem, event_idx, indirect);
  }
  GuestAddress buf(std::uint64_t off) const { return GuestAddress{test::kGuestBase.value + 0x10000 + off}; }

  std::vector<Descriptor> walk(DescriptorChain& c, std::optional<ChainError>* err = nullptr) {
    std::vector<Descriptor> out;
    for (;;) {
      auto d = c.next();
      if (!d) {
        if (err) *err = d.error();
        break;
      }
      if (!*d) break;
      out.push_back(**d);
    }
    return out;
  }

  std::unique_ptr<GuestMemory> mem;
  std::optional<DriverQueue> drv;
};

TEST_F(VirtqueueTest, CreateValidatesSizeAlignmentAndMapping) {
  QueueConfig ok{kSize, true, drv->desc(), drv->avail(), drv->used()};
  EXPECT_TRUE(Virtqueue::create(ok, 256, *mem, false, false));
  for (int bad : {0, 3, 12, 512}) {
    QueueConfig c = ok;
    c.size = static_cast<std::uint16_t>(bad);
    EXPECT_EQ(Virtqueue::create(c, 256, *mem, false, false).error(), QueueError::bad_size) << bad;
  }
  QueueConfig c = ok;
  c.desc.value += 8;
  EXPECT_EQ(Virtqueue::create(c, 256, *mem, false, false).error(), QueueError::misaligned);
  c = ok;
  c.avail.value += 1;
  EXPECT_EQ(Virtqueue::create(c, 256, *mem, false, false).error(), QueueError::misaligned);
  c = ok;
  c.used.value += 2;
  EXPECT_EQ(Virtqueue::create(c, 256, *mem, false, false).error(), QueueError::misaligned);
  c = ok;
  c.used = GuestAddress{0x1000};
  EXPECT_EQ(Virtqueue::create(c, 256, *mem, false, false).error(), QueueError::ring_unmapped);
  c = ok;
  c.desc = GuestAddress{test::kGuestBase.value + (1 << 20) - 64};  // table runs off the end
  EXPECT_EQ(Virtqueue::create(c, 256, *mem, false, false).error(), QueueError::ring_unmapped);
}

// A used ring laid over an avail ring (or any two rings sharing bytes, in
// one queue or across queues) would let the device's own completions look
// like new work: refused at activation (../shared/findings: a frontend did
// exactly this and pinned the I/O thread).
TEST(RingsOverlapTest, AnyTwoRingsSharingAByteAreRefused) {
  const QueueConfig rx{256, true, GuestAddress{0x10000}, GuestAddress{0x11000}, GuestAddress{0x12000}};
  const QueueConfig tx{256, true, GuestAddress{0x20000}, GuestAddress{0x21000}, GuestAddress{0x22000}};
  EXPECT_FALSE(rings_overlap(std::array{rx, tx}));
  QueueConfig bad = rx;
  bad.used = bad.avail;  // the finding
  EXPECT_TRUE(rings_overlap(std::array{bad, tx}));
  bad = rx;
  bad.avail = GuestAddress{rx.desc.value + 16 * 256 - 2};  // the last two bytes of the descriptor table
  EXPECT_TRUE(rings_overlap(std::array{bad, tx}));
  bad = tx;
  bad.desc = rx.desc;  // a descriptor table shared by both queues
  EXPECT_TRUE(rings_overlap(std::array{rx, bad}));
  bad = tx;
  bad.avail = GuestAddress{rx.used.value + 8};  // TX avail inside RX used
  EXPECT_TRUE(rings_overlap(std::array{rx, bad}));
  bad = rx;
  bad.avail = GuestAddress{rx.desc.value + 16 * 256};  // adjacent, not overlapping
  EXPECT_FALSE(rings_overlap(std::array{bad, tx}));
}

TEST_F(VirtqueueTest, PopsChainsInOrderAndPublishesUsed) {
  Virtqueue q = make();
  const std::array a{Buffer{buf(0), 100, false}, Buffer{buf(100), 50, true}};
  const std::array b{Buffer{buf(200), 10, false}};
  const auto ha = drv->add(a);
  const auto hb = drv->add(b);
  auto c1 = q.pop(*mem);
  ASSERT_TRUE(c1 && *c1);
  EXPECT_EQ((*c1)->head(), *ha);
  auto d = walk(**c1);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].len, 100u);
  EXPECT_FALSE(d[0].write_only);
  EXPECT_TRUE(d[1].write_only);
  EXPECT_EQ((*c1)->total_len(), 150u);
  auto c2 = q.pop(*mem);
  ASSERT_TRUE(c2 && *c2);
  EXPECT_EQ((*c2)->head(), *hb);
  EXPECT_FALSE(*q.pop(*mem));  // empty

  ASSERT_TRUE(q.add_used(*mem, *ha, 42));
  EXPECT_FALSE(drv->pop_used()) << "unseen until published";
  ASSERT_TRUE(q.publish_used(*mem));
  auto u = drv->pop_used();
  ASSERT_TRUE(u);
  EXPECT_EQ(u->id, *ha);
  EXPECT_EQ(u->len, 42u);
  EXPECT_EQ(drv->used_idx(), 1);
}

TEST_F(VirtqueueTest, UndoPopGivesTheChainBack) {
  Virtqueue q = make();
  const std::array a{Buffer{buf(0), 100, true}};
  drv->add(a);
  auto c = q.pop(*mem);
  ASSERT_TRUE(c && *c);
  q.undo_pops();
  auto again = q.pop(*mem);
  ASSERT_TRUE(again && *again);
  EXPECT_EQ((*again)->head(), (*c)->head());
}

TEST_F(VirtqueueTest, AvailIndexJumpingPastQueueSizeIsStructural) {
  Virtqueue q = make();
  drv->set_avail_idx(kSize + 1);
  EXPECT_EQ(q.pop(*mem).error(), QueueError::avail_idx_jump);
  // Exactly `size` ahead is legal (a full ring).
  drv->set_avail_idx(kSize);
  for (std::uint16_t i = 0; i < kSize; ++i) drv->set_avail_slot(i, i);
  EXPECT_TRUE(q.pop(*mem));
}

// avail->idx is read once per batch of announced chains, not per pop: the
// chains already announced are taken even if the index then turns hostile,
// and the jump is seen (and is structural) at the next read.
TEST_F(VirtqueueTest, AvailIndexIsReadAgainWhenTheAnnouncedChainsAreTaken) {
  Virtqueue q = make();
  drv->write_desc(0, RawDesc{buf(0).value, 10, 0, 0});
  drv->set_avail_slot(0, 0);
  drv->set_avail_slot(1, 0);
  drv->set_avail_idx(2);
  ASSERT_TRUE(*q.pop(*mem));
  drv->set_avail_idx(2 + kSize + 1);
  EXPECT_TRUE(*q.pop(*mem)) << "the second announced chain";
  EXPECT_EQ(q.pop(*mem).error(), QueueError::avail_idx_jump);
}

TEST_F(VirtqueueTest, AvailIndexWrapsAt65536) {
  Virtqueue q = make();
  ASSERT_TRUE(q.resume(*mem, RingIndex(0xffff)));
  drv->write_desc(0, RawDesc{buf(0).value, 10, 0, 0});
  drv->set_avail_slot(0xffff, 0);
  drv->set_avail_slot(0, 0);
  drv->set_avail_idx(1);  // two chains: slots 0xffff and 0x0000
  EXPECT_TRUE(*q.pop(*mem));
  EXPECT_TRUE(*q.pop(*mem));
  EXPECT_FALSE(*q.pop(*mem));
}

TEST_F(VirtqueueTest, HeadIndexOutOfRangeIsStructural) {
  Virtqueue q = make();
  drv->push_head(kSize);
  EXPECT_EQ(q.pop(*mem).error(), QueueError::head_out_of_range);
}

TEST_F(VirtqueueTest, LoopingChainStopsAtTheTtl) {
  Virtqueue q = make();
  drv->write_desc(0, RawDesc{buf(0).value, 1, test::kDescNext, 1});
  drv->write_desc(1, RawDesc{buf(0).value, 1, test::kDescNext, 0});  // 0 -> 1 -> 0 -> ...
  drv->push_head(0);
  auto c = q.pop(*mem);
  std::optional<ChainError> err;
  auto d = walk(**c, &err);
  EXPECT_EQ(err, ChainError::too_long);
  EXPECT_EQ(d.size(), kSize);  // exactly queue-size descriptors before the TTL hit
}

TEST_F(VirtqueueTest, NextIndexOutOfRangeIsAChainError) {
  Virtqueue q = make();
  drv->write_desc(0, RawDesc{buf(0).value, 1, test::kDescNext, 200});
  drv->push_head(0);
  auto c = q.pop(*mem);
  std::optional<ChainError> err;
  walk(**c, &err);
  EXPECT_EQ(err, ChainError::next_out_of_range);
}

TEST_F(VirtqueueTest, IndirectTableIsWalked) {
  Virtqueue q = make();
  const std::array bufs{Buffer{buf(0), 12, false}, Buffer{buf(12), 100, false}, Buffer{buf(200), 300, true}};
  drv->add(bufs, buf(0x8000));
  auto c = q.pop(*mem);
  auto d = walk(**c);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[1].len, 100u);
  EXPECT_TRUE(d[2].write_only);
}

TEST_F(VirtqueueTest, IndirectRulesAreEnforced) {
  struct Case {
    RawDesc head;
    RawDesc in_table;
    ChainError want;
    bool indirect_negotiated = true;
  };
  const std::uint64_t table = buf(0x8000).value;
  const std::vector<Case> cases{
      {{table, 16, test::kDescIndirect, 0}, {table, 16, test::kDescIndirect, 0}, ChainError::indirect_nested},
      {{table, 20, test::kDescIndirect, 0}, {buf(0).value, 4, 0, 0}, ChainError::indirect_bad_length},
      {{table, 0, test::kDescIndirect, 0}, {buf(0).value, 4, 0, 0}, ChainError::indirect_bad_length},
      {{table, 16, test::kDescIndirect | test::kDescNext, 1}, {buf(0).value, 4, 0, 0}, ChainError::indirect_with_next},
      {{0x10, 16, test::kDescIndirect, 0}, {buf(0).value, 4, 0, 0}, ChainError::indirect_unmapped},
      {{table, 16, test::kDescIndirect, 0}, {buf(0).value, 4, 0, 0}, ChainError::indirect_not_offered, false},
      {{table, 32, test::kDescIndirect, 0}, {buf(0).value, 4, test::kDescNext, 5}, ChainError::next_out_of_range},
  };
  for (const Case& k : cases) {
    Virtqueue q = make(false, k.indirect_negotiated);
    drv.emplace(*mem, test::kGuestBase, kSize);
    q = make(false, k.indirect_negotiated);
    drv->write_desc(0, k.head);
    drv->write_desc_at(GuestAddress{table}, 0, k.in_table);
    drv->push_head(0);
    auto c = q.pop(*mem);
    ASSERT_TRUE(c && *c);
    std::optional<ChainError> err;
    walk(**c, &err);
    EXPECT_EQ(err, k.want) << to_string(k.want);
  }
}

TEST_F(VirtqueueTest, LengthSumPastFourGigabytesIsRefused) {
  Virtqueue q = make();
  drv->write_desc(0, RawDesc{buf(0).value, 0xffff'fff0, test::kDescNext, 1});
  drv->write_desc(1, RawDesc{buf(0).value, 0x20, 0, 0});
  drv->push_head(0);
  auto c = q.pop(*mem);
  std::optional<ChainError> err;
  walk(**c, &err);
  EXPECT_EQ(err, ChainError::length_overflow);
}

TEST_F(VirtqueueTest, GatherChecksDirectionMappingAndSize) {
  std::array<iovec, 16> iov{};
  {
    Virtqueue q = make();
    const std::array a{Buffer{buf(0), 10, false}, Buffer{buf(10), 10, true}};
    drv->add(a);
    auto c = q.pop(*mem);
    EXPECT_EQ(gather_chain(*mem, **c, Direction::device_reads, iov, 1000).error(), GatherError::wrong_direction);
  }
  {
    drv.emplace(*mem, test::kGuestBase, kSize);
    Virtqueue q = make();
    const std::array a{Buffer{GuestAddress{0x10}, 10, false}};
    drv->add(a);
    auto c = q.pop(*mem);
    EXPECT_EQ(gather_chain(*mem, **c, Direction::device_reads, iov, 1000).error(), GatherError::unmapped);
  }
  {
    drv.emplace(*mem, test::kGuestBase, kSize);
    Virtqueue q = make();
    const std::array a{Buffer{buf(0), 600, false}, Buffer{buf(600), 600, false}};
    drv->add(a);
    auto c = q.pop(*mem);
    EXPECT_EQ(gather_chain(*mem, **c, Direction::device_reads, iov, 1000).error(), GatherError::too_large);
  }
  {
    drv.emplace(*mem, test::kGuestBase, kSize);
    Virtqueue q = make();
    const std::array a{Buffer{buf(0), 600, true}, Buffer{buf(600), 300, true}};
    drv->add(a);
    auto c = q.pop(*mem);
    auto g = gather_chain(*mem, **c, Direction::device_writes, iov, 1000);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->bytes, 900u);
    EXPECT_EQ(g->iov.size(), 2u);
  }
}

TEST_F(VirtqueueTest, EventIdxSuppressesInterruptsUntilUsedEventIsPassed) {
  Virtqueue q = make(/*event_idx=*/true);
  const std::array a{Buffer{buf(0), 10, true}};
  for (int i = 0; i < 4; ++i) drv->add(a);
  auto complete_next = [&] {
    auto c = q.pop(*mem);
    ASSERT_TRUE(c && *c);
    const std::uint16_t head = (*c)->head();
    ASSERT_TRUE(q.add_used(*mem, head, 0));
    ASSERT_TRUE(q.publish_used(*mem));
  };
  // The first interrupt is always raised (nothing signalled yet).
  complete_next();
  EXPECT_TRUE(q.needs_interrupt(*mem));
  // Driver: "interrupt me once used idx passes 2" (used_event = 2).
  drv->set_used_event(2);
  complete_next();  // used idx 2: event 2 not passed yet
  EXPECT_FALSE(q.needs_interrupt(*mem));
  complete_next();  // used idx 3: crossed 2
  EXPECT_TRUE(q.needs_interrupt(*mem));
}

TEST_F(VirtqueueTest, NoInterruptFlagIsHonouredWithoutEventIdx) {
  Virtqueue q = make(false);
  drv->set_avail_flags(Virtqueue::kAvailFlagNoInterrupt);
  EXPECT_FALSE(q.needs_interrupt(*mem));
  drv->set_avail_flags(0);
  EXPECT_TRUE(q.needs_interrupt(*mem));
}

TEST_F(VirtqueueTest, EnableNotificationPublishesAvailEventAndSeesLateChains) {
  Virtqueue q = make(true);
  const std::array a{Buffer{buf(0), 10, true}};
  drv->add(a);
  ASSERT_TRUE(*q.pop(*mem));
  EXPECT_FALSE(q.enable_notification(*mem));
  EXPECT_EQ(drv->avail_event(), 1);
  drv->add(a);  // posted after the device looked: must be reported
  EXPECT_TRUE(q.enable_notification(*mem));
}

TEST_F(VirtqueueTest, WithoutEventIdxBusyPollingTurnsNotificationsOffAndBack) {
  Virtqueue q = make(false);
  EXPECT_FALSE(q.enable_notification(*mem)) << "never turned off";
  EXPECT_EQ(drv->used_flags(), 0);
  q.disable_notification(*mem);
  EXPECT_EQ(drv->used_flags(), Virtqueue::kUsedFlagNoNotify);
  const std::array a{Buffer{buf(0), 10, true}};
  drv->add(a);  // posted while notifications were off: reported on the way back
  EXPECT_TRUE(q.enable_notification(*mem));
  EXPECT_EQ(drv->used_flags(), 0);
  // A ring taken over from another server starts with the flag unknown.
  q.disable_notification(*mem);
  ASSERT_TRUE(q.resume(*mem, RingIndex(0)));
  EXPECT_TRUE(q.enable_notification(*mem));
  EXPECT_EQ(drv->used_flags(), 0);
}

TEST_F(VirtqueueTest, PoisonReportsOnlyTheFirstTransition) {
  Virtqueue q = make();
  EXPECT_TRUE(q.poison());
  EXPECT_FALSE(q.poison());
  EXPECT_TRUE(q.poisoned());
}

}  // namespace
}  // namespace vnk::virtio
