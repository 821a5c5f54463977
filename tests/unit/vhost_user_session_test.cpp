// The vhost-user session driven by a scripted frontend doing what QEMU 7.2's
// vhost-user-net does at start-up, then traffic through the loopback backend
// with the mock driver's rings in shared memory, then hostile messages.
#include "vhost_user/net_session.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "backend/loopback_backend.hpp"
#include "base/byte_order.hpp"
#include "counter_delta.hpp"
#include "driver_queue.hpp"
#include "net/net_features.hpp"
#include "net_rig.hpp"
#include "virtio/features.hpp"

namespace vnk::vhost_user {
namespace {

using virtio::bit;
constexpr GuestAddress kGpa{0x100000};
constexpr std::uint64_t kSize = 8 << 20;
constexpr std::uint64_t kUva = 0x7f12'0000'0000;  // where the "frontend" has the memory

std::vector<std::byte> u64(std::uint64_t v) {
  std::vector<std::byte> b(8);
  store_le<std::uint64_t>(b.data(), v);
  return b;
}
std::vector<std::byte> state(std::uint32_t i, std::uint32_t n) {
  std::vector<std::byte> b(8);
  store_le<std::uint32_t>(b.data(), i);
  store_le<std::uint32_t>(b.data() + 4, n);
  return b;
}

class Frontend : public ::testing::Test {
 protected:
  Frontend() : session(net::NetConfig{.mac = *net::MacAddress::parse("02:11:22:33:44:55"), .mtu = 1500}, loopback) {
    const RegionSpec spec{kGpa, kSize, kUva};
    mem = std::make_shared<const GuestMemory>(*GuestMemory::create(std::span(&spec, 1)));
  }

  std::expected<std::optional<Reply>, ProtocolError> send(Request r, std::vector<std::byte> payload,
                                                          std::vector<int> fds = {}, bool need_reply = false) {
    Message m;
    m.header = Header{static_cast<std::uint32_t>(r), kVersion | (need_reply ? kFlagNeedReply : 0),
                      static_cast<std::uint32_t>(payload.size())};
    std::copy(payload.begin(), payload.end(), m.storage.begin());
    for (int fd : fds) m.fds[m.fd_count++].reset(::dup(fd));
    return session.handle(m);
  }
  std::uint64_t reply_u64(Request r) {
    auto rep = send(r, {});
    return load_le<std::uint64_t>((*rep)->storage.data());
  }

  // QEMU's vhost_dev_init + vhost_dev_start for one queue pair.
  void start() {
    const std::uint64_t features = reply_u64(Request::get_features);
    ASSERT_TRUE(send(Request::set_features, u64(features)));
    ASSERT_TRUE(send(Request::set_protocol_features, u64(reply_u64(Request::get_protocol_features))));
    ASSERT_TRUE(send(Request::set_owner, {}));
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    backend_req_front = UniqueFd(sv[0]);
    ASSERT_TRUE(send(Request::set_backend_req_fd, {}, {sv[1]}));
    ::close(sv[1]);
    std::vector<std::byte> table(8 + 32);
    store_le<std::uint32_t>(table.data(), 1);
    store_le<std::uint64_t>(table.data() + 8, kGpa.value);
    store_le<std::uint64_t>(table.data() + 16, kSize);
    store_le<std::uint64_t>(table.data() + 24, kUva);
    store_le<std::uint64_t>(table.data() + 32, 0);
    ASSERT_TRUE(send(Request::set_mem_table, table, {mem->regions()[0].mapping->fd()}));
    for (std::uint32_t q = 0; q < 2; ++q) {
      const GuestAddress base{kGpa.value + 0x10000 * (q + 1)};
      auto& dq = q == 0 ? rxq : txq;
      dq.emplace(*mem, base, 256);
      ASSERT_TRUE(send(Request::set_vring_num, state(q, 256)));
      std::vector<std::byte> addr(40);
      store_le<std::uint32_t>(addr.data(), q);
      store_le<std::uint64_t>(addr.data() + 8, dq->desc().value - kGpa.value + kUva);
      store_le<std::uint64_t>(addr.data() + 16, dq->used().value - kGpa.value + kUva);
      store_le<std::uint64_t>(addr.data() + 24, dq->avail().value - kGpa.value + kUva);
      ASSERT_TRUE(send(Request::set_vring_addr, addr));
      ASSERT_TRUE(send(Request::set_vring_base, state(q, 0)));
      kick[q] = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      call[q] = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      ASSERT_TRUE(send(Request::set_vring_kick, u64(q), {kick[q].get()}));
      ASSERT_TRUE(send(Request::set_vring_call, u64(q), {call[q].get()}));
    }
    ASSERT_FALSE(session.running());  // PROTOCOL_FEATURES negotiated: rings wait for ENABLE
    ASSERT_TRUE(send(Request::set_vring_enable, state(0, 1)));
    ASSERT_TRUE(send(Request::set_vring_enable, state(1, 1)));
    ASSERT_TRUE(session.running());
  }

