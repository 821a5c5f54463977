// The pieces of host -> guest recovery on their own: the RFC 6298 timeout
// estimator and the SACK scoreboard, including blocks a hostile guest sends.
#include <gtest/gtest.h>

#include <array>

#include "usernet/tcp/rtt.hpp"
#include "usernet/tcp/sack_scoreboard.hpp"

namespace vnk::usernet {
namespace {

using packet::SackBlock;

TEST(RttEstimatorTest, StartsAtOneSecondAndFollowsRfc6298) {
  RttEstimator r;
  EXPECT_EQ(r.rto_ms(), RttEstimator::kInitialRtoMs);
  r.sample(400);  // first: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR
  EXPECT_EQ(r.srtt_ms(), 400u);
  EXPECT_EQ(r.rttvar_ms(), 200u);
  EXPECT_EQ(r.rto_ms(), 1200u);
  r.sample(400);  // RTTVAR = 3/4 * 200 + 1/4 * 0 = 150; SRTT stays 400
  EXPECT_EQ(r.rttvar_ms(), 150u);
  EXPECT_EQ(r.rto_ms(), 1000u);
  for (int i = 0; i < 100; ++i) r.sample(0);
  EXPECT_EQ(r.rto_ms(), RttEstimator::kMinRtoMs) << "the floor";
}

TEST(RttEstimatorTest, BacksOffToTheCapAndOnlyASampleEndsTheBackoff) {
  RttEstimator r;
  r.sample(10);
  const auto base = r.rto_ms();
  r.back_off();
  EXPECT_EQ(r.rto_ms(), 2 * base);
  for (int i = 0; i < 40; ++i) r.back_off();
  EXPECT_EQ(r.rto_ms(), RttEstimator::kMaxRtoMs);
  r.start(1000, 0);
  r.cancel();  // Karn: the timed segment was sent again
  r.acked(2000, 50);
  EXPECT_EQ(r.rto_ms(), RttEstimator::kMaxRtoMs) << "no sample from a resent segment";
  r.start(2000, 100);
  r.acked(2000, 150);  // does not cover the timed byte
  EXPECT_EQ(r.backoff(), 17u - 1u);
  r.acked(2001, 160);
  EXPECT_EQ(r.backoff(), 0u);
  EXPECT_LT(r.rto_ms(), RttEstimator::kMaxRtoMs);
}

TEST(RttEstimatorTest, TimesOneSegmentAtATimeAcrossSequenceWrap) {
  RttEstimator r;
  r.start(0xffff'fff0u, 1000);
  r.start(0x10, 1010);  // ignored: one is being timed
  r.acked(0x20, 1080);  // wraps past 2^32
  EXPECT_TRUE(r.sampled());
  EXPECT_EQ(r.srtt_ms(), 80u);
}

TEST(SackScoreboardTest, MergesBlocksAndFindsTheHoles) {
  SackScoreboard b;
  const std::array<SackBlock, 3> blocks{SackBlock{300, 400}, SackBlock{500, 600}, SackBlock{400, 450}};
  EXPECT_EQ(b.add(blocks, 100, 1000, 1000).invalid, 0u);
  ASSERT_EQ(b.ranges().size(), 2u);
  EXPECT_EQ(b.ranges()[0].left, 300u);
  EXPECT_EQ(b.ranges()[0].right, 450u);
  EXPECT_EQ(b.bytes(), 250u);
  auto h = b.next_hole(100);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->left, 100u);
  EXPECT_EQ(h->right, 300u);
  h = b.next_hole(320);  // inside a range: the next hole starts after it
  ASSERT_TRUE(h);
  EXPECT_EQ(h->left, 450u);
  EXPECT_EQ(h->right, 500u);
  EXPECT_FALSE(b.next_hole(600)) << "nothing is known beyond the highest SACKed byte";
  EXPECT_EQ(b.range_end(520), 600u);
  EXPECT_FALSE(b.range_end(460));
  b.advance(520);
  ASSERT_EQ(b.ranges().size(), 1u);
  EXPECT_EQ(b.ranges()[0].left, 520u);
}

TEST(SackScoreboardTest, BlocksOutsideTheDataInFlightAreIgnored) {
  SackScoreboard b;
  const std::array<SackBlock, 4> hostile{SackBlock{50, 150},    // starts below snd_una, ends above
                                         SackBlock{900, 1200},  // ends past the data sent
                                         SackBlock{500, 500},   // empty
                                         SackBlock{700, 600}};  // reversed
  EXPECT_EQ(b.add(hostile, 100, 1000, 1000).invalid, 4u);
  EXPECT_TRUE(b.empty());
  // A D-SACK (RFC 2883): data below the ACK that arrived twice.
  const std::array<SackBlock, 1> dsack{SackBlock{40, 90}};
  const auto d = b.add(dsack, 100, 1000, 1000);
  EXPECT_EQ(d.duplicates, 1u);
  EXPECT_EQ(d.invalid, 0u);
  EXPECT_TRUE(b.empty());
  // Across the 2^32 wrap a valid block is kept.
  const std::array<SackBlock, 1> wrapped{SackBlock{0xffff'ff00u, 0x100}};
  EXPECT_EQ(b.add(wrapped, 0xffff'fe00u, 0x200, 0x200).invalid, 0u);
  EXPECT_EQ(b.bytes(), 0x200u);
}

TEST(SackScoreboardTest, ABlockCoveringOurFinIsKeptForItsData) {
  SackScoreboard b;
  // Data [100, 1000), our FIN at 1000: sent_end 1001.
  const std::array<SackBlock, 2> blocks{SackBlock{800, 1001}, SackBlock{1000, 1001}};
  const auto added = b.add(blocks, 100, 1001, 1000);
  EXPECT_EQ(added.invalid, 0u);
  ASSERT_EQ(b.ranges().size(), 1u);
  EXPECT_EQ(b.ranges()[0].right, 1000u) << "the board holds data only";
  EXPECT_EQ(b.add(std::span(blocks).first(1), 100, 1000, 1000).invalid, 1u) << "before the FIN was sent";
}

TEST(SackScoreboardTest, AFullBoardGivesUpItsHighestRange) {
  SackScoreboard b;
  for (std::uint32_t i = 0; i < SackScoreboard::kMaxRanges + 4; ++i) {
    const std::array<SackBlock, 1> one{SackBlock{1000 + i * 100, 1000 + i * 100 + 10}};
    b.add(one, 0, 100'000, 100'000);
  }
  EXPECT_EQ(b.ranges().size(), SackScoreboard::kMaxRanges);
  EXPECT_EQ(b.ranges().front().left, 1000u);
  const std::array<SackBlock, 1> low{SackBlock{10, 20}};
  b.add(low, 0, 100'000, 100'000);
  EXPECT_EQ(b.ranges().front().left, 10u) << "a hole near the ACK always finds room";
  EXPECT_EQ(b.ranges().size(), SackScoreboard::kMaxRanges);
}

}  // namespace
}  // namespace vnk::usernet
