// vhost-user framing: decoding payloads, reading messages with fds from a
// socket, and refusing malformed ones without leaking descriptors.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "base/byte_order.hpp"
#include "vhost_user/channel.hpp"

namespace vnk::vhost_user {
namespace {

std::size_t open_fds() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

struct Pair {
  Pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) throw std::runtime_error("socketpair");
    front = UniqueFd(fds[0]);
    back = UniqueFd(fds[1]);
  }
  UniqueFd front, back;
};

std::vector<std::byte> le32s(std::initializer_list<std::uint32_t> vs) {
  std::vector<std::byte> out(vs.size() * 4);
  std::size_t i = 0;
  for (auto v : vs) store_le<std::uint32_t>(out.data() + 4 * i++, v);
  return out;
}

TEST(VhostUserProtocol, DecodersCheckSizes) {
  const auto state = le32s({1, 256});
  EXPECT_EQ(decode_vring_state(state)->num, 256u);
  EXPECT_EQ(decode_vring_state(std::span(state).first(7)).error(), ProtocolError::bad_size);
  std::vector<std::byte> addr(40);
  store_le<std::uint32_t>(addr.data(), 1);
  store_le<std::uint64_t>(addr.data() + 8, 0x1000);   // desc
  store_le<std::uint64_t>(addr.data() + 16, 0x3000);  // used
  store_le<std::uint64_t>(addr.data() + 24, 0x2000);  // avail
  auto a = decode_vring_addr(addr);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->desc, 0x1000u);
  EXPECT_EQ(a->used, 0x3000u);
  EXPECT_EQ(a->avail, 0x2000u);
  addr.push_back(std::byte{0});
  EXPECT_FALSE(decode_vring_addr(addr));
}

TEST(VhostUserProtocol, MemTableRejectsZeroTooManyAndShortTables) {
  std::vector<std::byte> t(8 + 32);
  store_le<std::uint32_t>(t.data(), 1);
  store_le<std::uint64_t>(t.data() + 8, 0x0);        // gpa
  store_le<std::uint64_t>(t.data() + 16, 0x100000);  // size
  store_le<std::uint64_t>(t.data() + 24, 0x7f00000); // uva
  auto m = decode_mem_table(t);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->regions[0].memory_size, 0x100000u);
  store_le<std::uint32_t>(t.data(), 0);
  EXPECT_EQ(decode_mem_table(t).error(), ProtocolError::bad_region);
  store_le<std::uint32_t>(t.data(), 9);
  EXPECT_EQ(decode_mem_table(t).error(), ProtocolError::bad_region);
  store_le<std::uint32_t>(t.data(), 2);  // claims two regions, carries one
  EXPECT_EQ(decode_mem_table(t).error(), ProtocolError::bad_size);
}

TEST(VhostUserProtocol, ConfigPayloadMustMatchItsSize) {
  auto c = le32s({0, 6, 0});
  c.resize(12 + 6);
  EXPECT_EQ(decode_config(c)->size, 6u);
  auto big = le32s({0, 300, 0});
  big.resize(12 + 300);
  EXPECT_EQ(decode_config(big).error(), ProtocolError::bad_size);
  auto lying = le32s({0, 6, 0});
  EXPECT_EQ(decode_config(lying).error(), ProtocolError::bad_size);
}

TEST(VhostUserChannel, MessageWithFdsRoundTrips) {
  Pair p;
  const int efd = ::eventfd(0, EFD_CLOEXEC);
  const std::array<std::byte, 8> payload{std::byte{1}};
  ASSERT_TRUE(write_message(p.front.get(), Header{12, kVersion, 0}, payload, std::span(&efd, 1)));
  ::close(efd);
  Message m;
  ASSERT_TRUE(read_message(p.back.get(), m));
  EXPECT_EQ(m.request(), Request::set_vring_kick);
  EXPECT_EQ(m.payload().size(), 8u);
  ASSERT_EQ(m.fd_count, 1u);
  UniqueFd got = m.take_fd();
  EXPECT_TRUE(got.valid());
  std::uint64_t one = 1;
  EXPECT_EQ(::write(got.get(), &one, sizeof one), 8);  // it is the same eventfd
}

TEST(VhostUserChannel, RepliesCarryTheReplyFlag) {
  Pair p;
  const auto payload = le32s({7, 0});
  ASSERT_TRUE(write_reply(p.back.get(), 1, payload));
  Message m;
  ASSERT_TRUE(read_message(p.front.get(), m));
  EXPECT_EQ(m.header.flags, kVersion | kFlagReply);
  EXPECT_EQ(m.header.size, 8u);
}

TEST(VhostUserChannel, MalformedMessagesAreRefusedAndTheirFdsClosed) {
  const std::size_t before = open_fds();
  {
    Pair p;
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    // Wrong version bits.
    ASSERT_TRUE(write_message(p.front.get(), Header{12, 0x2, 0}, {}, std::span(&efd, 1)));
    Message m;
    EXPECT_EQ(read_message(p.back.get(), m).error(), ProtocolError::bad_version);
    // Payload larger than any request needs.
    auto hdr = le32s({5, kVersion, 100000});
    ASSERT_EQ(::send(p.front.get(), hdr.data(), hdr.size(), 0), 12);
    EXPECT_EQ(read_message(p.back.get(), m).error(), ProtocolError::bad_size);
    ::close(efd);
  }
  EXPECT_EQ(open_fds(), before);
}

TEST(VhostUserChannel, TooManyFdsAreRefusedAndClosed) {
  const std::size_t before = open_fds();
  {
    Pair p;
    std::vector<int> many;
    for (int i = 0; i < 12; ++i) many.push_back(::eventfd(0, EFD_CLOEXEC));
    // Bypass write_message's own limit to play a hostile frontend.
    std::array<std::byte, 12> raw{};
    auto h = le32s({5, kVersion, 0});
    std::copy(h.begin(), h.end(), raw.begin());
    iovec iov{raw.data(), raw.size()};
    alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int) * 12)> control{};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * 12);
    std::memcpy(CMSG_DATA(c), many.data(), sizeof(int) * 12);
    ASSERT_EQ(::sendmsg(p.front.get(), &msg, 0), 12);
    for (int fd : many) ::close(fd);
    Message m;
    EXPECT_EQ(read_message(p.back.get(), m).error(), ProtocolError::bad_fd_count);
  }
  EXPECT_EQ(open_fds(), before);
}

TEST(VhostUserChannel, PeerClosingMidHeaderIsAnIoError) {
  Pair p;
  const std::array<std::byte, 5> partial{};
  ASSERT_EQ(::send(p.front.get(), partial.data(), partial.size(), 0), 5);
  p.front.reset();
  Message m;
  EXPECT_EQ(read_message(p.back.get(), m).error(), ProtocolError::io);
  EXPECT_EQ(read_message(p.back.get(), m).error(), ProtocolError::io);
}

}  // namespace
}  // namespace vnk::vhost_user
