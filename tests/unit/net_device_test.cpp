// The virtio-net device through the mock driver: TX and RX paths, header
// layouts, interrupts, link state, resets. Each test asserts the exact
// counters that moved.
#include "net/net_device.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "counter_delta.hpp"
#include "net/net_features.hpp"
#include "net_rig.hpp"

namespace vnk::net {
namespace {

using test::CounterDelta;
using test::make_frame;
using test::NetRig;
using test::TxLayout;

TEST(NetDevice, LoopbackFrameComesBackByteForByte) {
  NetRig rig;
  rig.probe();
  rig.post_rx(4, 2048);
  const auto frame = make_frame(60, 3);
  CounterDelta d(rig.counters());
  rig.send(frame);
  auto got = rig.take_rx();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, frame);
  EXPECT_EQ(got[0].used_len, 72u);
  EXPECT_EQ(got[0].header.num_buffers, 1);
  EXPECT_EQ(got[0].header.flags, 0);
  EXPECT_EQ(rig.reap_tx(), 1u);
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_packets", 1}, {"tx_bytes", 60}, {"rx_packets", 1}, {"rx_bytes", 60},
                                       {"tx_interrupts", 1}, {"rx_interrupts", 1}}));
}

TEST(NetDevice, HeaderLayoutsAllCarryTheSameFrame) {
  // Linux may put the header in its own descriptor, in front of the data in
  // one descriptor, split it, or use an indirect table.
  const std::vector<TxLayout> layouts{
      {.header_separate = true},
      {.header_separate = false},
      {.header_separate = true, .split_header_at = 5},
      {.header_separate = true, .split_header_at = 1, .chunk = 7},
      {.header_separate = true, .chunk = 100, .indirect = true},
  };
  for (const TxLayout& l : layouts) {
    NetRig rig;
    rig.probe();
    rig.post_rx(1, 2048);
    const auto frame = make_frame(1514, 9);
    rig.send(frame, l);
    auto got = rig.take_rx();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].data, frame);
    EXPECT_EQ(rig.counters().tx_packets.get(), 1u);
  }
}

TEST(NetDevice, MaximumFrameOf65557BytesPasses) {
  NetRig rig;
  rig.probe();
  rig.post_rx(1, 12 + 65557);
  const auto frame = make_frame(kMaxFrameSize, 1);
  CounterDelta d(rig.counters());
  rig.send(frame, {.chunk = 4096});
  auto got = rig.take_rx();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, frame);
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_packets", 1}, {"tx_bytes", kMaxFrameSize}, {"rx_packets", 1},
                                       {"rx_bytes", kMaxFrameSize}, {"tx_interrupts", 1}, {"rx_interrupts", 1}}));
}

TEST(NetDevice, TooSmallRxBufferTruncatesTheFrame) {
  NetRig rig;
  rig.probe();
  rig.post_rx(1, 12 + 100);
  const auto frame = make_frame(500, 2);
  CounterDelta d(rig.counters());
  rig.send(frame);
  auto got = rig.take_rx();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].used_len, 112u);
  EXPECT_EQ(got[0].data, std::vector<std::byte>(frame.begin(), frame.begin() + 100));
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_packets", 1}, {"tx_bytes", 500}, {"rx_packets", 1}, {"rx_bytes", 100},
                                       {"rx_truncated", 1}, {"tx_interrupts", 1}, {"rx_interrupts", 1}}));
}

// MRG_RXBUF (§5.1.6.3.1): a frame larger than one posted buffer spans as
// many as it needs, the header (in the first) says how many, and the
// buffers it did not need stay posted for the next frame.
TEST(NetDevice, MergeableBuffersCarryOneFrameAcrossSeveral) {
  NetRig rig;
  ASSERT_TRUE(rig.device_features() & virtio::bit(kFeatureMrgRxbuf));
  rig.probe();
  rig.post_rx(6, 1024);
  const auto big = make_frame(3000, 5);
  const auto small = make_frame(60, 6);
  CounterDelta d(rig.counters());
  rig.send(big);
  rig.send(small);
  auto got = rig.take_rx();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].header.num_buffers, 3);  // 1012 + 1024 + 964
  EXPECT_EQ(got[0].buffers, 3);
  EXPECT_EQ(got[0].used_len, 12u + 3000u);
  EXPECT_EQ(got[0].data, big);
  EXPECT_EQ(got[1].header.num_buffers, 1);
  EXPECT_EQ(got[1].data, small);
  EXPECT_EQ(rig.rxq().used_idx(), 4) << "two buffers stay posted";
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_packets", 2}, {"tx_bytes", 3060}, {"rx_packets", 2}, {"rx_bytes", 3060},
                                       {"rx_merged_buffers", 2}, {"tx_interrupts", 1}, {"rx_interrupts", 1}}));
}

