// The switch's per-port queue: frames of any size packed into one byte
// buffer with their headers, in order, bounded in bytes and in frames,
// wrapping around the buffer's end.
#include "backend/frame_queue.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <vector>

namespace vnk::backend {
namespace {

using Bytes = std::vector<std::byte>;

bool push(FrameQueue& q, std::size_t len, std::uint8_t tag, std::uint16_t gso = 0) {
  auto room = q.reserve(len);
  if (room.empty()) return false;
  std::memset(room.data(), tag, len);
  net::NetHeader h;
  h.gso_size = gso;
  q.commit(len, h);
  return true;
}

std::pair<Bytes, net::NetHeader> pop(FrameQueue& q) {
  Bytes buf(70000);
  const iovec v{buf.data(), buf.size()};
  auto r = q.pop_into(std::span(&v, 1));
  if (r.status != net::RxStatus::frame) return {};
  buf.resize(r.written);
  return {buf, r.header};
}

TEST(FrameQueue, FramesOfAnySizeComeOutInOrderWithTheirHeaders) {
  FrameQueue q(10000);
  ASSERT_TRUE(push(q, 60, 1, 11));
  ASSERT_TRUE(push(q, 4000, 2, 22));
  ASSERT_TRUE(push(q, 1514, 3, 33));
  EXPECT_EQ(q.front_length(), 60u);
  for (auto [len, tag] : {std::pair{60u, 1}, {4000u, 2}, {1514u, 3}}) {
    auto [f, h] = pop(q);
    ASSERT_EQ(f.size(), len);
    EXPECT_EQ(f.front(), std::byte(tag));
    EXPECT_EQ(f.back(), std::byte(tag));
    EXPECT_EQ(h.gso_size, tag * 11);
  }
  EXPECT_TRUE(q.empty());
}

TEST(FrameQueue, BytesBoundItAndFreedRoomIsReusedAcrossTheEnd) {
  FrameQueue q(10000);
  ASSERT_TRUE(push(q, 4000, 1));
  ASSERT_TRUE(push(q, 4000, 2));
  EXPECT_FALSE(push(q, 4000, 3));  // 2000 bytes left at the end, none at the start
  pop(q);                           // the start frees up
  ASSERT_TRUE(push(q, 3000, 3));    // wraps to offset 0
  EXPECT_FALSE(push(q, 1001, 4));   // would reach the oldest frame
  ASSERT_TRUE(push(q, 900, 4));
  std::deque<int> order;
  while (!q.empty()) order.push_back(static_cast<int>(pop(q).first.front()));
  EXPECT_EQ(order, (std::deque<int>{2, 3, 4}));
  // Empty again: the whole buffer is free.
  EXPECT_TRUE(push(q, 10000, 5));
  EXPECT_FALSE(push(q, 1, 6));
}

TEST(FrameQueue, FramesBoundItToo) {
  FrameQueue q(1 << 20);
  std::size_t n = 0;
  while (push(q, 60, 1)) ++n;
  EXPECT_EQ(n, FrameQueue::kMaxFrames);
}

TEST(FrameQueue, AChurningQueueNeverLosesOrMixesFrames) {
  FrameQueue q(50000);
  std::deque<std::pair<std::size_t, std::uint8_t>> model;
  std::uint32_t seed = 7;
  for (int i = 0; i < 20000; ++i) {
    seed = seed * 1103515245 + 12345;
    if ((seed >> 16) % 3 != 0) {
      const std::size_t len = 1 + (seed >> 8) % 9000;
      const auto tag = static_cast<std::uint8_t>(i);
      if (push(q, len, tag)) model.emplace_back(len, tag);
    } else if (!model.empty()) {
      auto [f, h] = pop(q);
      ASSERT_EQ(f.size(), model.front().first);
      ASSERT_EQ(f.front(), std::byte(model.front().second));
      ASSERT_EQ(f.back(), std::byte(model.front().second));
      model.pop_front();
    }
  }
  EXPECT_EQ(q.size(), model.size());
}

}  // namespace
}  // namespace vnk::backend