  static std::uint64_t drain(int efd) {
    std::uint64_t v = 0;
    return ::read(efd, &v, sizeof v) == 8 ? v : 0;
  }

  backend::LoopbackBackend loopback;
  NetSession session;
  std::shared_ptr<const GuestMemory> mem;
  std::optional<test::DriverQueue> rxq, txq;
  std::array<UniqueFd, 2> kick, call;
  UniqueFd backend_req_front;
};

TEST_F(Frontend, OffersWhatQemuAndVirtioUmlNeed) {
  const std::uint64_t f = reply_u64(Request::get_features);
  EXPECT_TRUE(f & bit(kFeatureProtocolFeatures));
  EXPECT_TRUE(f & bit(virtio::kFeatureVersion1));
  EXPECT_TRUE(f & bit(virtio::kFeatureRingEventIdx));
  EXPECT_TRUE(f & bit(net::kFeatureMac));
  EXPECT_TRUE(f & bit(net::kFeatureMtu));
  const std::uint64_t pf = reply_u64(Request::get_protocol_features);
  EXPECT_TRUE(pf & bit(protocol_feature::kBackendReq));
  EXPECT_TRUE(pf & bit(protocol_feature::kConfig));
  EXPECT_TRUE(pf & bit(protocol_feature::kReplyAck));
  EXPECT_TRUE(pf & bit(protocol_feature::kMq));
  EXPECT_EQ(reply_u64(Request::get_queue_num), 1u);
}

TEST_F(Frontend, ConfigReadOneSizeAtATimeAsVirtioUmlDoes) {
  for (std::uint32_t size = 1; size <= 6; ++size) {
    std::vector<std::byte> req(12 + size);
    store_le<std::uint32_t>(req.data() + 4, size);
    auto rep = send(Request::get_config, req);
    ASSERT_TRUE(rep && *rep);
    ASSERT_EQ((*rep)->size, 12u + size);
    EXPECT_EQ((*rep)->storage[12], std::byte{0x02});
    constexpr std::array<std::uint8_t, 6> kMac{2, 0x11, 0x22, 0x33, 0x44, 0x55};
    EXPECT_EQ((*rep)->storage[12 + size - 1], std::byte{kMac[size - 1]});
  }
  std::vector<std::byte> status(12 + 2);
  store_le<std::uint32_t>(status.data(), 6);
  store_le<std::uint32_t>(status.data() + 4, 2);
  EXPECT_EQ((*send(Request::get_config, status))->storage[12], std::byte{1});  // link up
}

TEST_F(Frontend, FramesLoopBackThroughSharedMemoryWithCallSignals) {
  start();
  // Driver posts RX buffers and one TX frame in the shared memory.
  std::vector<GuestAddress> rx_bufs;
  for (int i = 0; i < 4; ++i) {
    const GuestAddress b{kGpa.value + 0x100000 + 0x1000 * i};
    const test::Buffer buf{b, 2048, true};
    rxq->add(std::span(&buf, 1));
    rx_bufs.push_back(b);
  }
  const auto frame = test::make_frame(200, 6);
  std::vector<std::byte> wire(12);
  wire.insert(wire.end(), frame.begin(), frame.end());
  const GuestAddress tb{kGpa.value + 0x200000};
  ASSERT_TRUE(mem->write(tb, wire));
  const test::Buffer t{tb, static_cast<std::uint32_t>(wire.size()), false};
  txq->add(std::span(&t, 1));
  std::uint64_t one = 1;
  ASSERT_EQ(::write(kick[1].get(), &one, 8), 8);
  session.on_kick(1);
  EXPECT_EQ(drain(kick[1].get()), 0u);  // the session consumed the kick
  auto used = rxq->pop_used();
  ASSERT_TRUE(used);
  EXPECT_EQ(used->len, 212u);
  std::vector<std::byte> got(200);
  ASSERT_TRUE(mem->read(GuestAddress{rx_bufs[used->id].value + 12}, got));
  EXPECT_EQ(got, frame);
  EXPECT_EQ(drain(call[0].get()), 1u);
  EXPECT_EQ(drain(call[1].get()), 1u);
  EXPECT_EQ(session.net_counters().tx_packets.get(), 1u);

  // GET_VRING_BASE stops the pair and reports where TX got to.
  auto base = send(Request::get_vring_base, state(1, 0));
  ASSERT_TRUE(base && *base);
  EXPECT_EQ(load_le<std::uint32_t>((*base)->storage.data() + 4), 1u);
  EXPECT_FALSE(session.running());
}

// One wake-up does one drain budget per queue and says when more may wait;
// the server serves its other sources (control messages, host sockets,
// signals) before it calls resume(). A guest cannot hold the I/O thread.
TEST_F(Frontend, EachWakeUpDoesABoundedRoundAndSaysWhenMoreWaits) {
  start();
  const auto frame = test::make_frame(60, 1);
  std::vector<std::byte> wire(12);
  wire.insert(wire.end(), frame.begin(), frame.end());
  for (std::uint32_t i = 0; i < net::kDrainBudget; ++i) {
    const GuestAddress tb{kGpa.value + 0x200000 + 0x100 * std::uint64_t{i}};
    ASSERT_TRUE(mem->write(tb, wire));
    const test::Buffer t{tb, static_cast<std::uint32_t>(wire.size()), false};
    txq->add(std::span(&t, 1));
  }
  session.on_kick(1);
  const auto handled = [&] {
    return session.net_counters().tx_packets.get() + session.net_counters().tx_drop_backend.get();
  };
  EXPECT_EQ(handled(), net::kDrainBudget);
  EXPECT_TRUE(session.work_pending()) << "the round stopped at its budget";
  session.resume();
  EXPECT_FALSE(session.work_pending());
  EXPECT_EQ(handled(), net::kDrainBudget);
}

// Busy-polling (serve --poll-us) leaves the driver's notifications off, so
// the driver does not kick for every post while the device looks anyway;
// the ordinary round before the server sleeps turns them back on.
TEST_F(Frontend, BusyPollLeavesNotificationsOffUntilAnOrdinaryRound) {
  start();
  ASSERT_TRUE(session.offered_features() & bit(virtio::kFeatureRingEventIdx));  // start() accepts all
  const auto frame = test::make_frame(60, 2);
  std::vector<std::byte> wire(12);
  wire.insert(wire.end(), frame.begin(), frame.end());
  const GuestAddress tb{kGpa.value + 0x200000};
  ASSERT_TRUE(mem->write(tb, wire));
  const test::Buffer t{tb, static_cast<std::uint32_t>(wire.size()), false};
  txq->add(std::span(&t, 1));
  EXPECT_TRUE(session.poll());
  EXPECT_EQ(session.net_counters().tx_packets.get(), 1u);
  EXPECT_EQ(txq->avail_event(), 0) << "an empty TX ring while polling asks for no kick";
  EXPECT_FALSE(session.poll());
  EXPECT_EQ(txq->avail_event(), 0);
  session.resume();
  EXPECT_EQ(txq->avail_event(), 1) << "the round before sleeping asks for the next kick";
}

TEST_F(Frontend, LinkChangeIsAnnouncedOnTheBackendChannel) {
  start();
  session.set_link_up(false);
  Message m;
  ASSERT_TRUE(read_message(backend_req_front.get(), m));
  EXPECT_EQ(m.header.request, 2u);  // CONFIG_CHANGE_MSG
  std::vector<std::byte> req(12 + 2);
  store_le<std::uint32_t>(req.data(), 6);
  store_le<std::uint32_t>(req.data() + 4, 2);
  EXPECT_EQ((*send(Request::get_config, req))->storage[12], std::byte{0});
}

TEST_F(Frontend, HostileMessagesEndTheSessionOrGetAFailureAck) {
  test::CounterDelta d(session.counters());
  EXPECT_EQ(send(Request::set_vring_num, state(7, 256)).error(), ProtocolError::bad_index);
  EXPECT_EQ(send(Request::set_vring_num, state(0, 100)).error(), ProtocolError::bad_state);
  EXPECT_EQ(send(Request::set_vring_num, {}).error(), ProtocolError::bad_size);
  EXPECT_EQ(send(Request::set_features, u64(bit(net::kFeatureCtrlVq))).error(), ProtocolError::bad_state);
  EXPECT_EQ(send(Request::get_features, {}, {0}).error(), ProtocolError::bad_fd_count);  // fds where none belong
  EXPECT_EQ(send(Request::set_vring_kick, u64(0)).error(), ProtocolError::bad_fd_count);  // fd promised, none sent
  std::vector<std::byte> table(8 + 32);
  store_le<std::uint32_t>(table.data(), 1);
  store_le<std::uint64_t>(table.data() + 16, kSize * 4);  // bigger than the memfd behind it
  EXPECT_EQ(send(Request::set_mem_table, table, {mem->regions()[0].mapping->fd()}).error(), ProtocolError::bad_region);
  EXPECT_EQ(send(Request::set_mem_table, table).error(), ProtocolError::bad_fd_count);
  // An unknown request is logged and skipped.
  auto unknown = send(static_cast<Request>(99), {});
  ASSERT_TRUE(unknown);
  EXPECT_FALSE(*unknown);
  EXPECT_TRUE(d.moved(session.counters(), {{"messages", 9}, {"rejected", 8}, {"unknown_requests", 1}}));
  // With REPLY_ACK negotiated, a refused message is answered with failure.
  ASSERT_TRUE(send(Request::set_protocol_features, u64(bit(protocol_feature::kReplyAck))));
  auto nack = send(Request::set_vring_num, state(9, 256), {}, true);
  ASSERT_TRUE(nack && *nack);
  EXPECT_EQ(load_le<std::uint64_t>((*nack)->storage.data()), 1u);
  auto ack = send(Request::set_owner, {}, {}, true);
  ASSERT_TRUE(ack && *ack);
  EXPECT_EQ(load_le<std::uint64_t>((*ack)->storage.data()), 0u);
}

TEST_F(Frontend, RingAddressesOutsideTheMemoryTableDoNotStart) {
  start();
  ASSERT_TRUE(send(Request::get_vring_base, state(0, 0)));
  std::vector<std::byte> addr(40);
  store_le<std::uint64_t>(addr.data() + 8, 0xdead'0000);  // not a frontend address we were given
  ASSERT_TRUE(send(Request::set_vring_addr, addr));
  const int k = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_TRUE(send(Request::set_vring_kick, u64(0), {k}));
  ::close(k);
  EXPECT_FALSE(session.running());
  EXPECT_GE(session.counters().rejected.get(), 1u);
}

}  // namespace
}  // namespace vnk::vhost_user
