// The flow table every usernet protocol keeps its flows in: keys of either
// family, generations that make stale epoll tags harmless, the order of use
// for eviction, and remote-port probing for forwarded connections.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "base/unique_fd.hpp"
#include "usernet/flow_table.hpp"

namespace vnk::usernet {
namespace {

using packet::Ipv4Address;

struct TestFlow : FlowHeader {
  int payload = 0;
};

FlowKey key(std::uint16_t guest_port, std::uint16_t remote_port = 80) {
  return FlowKey{6, Ipv4Address::of(10, 0, 2, 15), guest_port, Ipv4Address::of(10, 0, 2, 2), remote_port};
}

TEST(FlowTableTest, Ipv4IsHeldIpv4MappedInSixteenBytes) {
  const auto a = IpAddress::v4(Ipv4Address::of(192, 0, 2, 7));
  EXPECT_TRUE(a.is_v4());
  EXPECT_EQ(a.ipv4(), Ipv4Address::of(192, 0, 2, 7));
  EXPECT_EQ(a.to_string(), "192.0.2.7");
  IpAddress v6;
  v6.bytes[0] = 0xfd;
  v6.bytes[15] = 1;
  EXPECT_FALSE(v6.is_v4());
  EXPECT_EQ(v6.to_string(), "fd00::1");
  FlowKey k6 = key(1000);
  k6.guest = v6;
  EXPECT_EQ(k6.to_string(), "[fd00::1]:1000 > 10.0.2.2:80");
  EXPECT_NE(k6, key(1000));
}

TEST(FlowTableTest, AClosedSlotIsReusedUnderANewGenerationSoOldTagsAreStale) {
  FlowTable<TestFlow> t(TagKind::tcp);
  const auto s = t.open(key(1000));
  const auto tag = t.tag(s);
  EXPECT_EQ(tag_kind(tag), TagKind::tcp);
  EXPECT_EQ(t.at(tag_slot(tag), tag_gen(tag)), &t[s]);
  t.close(s);
  EXPECT_FALSE(t.find(key(1000)));
  const auto again = t.open(key(2000));
  EXPECT_EQ(again, s) << "the slot is reused";
  EXPECT_EQ(t.at(tag_slot(tag), tag_gen(tag)), nullptr) << "the old tag names a flow that is gone";
  EXPECT_EQ(t.at(99, 1), nullptr) << "a slot never used";
  EXPECT_EQ(t[s].payload, 0) << "the record was reset";
}

TEST(FlowTableTest, TheLeastRecentlyUsedIndexedFlowIsEvictedFirst) {
  FlowTable<TestFlow> t(TagKind::datagram);
  const auto listener = t.open(key(53, 0), false);  // not indexed: never a candidate
  const auto a = t.open(key(1));
  const auto b = t.open(key(2));
  const auto c = t.open(key(3));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.least_recent(), a);
  t.touch(a);
  EXPECT_EQ(t.least_recent(), b);
  t.close(b);
  EXPECT_EQ(t.least_recent(), c);
  t.touch(listener);
  EXPECT_EQ(t.least_recent(), c);
  t.close(c);
  t.close(a);
  EXPECT_FALSE(t.least_recent());
}

TEST(FlowTableTest, RemotePortProbingSkipsTakenPortsAndFindsTheWantedFlow) {
  FlowTable<TestFlow> t(TagKind::tcp);
  const auto taken = t.open(key(1000, 80));
  const auto p = t.probe_remote_port(key(1000, 80), [](std::uint32_t) { return false; });
  ASSERT_TRUE(p);
  EXPECT_EQ(p->key.remote_port, 49152) << "a port below 1024 moves to 49152";
  EXPECT_FALSE(p->existing);
  const auto mine = t.probe_remote_port(key(1000, 80), [&](std::uint32_t s) { return s == taken; });
  ASSERT_TRUE(mine && mine->existing);
  EXPECT_EQ(*mine->existing, taken);
  for (std::uint16_t i = 0; i < FlowTable<TestFlow>::kProbeLimit; ++i) t.open(key(7, static_cast<std::uint16_t>(49152 + i)));
  EXPECT_FALSE(t.probe_remote_port(key(7, 49152), [](std::uint32_t) { return false; })) << "bounded";
}

TEST(FlowTableTest, ClosingAFlowClosesItsRecordsSockets) {
  struct WithFd : FlowHeader {
    UniqueFd fd;
  };
  FlowTable<WithFd> t(TagKind::tcp);
  const auto s = t.open(key(1));
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  t[s].fd = UniqueFd(sv[0]);
  t.close(s);
  char c = 0;
  EXPECT_EQ(::send(sv[1], &c, 1, MSG_NOSIGNAL), -1) << "the other end is closed";
  ::close(sv[1]);
}

}  // namespace
}  // namespace vnk::usernet