// The largest frame over page-sized buffers, as Linux posts them with
// MRG_RXBUF; and without MRG_RXBUF the same buffers truncate it.
TEST(NetDevice, MergeableBuffersTakeTheLargestFrameOnlyWhenNegotiated) {
  for (const bool merge : {true, false}) {
    NetRig rig;
    const std::uint64_t all = rig.device_features();
    rig.probe(merge ? all : all & ~virtio::bit(kFeatureMrgRxbuf));
    rig.post_rx(20, 4096);
    const auto frame = make_frame(kMaxFrameSize, 2);
    rig.send(frame, {.chunk = 4096});
    auto got = rig.take_rx();
    ASSERT_EQ(got.size(), 1u);
    if (merge) {
      EXPECT_EQ(got[0].header.num_buffers, 17);  // ceil((65557 + 12) / 4096)
      EXPECT_EQ(got[0].data, frame);
      EXPECT_EQ(rig.counters().rx_truncated.get(), 0u);
    } else {
      EXPECT_EQ(got[0].header.num_buffers, 1);
      EXPECT_EQ(got[0].data.size(), 4096u - 12u);
      EXPECT_EQ(rig.counters().rx_truncated.get(), 1u);
    }
  }
}

// A hostile driver's follow-on buffer too small for a header is not merged
// into a frame: the frame ends before it, and it is completed empty.
TEST(NetDevice, AMergeableBufferSmallerThanTheHeaderEndsTheFrameBeforeIt) {
  NetRig rig;
  rig.probe();
  rig.post_rx(1, 1024);
  rig.post_rx(1, 8);
  rig.post_rx(1, 1024);
  const auto frame = make_frame(1500, 3);
  CounterDelta d(rig.counters());
  rig.send(frame);
  auto got = rig.take_rx();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].header.num_buffers, 1);
  EXPECT_EQ(got[0].data, std::vector<std::byte>(frame.begin(), frame.begin() + 1012));
  EXPECT_EQ(got[1].used_len, 0u);
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_packets", 1}, {"tx_bytes", 1500}, {"rx_packets", 1}, {"rx_bytes", 1012},
                                       {"rx_truncated", 1}, {"rx_drop_short_buffer", 1}, {"tx_interrupts", 1},
                                       {"rx_interrupts", 1}}));
}

TEST(NetDevice, RxBufferSmallerThanTheHeaderIsCompletedEmpty) {
  NetRig rig;
  rig.probe();
  rig.post_rx(1, 8);
  rig.post_rx(1, 2048);
  const auto frame = make_frame(64);
  CounterDelta d(rig.counters());
  rig.send(frame);
  auto got = rig.take_rx();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].used_len, 0u);
  EXPECT_EQ(got[1].data, frame);  // the frame waited for the next buffer
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_packets", 1}, {"tx_bytes", 64}, {"rx_packets", 1}, {"rx_bytes", 64},
                                       {"rx_drop_short_buffer", 1}, {"tx_interrupts", 1}, {"rx_interrupts", 1}}));
}

TEST(NetDevice, FramesWaitForRxBuffersAndArriveWhenPosted) {
  NetRig rig;
  rig.probe();
  CounterDelta d(rig.counters());
  rig.send(make_frame(60, 1));
  rig.send(make_frame(61, 2));
  EXPECT_EQ(rig.loopback.queued(), 2u);
  rig.post_rx(4, 2048);
  rig.kick_rx();
  auto got = rig.take_rx();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].data, make_frame(60, 1));
  EXPECT_EQ(got[1].data, make_frame(61, 2));
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_packets", 2}, {"tx_bytes", 121}, {"rx_packets", 2}, {"rx_bytes", 121},
                                       {"rx_no_buffer", 2}, {"tx_interrupts", 1}, {"rx_interrupts", 1}}));
  // One TX interrupt: the driver never re-armed used_event between the sends.
}

TEST(NetDevice, OneInterruptPerDrainNotPerChain) {
  NetRig rig;
  rig.probe(rig.device_features() & ~virtio::bit(virtio::kFeatureRingEventIdx));
  rig.post_rx(32, 2048);
  for (int i = 0; i < 16; ++i) rig.queue_tx(make_frame(100, static_cast<std::uint8_t>(i)));
  const int before = rig.irqs;
  rig.kick_tx();
  EXPECT_EQ(rig.take_rx().size(), 16u);
  EXPECT_EQ(rig.counters().tx_interrupts.get(), 1u);
  EXPECT_EQ(rig.counters().rx_interrupts.get(), 1u);
  EXPECT_EQ(rig.irqs - before, 2);
}

