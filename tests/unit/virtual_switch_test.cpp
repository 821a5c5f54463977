// Several guests on one network: the VirtualSwitch between ports (each a
// guest's attachment) and one uplink backend, played here by a fake that
// records what it is given and hands out queued frames. Unicast between
// guests at L2, broadcast flooding, uplink frames reaching the guest they
// are addressed to whichever port pulls them, isolation, MAC ownership,
// and a flooding guest that cannot starve another's uplink traffic.
#include "backend/virtual_switch.hpp"

#include <gtest/gtest.h>

#include "packet/checksum.hpp"

#include <cstring>
#include <deque>
#include <vector>

namespace vnk::backend {
namespace {

using Bytes = std::vector<std::byte>;

const MacAddress kA{{0x52, 0x54, 0, 0, 0, 0x0a}};
const MacAddress kB{{0x52, 0x54, 0, 0, 0, 0x0b}};
const MacAddress kC{{0x52, 0x54, 0, 0, 0, 0x0c}};
const MacAddress kGateway{{0x52, 0x55, 0x0a, 0, 2, 2}};

Bytes frame(const MacAddress& dst, const MacAddress& src, std::uint8_t tag, std::size_t len = 60) {
  Bytes f(len, std::byte{tag});
  dst.store(f.data());
  src.store(f.data() + 6);
  f[12] = std::byte{0x08};
  f[13] = std::byte{0x00};
  return f;
}

class FakeUplink final : public net::NetBackend {
 public:
  net::TxResult transmit(const net::TxFrame& f) override {
    Bytes b(f.length);
    std::memcpy(b.data(), f.data[0].iov_base, f.length);
    sent.push_back(std::move(b));
    return net::TxResult::sent;
  }
  net::RxResult receive(std::span<const iovec> buffer) override {
    if (pending.empty()) return {};
    const Bytes f = std::move(pending.front());
    pending.pop_front();
    const std::size_t n = std::min(f.size(), buffer[0].iov_len);
    std::memcpy(buffer[0].iov_base, f.data(), n);
    return {net::RxStatus::frame, f.size(), n, {}};
  }
  [[nodiscard]] bool rx_pending() const override { return !pending.empty(); }
  [[nodiscard]] std::string_view name() const override { return "fake"; }
  [[nodiscard]] net::TxOffloads tx_offloads() const override { return {true, true, true}; }
  void set_rx_offloads(net::RxOffloads o) override { rx = o; }
  net::RxOffloads rx{};
  std::vector<Bytes> sent;
  std::deque<Bytes> pending;
};

net::TxResult send(SwitchPort& port, const Bytes& f, const net::NetHeader& h = {}) {
  const iovec v{const_cast<std::byte*>(f.data()), f.size()};
  return port.transmit(net::TxFrame{h, std::span(&v, 1), f.size(),
                                    std::span(f).first(std::min(f.size(), net::kTxHeadBytes))});
}

// The next frame the port's guest gets, or an empty vector; `header` gets
// its virtio-net header.
Bytes take(SwitchPort& port, net::NetHeader* header = nullptr) {
  Bytes buf(70000);
  const iovec v{buf.data(), buf.size()};
  const auto r = port.receive(std::span(&v, 1));
  if (r.status != net::RxStatus::frame) return {};
  if (header) *header = r.header;
  buf.resize(r.written);
  return buf;
}

class VirtualSwitchTest : public ::testing::Test {
 protected:
  void make(SwitchOptions o = {}) {
    sw = std::make_unique<VirtualSwitch>(uplink, nullptr, o);
    a = sw->attach();
    b = sw->attach();
    // Each guest speaks once (to the gateway): the switch learns its MAC.
    send(*a, frame(kGateway, kA, 1));
    send(*b, frame(kGateway, kB, 2));
    uplink.sent.clear();
  }
  FakeUplink uplink;
  std::unique_ptr<VirtualSwitch> sw;
  SwitchPort* a = nullptr;
  SwitchPort* b = nullptr;
};

TEST_F(VirtualSwitchTest, UnicastBetweenGuestsStaysOnTheSwitch) {
  make();
  const Bytes f = frame(kB, kA, 7, 1514);
  EXPECT_EQ(send(*a, f), net::TxResult::sent);
  EXPECT_TRUE(uplink.sent.empty());
  EXPECT_TRUE(b->rx_pending());
  EXPECT_EQ(take(*b), f);
  EXPECT_TRUE(take(*a).empty());
  EXPECT_EQ(sw->counters().frames_between_guests.get(), 1u);
}

TEST_F(VirtualSwitchTest, BroadcastReachesTheUplinkAndEveryOtherGuest) {
  make();
  SwitchPort* c = sw->attach();
  const Bytes f = frame(MacAddress::broadcast(), kA, 9);
  send(*a, f);
  ASSERT_EQ(uplink.sent.size(), 1u);
  EXPECT_EQ(uplink.sent[0], f);
  EXPECT_EQ(take(*b), f);
  EXPECT_EQ(take(*c), f);
  EXPECT_TRUE(take(*a).empty());  // not back to its sender
  EXPECT_EQ(sw->counters().frames_flooded.get(), 2u);
}

TEST_F(VirtualSwitchTest, UplinkFramesReachTheirGuestWhicheverPortPullsThem) {
  make();
  const Bytes for_b1 = frame(kB, kGateway, 1), for_a = frame(kA, kGateway, 2), for_b2 = frame(kB, kGateway, 3);
  const Bytes all = frame(MacAddress::broadcast(), kGateway, 4);
  for (const Bytes* f : {&for_b1, &for_a, &for_b2, &all}) uplink.pending.push_back(*f);
  // A pulls: B's first frame goes to B's queue on the way to A's own.
  EXPECT_EQ(take(*a), for_a);
  EXPECT_EQ(take(*a), all);  // B's second went to B's queue too; the broadcast to both
  EXPECT_TRUE(take(*a).empty());
  // B gets its frames in the uplink's order, then its copy of the broadcast.
  EXPECT_EQ(take(*b), for_b1);
  EXPECT_EQ(take(*b), for_b2);
  EXPECT_EQ(take(*b), all);
  EXPECT_TRUE(take(*b).empty());
  EXPECT_EQ(sw->counters().frames_from_uplink.get(), 5u);
}

TEST_F(VirtualSwitchTest, UplinkFramesForAGuestThatLeftAreDroppedAndCounted) {
  make();
  sw->detach(b);
  uplink.pending.push_back(frame(kB, kGateway, 1));
  EXPECT_TRUE(take(*a).empty());
  EXPECT_EQ(sw->counters().drop_unknown_destination.get(), 1u);
}

TEST_F(VirtualSwitchTest, IsolatedGuestsReachOnlyTheUplink) {
  make({.guest_to_guest = false});
  EXPECT_EQ(send(*a, frame(kB, kA, 1)), net::TxResult::dropped);
  send(*a, frame(MacAddress::broadcast(), kA, 2));
  EXPECT_EQ(uplink.sent.size(), 1u);  // the broadcast, to the gateway only
  EXPECT_TRUE(take(*b).empty());
  EXPECT_EQ(sw->counters().drop_isolated.get(), 1u);
}

TEST_F(VirtualSwitchTest, AGuestCannotSendFromAnotherGuestsMac) {
  make();
  EXPECT_EQ(send(*b, frame(kGateway, kA, 1)), net::TxResult::dropped);
  EXPECT_EQ(send(*b, frame(kA, kA, 1)), net::TxResult::dropped);
  EXPECT_TRUE(uplink.sent.empty());
  EXPECT_EQ(sw->counters().drop_mac_taken.get(), 2u);
  // Frames for A still reach A.
  uplink.pending.push_back(frame(kA, kGateway, 3));
  EXPECT_EQ(take(*a).size(), 60u);
  // Once A has left, its MAC is free for another port.
  sw->detach(a);
  SwitchPort* c = sw->attach();
  EXPECT_EQ(send(*c, frame(kGateway, kA, 4)), net::TxResult::sent);
}

TEST_F(VirtualSwitchTest, APortHoldsABoundedNumberOfMacs) {
  make();
  unsigned sent = 0;
  for (std::uint8_t i = 0; i < 40; ++i)
    if (send(*a, frame(kGateway, MacAddress{{0x02, 0, 0, 0, 1, i}}, i)) == net::TxResult::sent) ++sent;
  EXPECT_EQ(sent, SwitchPort::kMacsPerPort - 1);  // kA is one of them
  EXPECT_EQ(sw->counters().drop_too_many_macs.get(), 40u - sent);
}

TEST_F(VirtualSwitchTest, AFloodingGuestFillsOnlyItsVictimsPeerQueue) {
  make({.max_frame = 1514, .queue_bytes = 64 * 1514});
  for (unsigned i = 0; i < 1000; ++i) send(*a, frame(kB, kA, static_cast<std::uint8_t>(i), 1514));
  EXPECT_EQ(sw->counters().drop_queue_full.get(), 1000u - 64u);
  // The victim's own traffic with the gateway still gets every other turn.
  const Bytes mine = frame(kB, kGateway, 0xee);
  uplink.pending.push_back(mine);
  bool got = false;
  for (int i = 0; i < 2 && !got; ++i) got = take(*b) == mine;
  EXPECT_TRUE(got);
  // And the flooder's traffic to the gateway goes through.
  EXPECT_EQ(send(*a, frame(kGateway, kA, 1)), net::TxResult::sent);
}

TEST_F(VirtualSwitchTest, FramesBetweenGuestsLargerThanTheMtuAreDropped) {
  make({.max_frame = 1514});
  EXPECT_EQ(send(*a, frame(kB, kA, 1, 1515)), net::TxResult::dropped);
  send(*a, frame(MacAddress::broadcast(), kA, 1, 1515));  // the uplink judges its own copy
  EXPECT_EQ(send(*a, frame(kB, kA, 1, 1514)), net::TxResult::sent);
  EXPECT_EQ(sw->counters().drop_oversize.get(), 2u);
  EXPECT_EQ(take(*b).size(), 1514u);
  EXPECT_TRUE(take(*b).empty());
}

// A TCP-over-IPv4 frame of `len` bytes from A to B whose checksum field
// holds only the pseudo-header sum (a partial checksum), as Linux sends.
Bytes partial_csum_frame(std::size_t len) {
  Bytes f = frame(kB, kA, 0, len);
  for (std::size_t i = 14; i < len; ++i) f[i] = std::byte(static_cast<std::uint8_t>(i * 13));
  f[34 + 16] = std::byte{0x12};  // "pseudo-header sum" in the TCP checksum field
  f[34 + 17] = std::byte{0x34};
  return f;
}
net::NetHeader partial_csum() {
  net::NetHeader h;
  h.flags = net::NetHeader::kFlagNeedsCsum;
  h.csum_start = 34;
  h.csum_offset = 16;
  return h;
}

TEST_F(VirtualSwitchTest, APartialChecksumIsFinishedForAGuestThatDoesNotTakeIt) {
  make();
  const Bytes f = partial_csum_frame(1000);
  EXPECT_EQ(send(*a, f, partial_csum()), net::TxResult::sent);
  net::NetHeader h;
  const Bytes got = take(*b, &h);
  ASSERT_EQ(got.size(), f.size());
  EXPECT_EQ(h.flags, 0);
  // The sum over the pseudo-header (its sum was in the field) and the
  // checksummed range, the finished checksum included, is 0xffff.
  packet::Checksum sum;
  const Bytes pseudo{std::byte{0x12}, std::byte{0x34}};
  sum.add(pseudo);
  sum.add(std::span(got).subspan(34));
  EXPECT_EQ(sum.finish(), 0);
  EXPECT_EQ(sw->counters().checksums_completed.get(), 1u);
}

TEST_F(VirtualSwitchTest, OffloadsPassBetweenGuestsThatTakeThem) {
  make();
  b->set_rx_offloads({true, true, true});
  const Bytes f = partial_csum_frame(20000);
  net::NetHeader tso = partial_csum();
  tso.gso_type = net::NetHeader::kGsoTcpV4 | net::NetHeader::kGsoEcn;
  tso.gso_size = 1448;
  tso.hdr_len = 66;
  EXPECT_EQ(send(*a, f, tso), net::TxResult::sent);
  net::NetHeader h;
  EXPECT_EQ(take(*b, &h), f);  // untouched: the receiving guest completes and cuts it
  EXPECT_EQ(h.flags, net::NetHeader::kFlagNeedsCsum);
  EXPECT_EQ(h.gso_type, net::NetHeader::kGsoTcpV4);  // no GUEST_ECN: the bit is not passed on
  EXPECT_EQ(h.gso_size, tso.gso_size);
  EXPECT_EQ(h.hdr_len, tso.hdr_len);
  EXPECT_EQ(h.csum_start, tso.csum_start);
  EXPECT_EQ(h.csum_offset, tso.csum_offset);
  // A guest that takes no TSO gets none: dropped and counted.
  b->set_rx_offloads({true, false, false});
  EXPECT_EQ(send(*a, f, tso), net::TxResult::dropped);
  EXPECT_EQ(sw->counters().drop_offload.get(), 1u);
}

TEST_F(VirtualSwitchTest, TheUplinkBuildsWhatEveryGuestTakes) {
  make();
  EXPECT_FALSE(uplink.rx.partial_csum);
  a->set_rx_offloads({true, true, true});
  EXPECT_FALSE(uplink.rx.tso4);  // b takes none yet
  b->set_rx_offloads({true, true, false});
  EXPECT_TRUE(uplink.rx.partial_csum && uplink.rx.tso4);
  EXPECT_FALSE(uplink.rx.tso6);
  SwitchPort* c = sw->attach();  // a frame socket: takes nothing
  EXPECT_FALSE(uplink.rx.partial_csum || uplink.rx.tso4);
  sw->detach(c);
  sw->detach(b);
  EXPECT_TRUE(uplink.rx.tso6);
  // TSO frames from the uplink keep their header through another port's queue.
  net::NetHeader h;
  uplink.pending.push_back(frame(kA, kGateway, 1, 30000));
  EXPECT_EQ(take(*a, &h).size(), 30000u);
}

TEST_F(VirtualSwitchTest, PortsAreBounded) {
  make({.max_ports = 3});
  EXPECT_NE(sw->attach(), nullptr);
  EXPECT_EQ(sw->attach(), nullptr);
  EXPECT_EQ(sw->ports(), 3u);
}

TEST_F(VirtualSwitchTest, RuntsAndMulticastSourcesAreDropped) {
  make();
  EXPECT_EQ(send(*a, Bytes(10)), net::TxResult::dropped);
  EXPECT_EQ(send(*a, frame(kGateway, MacAddress::broadcast(), 1)), net::TxResult::dropped);
  EXPECT_EQ(sw->counters().drop_malformed.get(), 2u);
}

}  // namespace
}  // namespace vnk::backend
