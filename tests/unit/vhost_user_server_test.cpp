// The server's connection handling over a real Unix socket: a reply goes
// back on the socket, a malformed frontend is dropped, the next frontend is
// served, and no descriptor outlives a connection.
#include "vhost_user/server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

#include "backend/loopback_backend.hpp"
#include "base/byte_order.hpp"
#include "vhost_user/channel.hpp"
#include "base/unix_socket.hpp"

namespace vnk::vhost_user {
namespace {

int open_fd_count() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
  ::closedir(d);
  return n;
}

UniqueFd connect_to(const std::string& path) {
  for (int i = 0; i < 200; ++i) {
    auto fd = try_connect_unix(path);
    if (fd && fd->valid()) return std::move(*fd);
    ::usleep(5000);
  }
  return UniqueFd{};
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vnk-server-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    path = dir + "/vu.sock";
  }
  void TearDown() override { ::rmdir(dir.c_str()); }
  std::string dir, path;
};

TEST_F(ServerTest, RepliesThenServesTheNextFrontendAfterAMalformedOne) {
  const int fds_before = open_fd_count();
  {
    backend::LoopbackBackend loopback;
    ServerOptions opts;
    opts.socket_path = path;
    opts.max_connections = 3;
    Server server(opts, loopback);
    ASSERT_TRUE(server.open());
    std::thread io([&] { EXPECT_TRUE(server.run()); });

    // 1: a well-behaved frontend asks for the features and leaves.
    {
      UniqueFd s = connect_to(path);
      ASSERT_TRUE(s.valid());
      ASSERT_TRUE(write_message(s.get(), Header{static_cast<std::uint32_t>(Request::get_features), kVersion, 0}, {}));
      Message reply;
      ASSERT_TRUE(read_message(s.get(), reply));
      EXPECT_EQ(reply.request(), Request::get_features);
      EXPECT_EQ(reply.header.flags & kFlagReply, kFlagReply);
      ASSERT_EQ(reply.header.size, 8u);
      const std::uint64_t features = load_le<std::uint64_t>(reply.storage.data());
      EXPECT_NE(features & (1ull << kFeatureProtocolFeatures), 0u);
    }
    // 2: a frontend that breaks the protocol (version 0) is disconnected.
    {
      UniqueFd s = connect_to(path);
      ASSERT_TRUE(s.valid());
      const std::uint32_t bad[3] = {1, 0, 0};
      ASSERT_EQ(::write(s.get(), bad, sizeof bad), static_cast<ssize_t>(sizeof bad));
      char b;
      EXPECT_EQ(::read(s.get(), &b, 1), 0) << "expected EOF from the server";
    }
    // 3: a frontend that sends half a header and hangs up.
    {
      UniqueFd s = connect_to(path);
      ASSERT_TRUE(s.valid());
      const std::uint32_t half = 1;
      ASSERT_EQ(::write(s.get(), &half, sizeof half), static_cast<ssize_t>(sizeof half));
    }
    io.join();
    EXPECT_EQ(server.counters().connections.get(), 3u);
    EXPECT_EQ(server.counters().disconnects_error.get(), 1u);
    EXPECT_EQ(server.counters().disconnects_clean.get(), 2u);
    EXPECT_EQ(server.stats().session.messages.get(), 1u);
  }
  // The listening socket file is removed and no descriptor is left open.
  EXPECT_NE(::access(path.c_str(), F_OK), 0);
  EXPECT_EQ(open_fd_count(), fds_before);
}