TEST(NetDevice, EventIdxDriverThatAsksForNoInterruptGetsNone) {
  NetRig rig;
  rig.probe();
  rig.post_rx(8, 2048);
  rig.send(make_frame(60));  // first interrupts always fire
  const int before = rig.irqs;
  // used_event far away: "do not interrupt me for a while" (virtqueue_disable_cb_delayed).
  rig.txq().set_used_event(1000);
  rig.rxq().set_used_event(1000);
  rig.send(make_frame(60));
  EXPECT_EQ(rig.irqs, before);
  EXPECT_EQ(rig.take_rx().size(), 2u);
}

TEST(NetDevice, HeaderAskingForUnnegotiatedOffloadIsDropped) {
  NetRig rig;
  rig.probe();
  rig.post_rx(2, 2048);
  CounterDelta d(rig.counters());
  NetHeader h;
  h.flags = NetHeader::kFlagNeedsCsum;
  rig.queue_tx(make_frame(60), {}, h);
  NetHeader g;
  g.gso_type = 1;  // VIRTIO_NET_HDR_GSO_TCPV4
  rig.queue_tx(make_frame(60), {}, g);
  rig.kick_tx();
  EXPECT_EQ(rig.take_rx().size(), 0u);
  EXPECT_EQ(rig.reap_tx(), 2u);
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_drop_bad_header", 2}, {"tx_interrupts", 1}}));
}

TEST(NetDevice, RuntFrameIsDropped) {
  NetRig rig;
  rig.probe();
  rig.post_rx(1, 2048);
  CounterDelta d(rig.counters());
  rig.send(make_frame(10));
  EXPECT_EQ(rig.reap_tx(), 1u);
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_drop_runt", 1}, {"tx_interrupts", 1}}));
}

TEST(NetDevice, LinkDownAndUpRaiseConfigInterruptsAndBumpGeneration) {
  NetRig rig;
  rig.probe();
  const int before = rig.irqs;
  rig.device.set_link_up(false);
  EXPECT_EQ(rig.read_config(6, 1)[0], std::byte{0});
  EXPECT_EQ(rig.read32(virtio::mmio::kConfigGeneration), 1u);
  EXPECT_EQ(rig.read32(virtio::mmio::kInterruptStatus) & virtio::mmio::kIntConfig, virtio::mmio::kIntConfig);
  rig.device.set_link_up(false);  // no change, no interrupt
  rig.device.set_link_up(true);
  EXPECT_EQ(rig.read_config(6, 1)[0], std::byte{1});
  EXPECT_EQ(rig.read32(virtio::mmio::kConfigGeneration), 2u);
  EXPECT_EQ(rig.irqs - before, 2);
}

TEST(NetDevice, MtuIsOfferedOnlyWhenConfigured) {
  NetConfig cfg;
  cfg.mtu = 1400;
  NetRig rig({cfg});
  EXPECT_TRUE(rig.device_features() & virtio::bit(kFeatureMtu));
}

// A loopback backend that records the offloads the device tells it and,
// when `takes_offloads`, takes partial checksums and TCPv4 GSO from the guest.
struct OffloadRecorder final : NetBackend {
  TxResult transmit(const TxFrame& frame) override {
    headers.push_back(frame.header);
    return loop.transmit(frame);
  }
  [[nodiscard]] TxOffloads tx_offloads() const override { return {takes_offloads, takes_offloads, takes_offloads}; }
  RxResult receive(std::span<const iovec> buffer) override { return loop.receive(buffer); }
  [[nodiscard]] bool rx_pending() const override { return loop.rx_pending(); }
  [[nodiscard]] std::string_view name() const override { return "recorder"; }
  void set_rx_offloads(RxOffloads o) override { last = o; }
  backend::LoopbackBackend loop;
  RxOffloads last{};
  bool takes_offloads = false;
  std::vector<NetHeader> headers;
};

