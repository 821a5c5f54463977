// DatagramBatch: held datagrams leave in order with their destinations, and
// a socket that refuses them loses each one counted, never more.
#include "usernet/datagram_batch.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>

#include "base/unique_fd.hpp"

namespace vnk::usernet {
namespace {

std::pair<UniqueFd, UniqueFd> dgram_pair() {
  int fds[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, fds), 0);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void add(DatagramBatch& b, int fd, std::string s, bool icmp = false) {
  const iovec iov{s.data(), s.size()};
  ASSERT_TRUE(b.accepts(fd, s.size()));
  b.add(fd, nullptr, icmp, std::span(&iov, 1), s.size());
}

TEST(DatagramBatch, HeldDatagramsLeaveInOrderAndCopiedAtAdd) {
  auto [ours, peer] = dgram_pair();
  DatagramBatch b;
  EXPECT_TRUE(b.empty());
  add(b, ours.get(), "one");
  add(b, ours.get(), "two", /*icmp=*/true);
  add(b, ours.get(), "three");
  EXPECT_EQ(b.fd(), ours.get());
  EXPECT_FALSE(b.accepts(ours.get() + 1, 10)) << "one socket per batch";
  EXPECT_FALSE(b.accepts(ours.get(), DatagramBatch::kMaxBytes + 1)) << "large datagrams are not held";
  const auto o = b.send();
  EXPECT_EQ(o.udp_failed + o.icmp_failed, 0u);
  EXPECT_EQ(o.udp_sent, 2u);
  EXPECT_EQ(o.icmp_sent, 1u);
  EXPECT_TRUE(b.empty());
  char buf[16];
  for (const char* want : {"one", "two", "three"}) {
    const ssize_t n = ::recv(peer.get(), buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), want);
  }
}

TEST(DatagramBatch, ASocketThatRefusesLosesEachDatagramCounted) {
  auto [ours, peer] = dgram_pair();
  peer.reset();  // every send now fails
  DatagramBatch b;
  for (int i = 0; i < 5; ++i) add(b, ours.get(), "lost");
  const auto o = b.send();
  EXPECT_EQ(o.udp_sent, 0u);
  EXPECT_EQ(o.udp_failed, 5u);
  EXPECT_TRUE(b.empty());
}

}  // namespace
}  // namespace vnk::usernet
