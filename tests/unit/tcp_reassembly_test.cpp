// The out-of-order store: what it keeps, what it hands back in order, the
// SACK blocks it reports, and its bounds.
#include "usernet/tcp/reassembly.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vnk::usernet {
namespace {

struct Bytes {
  std::string text;
  iovec iov;
  explicit Bytes(std::string t) : text(std::move(t)), iov{text.data(), text.size()} {}
  std::span<const iovec> span() const { return std::span(&iov, 1); }
};

std::string as_string(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

TEST(ReassemblyQueueTest, HoldsBytesBeyondTheHoleAndHandsThemBackInOrder) {
  ReassemblyBudget budget;
  ReassemblyQueue q;
  const std::uint32_t rcv = 1000;
  EXPECT_EQ(q.insert(rcv, 1010, Bytes("klmno").span(), budget).stored, 5u);
  EXPECT_EQ(q.insert(rcv, 1005, Bytes("fghij").span(), budget).stored, 5u);
  EXPECT_TRUE(q.ready(rcv, budget).empty()) << "bytes 1000..1004 are missing";
  // The hole is filled up to 1005 (elsewhere): the held bytes follow.
  auto r = q.ready(1005, budget);
  EXPECT_EQ(as_string(r), "fghij");
  r = q.ready(1010, budget);
  EXPECT_EQ(as_string(r), "klmno");
  EXPECT_TRUE(q.ready(1015, budget).empty());
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(budget.used, 0u);
}

TEST(ReassemblyQueueTest, OverlapsKeepOnlyNewBytesAndPartlyDeliveredSegmentsResumeMidway) {
  ReassemblyBudget budget;
  ReassemblyQueue q;
  EXPECT_EQ(q.insert(0, 10, Bytes("0123456789").span(), budget).stored, 10u);   // [10, 20)
  EXPECT_EQ(q.insert(0, 15, Bytes("5678901234").span(), budget).stored, 5u);    // [20, 25) new
  EXPECT_EQ(q.insert(0, 5, Bytes("abcdefghijklmnopqrstuvwxyz").span(), budget).stored, 11u);  // [5,10) + [25,31)
  EXPECT_EQ(q.bytes(), 26u);
  EXPECT_EQ(budget.used, 26u);
  // Part of the segment reached the socket through a retransmission: resume at 12.
  auto r = q.ready(12, budget);
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(as_string(r).substr(0, 3), "234");
}

TEST(ReassemblyQueueTest, DataBeforeTheNextByteIsNotHeld) {
  ReassemblyBudget budget;
  ReassemblyQueue q;
  EXPECT_EQ(q.insert(100, 90, Bytes("0123456789").span(), budget).stored, 0u);
  EXPECT_EQ(q.insert(100, 95, Bytes("0123456789").span(), budget).stored, 5u);  // [100, 105)
  EXPECT_EQ(as_string(q.ready(100, budget)), "56789");
}

TEST(ReassemblyQueueTest, SackBlocksPutTheLatestFirstAndMergeNeighbours) {
  ReassemblyBudget budget;
  ReassemblyQueue q;
  q.insert(0, 100, Bytes(std::string(10, 'x')).span(), budget);  // [100, 110)
  q.insert(0, 200, Bytes(std::string(10, 'x')).span(), budget);  // [200, 210)
  q.insert(0, 110, Bytes(std::string(10, 'x')).span(), budget);  // [110, 120): merges with the first
  q.insert(0, 300, Bytes(std::string(10, 'x')).span(), budget);  // [300, 310), the latest
  std::array<packet::SackBlock, packet::kMaxSackBlocks> b{};
  ASSERT_EQ(q.sack_blocks(b), 3u);
  EXPECT_EQ(b[0].left, 300u);
  EXPECT_EQ(b[0].right, 310u);
  EXPECT_EQ(b[1].left, 100u);
  EXPECT_EQ(b[1].right, 120u);
  EXPECT_EQ(b[2].left, 200u);
}

TEST(ReassemblyQueueTest, SequenceNumbersWrapAround) {
  ReassemblyBudget budget;
  ReassemblyQueue q;
  const std::uint32_t rcv = 0xfffffff0u;
  q.insert(rcv, 0xfffffffau, Bytes("abcdefghijklmnop").span(), budget);  // crosses 2^32
  q.insert(rcv, 0xfffffff5u, Bytes("VWXYZ").span(), budget);
  EXPECT_TRUE(q.ready(rcv, budget).empty());
  EXPECT_EQ(as_string(q.ready(0xfffffff5u, budget)), "VWXYZ");
  EXPECT_EQ(as_string(q.ready(0xfffffffau, budget)), "abcdefghijklmnop");
}

TEST(ReassemblyQueueTest, TheGlobalBudgetDropsWhatLiesFurthestAheadFirst) {
  ReassemblyBudget budget{.limit = 30, .used = 0};
  ReassemblyQueue q;
  EXPECT_EQ(q.insert(0, 100, Bytes(std::string(20, 'f')).span(), budget).stored, 20u);
  // Nearer the hole: the far data makes room for it.
  const auto r = q.insert(0, 10, Bytes(std::string(20, 'n')).span(), budget);
  EXPECT_EQ(r.stored, 20u);
  EXPECT_EQ(r.dropped, 20u);
  EXPECT_EQ(budget.used, 20u);
  // Further ahead than what is held and over the budget: refused.
  const auto far = q.insert(0, 500, Bytes(std::string(20, 'z')).span(), budget);
  EXPECT_EQ(far.stored, 0u);
  EXPECT_EQ(far.dropped, 20u);
  q.clear(budget);
  EXPECT_EQ(budget.used, 0u);
}

TEST(ReassemblyQueueTest, APerFlowBoundHoldsWhateverTheGuestSends) {
  ReassemblyBudget budget;
  ReassemblyQueue q;
  const std::string chunk(60000, 'x');
  std::size_t stored = 0;
  for (std::uint32_t i = 0; i < 200; ++i) stored += q.insert(0, 1 + i * 70000, Bytes(chunk).span(), budget).stored;
  EXPECT_LE(q.bytes(), ReassemblyQueue::kMaxFlowBytes);
  EXPECT_EQ(q.bytes(), stored);
  EXPECT_EQ(budget.used, stored);
}

}  // namespace
}  // namespace vnk::usernet