TEST(NetDevice, GuestChecksumAndTsoAreOfferedAndTheBackendHearsWhatWasNegotiated) {
  OffloadRecorder backend;
  NetRig rig({NetConfig{}, &backend});
  const auto offered = rig.device_features();
  EXPECT_TRUE(offered & virtio::bit(kFeatureGuestCsum));
  EXPECT_TRUE(offered & virtio::bit(kFeatureGuestTso4));
  EXPECT_TRUE(offered & virtio::bit(kFeatureGuestTso6));
  rig.probe();
  EXPECT_TRUE(backend.last.partial_csum);
  EXPECT_TRUE(backend.last.tso4);
  EXPECT_TRUE(backend.last.tso6);
  // A driver that takes GUEST_TSO4 without GUEST_CSUM gets neither.
  rig.write32(virtio::mmio::kStatus, 0);
  rig.probe(offered & ~virtio::bit(kFeatureGuestCsum));
  EXPECT_FALSE(backend.last.partial_csum);
  EXPECT_FALSE(backend.last.tso4);
  EXPECT_FALSE(backend.last.tso6);
  // Reset: whole frames again until the next driver negotiates.
  rig.write32(virtio::mmio::kStatus, 0);
  EXPECT_FALSE(backend.last.partial_csum);
  NetConfig off;
  off.guest_offloads = false;
  NetRig plain({off});
  EXPECT_FALSE(plain.device_features() & virtio::bit(kFeatureGuestCsum));
  EXPECT_FALSE(plain.device_features() & virtio::bit(kFeatureGuestTso4));
}

TEST(NetDevice, TxOffloadsAreOfferedOnlyForABackendThatTakesThem) {
  NetRig plain;
  EXPECT_FALSE(plain.device_features() & virtio::bit(kFeatureCsum)) << "the loopback backend takes none";
  EXPECT_FALSE(plain.device_features() & virtio::bit(kFeatureHostTso4));
  OffloadRecorder backend;
  backend.takes_offloads = true;
  NetRig rig({NetConfig{}, &backend});
  EXPECT_TRUE(rig.device_features() & virtio::bit(kFeatureCsum));
  EXPECT_TRUE(rig.device_features() & virtio::bit(kFeatureHostTso4));
  EXPECT_TRUE(rig.device_features() & virtio::bit(kFeatureHostTso6));
  EXPECT_TRUE(rig.device_features() & virtio::bit(kFeatureHostEcn));
  NetConfig off;
  off.guest_offloads = false;
  NetRig withheld({off, &backend});
  EXPECT_FALSE(withheld.device_features() & virtio::bit(kFeatureCsum));
}

// Hostile TX offload headers (csum_start/csum_offset outside the frame, GSO
// fields that do not fit) are dropped and counted; a sound one reaches the
// backend with its header.
TEST(NetDevice, TxOffloadHeadersAreCheckedAgainstTheFrame) {
  OffloadRecorder backend;
  backend.takes_offloads = true;
  NetRig rig({NetConfig{}, &backend});
  rig.probe();
  rig.post_rx(16, 4096);
  CounterDelta d(rig.counters());
  const auto frame = make_frame(1000, 7);
  auto csum = [](std::uint16_t start, std::uint16_t offset) {
    NetHeader h;
    h.flags = NetHeader::kFlagNeedsCsum;
    h.csum_start = start;
    h.csum_offset = offset;
    return h;
  };
  auto gso = [&](std::uint8_t type, std::uint16_t size, std::uint16_t hdr_len, bool with_csum = true) {
    NetHeader h = with_csum ? csum(34, 16) : NetHeader{};
    h.gso_type = type;
    h.gso_size = size;
    h.hdr_len = hdr_len;
    return h;
  };
  rig.queue_tx(frame, {}, csum(34, 16));           // sound: TCP checksum field at 50
  rig.queue_tx(frame, {}, gso(1, 1448, 66));       // sound TSO
  rig.queue_tx(frame, {}, csum(34, 999));          // field past the end
  rig.queue_tx(frame, {}, csum(0xffff, 0xffff));   // both at their largest
  rig.queue_tx(frame, {}, csum(4, 16));            // inside the Ethernet header
  rig.queue_tx(frame, {}, gso(1, 0, 66));          // gso_size 0
  rig.queue_tx(frame, {}, gso(1, 1448, 2000));     // hdr_len past the frame
  rig.queue_tx(frame, {}, gso(1, 1448, 66, false));  // no NEEDS_CSUM
  rig.queue_tx(frame, {}, gso(3, 1448, 66));       // UDP (UFO), not offered
  rig.queue_tx(frame, {}, gso(0x81, 1448, 66));    // TCPv4 with ECN (HOST_ECN negotiated)
  rig.queue_tx(frame, {}, gso(0x83, 1448, 66));    // UDP with ECN: still not offered
  rig.queue_tx(frame, {}, gso(4, 1428, 86));       // sound TCPv6 TSO (HOST_TSO6)
  rig.queue_tx(frame, {}, gso(5, 1428, 86));       // no such type
  rig.kick_tx();
  EXPECT_EQ(rig.reap_tx(), 13u);
  ASSERT_EQ(backend.headers.size(), 4u);
  EXPECT_EQ(backend.headers[0].csum_offset, 16);
  EXPECT_EQ(backend.headers[1].gso_size, 1448);
  EXPECT_EQ(backend.headers[2].gso_type, 0x81);
  EXPECT_EQ(backend.headers[3].gso_type, NetHeader::kGsoTcpV6);
  EXPECT_TRUE(d.moved(rig.counters(), {{"tx_packets", 4}, {"tx_bytes", 4000}, {"tx_drop_bad_csum_offload", 3},
                                       {"tx_drop_bad_gso", 6}, {"tx_interrupts", 1}, {"rx_packets", 4},
                                       {"rx_bytes", 4000}, {"rx_interrupts", 1}}));
  // Without HOST_ECN the ECN bit is refused.
  NetRig no_ecn({NetConfig{}, &backend});
  no_ecn.probe(no_ecn.device_features() & ~virtio::bit(kFeatureHostEcn));
  no_ecn.post_rx(4, 4096);
  CounterDelta d2(no_ecn.counters());
  no_ecn.queue_tx(frame, {}, gso(0x81, 1448, 66));
  no_ecn.kick_tx();
  EXPECT_TRUE(d2.moved(no_ecn.counters(), {{"tx_drop_bad_gso", 1}, {"tx_interrupts", 1}}));
}