// --guests 2: two frontends are served at the same time, each a device of
// its own (its MAC is the configured one plus its place); a third waits
// for nothing -- it is closed at once -- and once both leave the server
// ends (max_connections) with no descriptor left open.
TEST_F(ServerTest, SeveralFrontendsAtOnceEachItsOwnDevice) {
  const int fds_before = open_fd_count();
  {
    backend::LoopbackBackend loopback;
    ServerOptions opts;
    opts.socket_path = path;
    opts.max_connections = 2;
    opts.guests = 2;
    Server server(opts, loopback);
    ASSERT_TRUE(server.open());
    ASSERT_NE(server.virtual_switch(), nullptr);
    std::thread io([&] { EXPECT_TRUE(server.run()); });
    const auto config_mac = [](int fd) {
      // GET_CONFIG for the 6-byte MAC at offset 0 (needs no feature).
      std::array<std::byte, 12 + 6> payload{};
      store_le<std::uint32_t>(payload.data() + 4, 6);
      EXPECT_TRUE(write_message(fd, Header{static_cast<std::uint32_t>(Request::get_config), kVersion, 18}, payload));
      Message reply;
      EXPECT_TRUE(read_message(fd, reply));
      return MacAddress::load(reply.storage.data() + 12);
    };
    UniqueFd a = connect_to(path), b = connect_to(path);
    ASSERT_TRUE(a.valid() && b.valid());
    // Both answer, interleaved: neither waits for the other to leave.
    const MacAddress mac_a = config_mac(a.get());
    const MacAddress mac_b = config_mac(b.get());
    EXPECT_NE(mac_a, mac_b);
    EXPECT_EQ(mac_a.octets[5] + 1, mac_b.octets[5]);
    EXPECT_EQ(config_mac(a.get()), mac_a);
    // A third is closed at once.
    UniqueFd c = connect_to(path);
    ASSERT_TRUE(c.valid());
    char byte;
    EXPECT_EQ(::read(c.get(), &byte, 1), 0);
    EXPECT_EQ(server.counters().refused_full.get(), 1u);
    a.reset();
    b.reset();
    io.join();
    EXPECT_EQ(server.counters().connections.get(), 2u);
    EXPECT_EQ(server.counters().disconnects_clean.get(), 2u);
  }
  EXPECT_EQ(open_fd_count(), fds_before);
}

TEST_F(ServerTest, AFrontendThatStallsMidMessageIsDropped) {
  backend::LoopbackBackend loopback;
  ServerOptions opts;
  opts.socket_path = path;
  opts.max_connections = 2;
  opts.io_timeout = std::chrono::milliseconds(100);
  Server server(opts, loopback);
  ASSERT_TRUE(server.open());
  std::thread io([&] { EXPECT_TRUE(server.run()); });
  {
    // Half a header, then silence with the connection open.
    UniqueFd s = connect_to(path);
    const std::uint32_t half = 1;
    ASSERT_EQ(::write(s.get(), &half, sizeof half), static_cast<ssize_t>(sizeof half));
    char b;
    EXPECT_EQ(::read(s.get(), &b, 1), 0) << "the server must hang up on a stalled frontend";
  }
  {
    // The server is free for the next one.
    UniqueFd s = connect_to(path);
    ASSERT_TRUE(write_message(s.get(), Header{static_cast<std::uint32_t>(Request::get_queue_num), kVersion, 0}, {}));
    Message reply;
    ASSERT_TRUE(read_message(s.get(), reply));
    EXPECT_EQ(load_le<std::uint64_t>(reply.storage.data()), 1u);
  }
  io.join();
  EXPECT_EQ(server.counters().connections.get(), 2u);
}

TEST_F(ServerTest, RefusesToReplaceAFileThatIsNotASocket) {
  const std::string file = dir + "/not-a-socket";
  UniqueFd f(::open(file.c_str(), O_CREAT | O_WRONLY, 0600));
  ASSERT_TRUE(f.valid());
  auto l = listen_unix(file);
  ASSERT_FALSE(l);
  EXPECT_NE(l.error().find("not a socket"), std::string::npos);
  EXPECT_EQ(::access(file.c_str(), F_OK), 0) << "the file must not be deleted";
  ::unlink(file.c_str());
}

TEST_F(ServerTest, RefusesASocketPathInUseAndReplacesAStaleOne) {
  auto first = listen_unix(path);
  ASSERT_TRUE(first);
  auto second = listen_unix(path);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().find("in use"), std::string::npos);
  first->reset();  // closed without unlinking: a stale socket file remains
  auto third = listen_unix(path);
  EXPECT_TRUE(third) << (third ? "" : third.error());
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace vnk::vhost_user