TEST(NetDevice, ConfigWritesAreIgnoredAndCounted) {
  NetRig rig;
  CounterDelta d(rig.counters());
  std::array<std::byte, 1> b{std::byte{0x33}};
  rig.transport.write(virtio::mmio::kConfig, b);
  EXPECT_EQ(rig.read_config(0, 1)[0], std::byte{0x02});
  EXPECT_TRUE(d.moved(rig.counters(), {{"config_writes_ignored", 1}}));
}

TEST(NetDevice, ResetAndReprobeWorksAndCountersSurvive) {
  NetRig rig;
  rig.probe();
  rig.post_rx(2, 2048);
  rig.send(make_frame(60));
  ASSERT_EQ(rig.counters().tx_packets.get(), 1u);
  rig.write32(virtio::mmio::kStatus, 0);
  EXPECT_FALSE(rig.device.active());
  rig.probe();  // fresh rings at new addresses
  rig.post_rx(2, 2048);
  rig.send(make_frame(61));
  auto got = rig.take_rx();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data.size(), 61u);
  EXPECT_EQ(rig.counters().tx_packets.get(), 2u);
}

TEST(NetDevice, NotifyForAQueueTheDeviceLacksIsCounted) {
  NetRig rig;
  rig.probe();
  CounterDelta d(rig.counters());
  rig.write32(virtio::mmio::kQueueNotify, 7);
  EXPECT_TRUE(d.moved(rig.counters(), {{"notify_bad_queue", 1}}));
}

TEST(NetConfig, DefaultsAndNormalisation) {
  NetConfig cfg;
  EXPECT_EQ(cfg.mac.to_string(), "02:00:00:00:00:01");
  EXPECT_TRUE(cfg.mac.is_unicast());
  EXPECT_TRUE(cfg.mac.is_locally_administered());
  cfg.queue_pairs = 0;
  EXPECT_EQ(normalize(cfg)->queue_pairs, 1);
  cfg.queue_pairs = 1000;
  EXPECT_EQ(normalize(cfg)->queue_pairs, 256);
  cfg.mac = *MacAddress::parse("03:00:00:00:00:01");
  EXPECT_FALSE(normalize(cfg));
  cfg = NetConfig{};
  cfg.mtu = 60;
  EXPECT_FALSE(normalize(cfg));
  EXPECT_FALSE(MacAddress::parse("02:00:00:00:00"));
  EXPECT_FALSE(MacAddress::parse("02:00:00:00:00:0g"));
  EXPECT_EQ(MacAddress::parse("52-54-00-AB-CD-EF")->to_string(), "52:54:00:ab:cd:ef");
}

TEST(NetHeader, RoundTripsLittleEndian) {
  NetHeader h{.flags = 1, .gso_type = 3, .hdr_len = 0x1234, .gso_size = 1448, .csum_start = 34, .csum_offset = 16,
              .num_buffers = 1};
  const auto raw = h.serialize();
  EXPECT_EQ(raw[2], std::byte{0x34});
  EXPECT_EQ(raw[3], std::byte{0x12});
  const NetHeader back = NetHeader::parse(raw);
  EXPECT_EQ(back.gso_size, 1448);
  EXPECT_EQ(back.num_buffers, 1);
  EXPECT_EQ(back.csum_offset, 16);
}

}  // namespace
}  // namespace vnk::net
