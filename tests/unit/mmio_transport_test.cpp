// The virtio-MMIO register file and status state machine, as the Linux
// virtio_mmio driver exercises them.
#include "virtio/mmio_transport.hpp"

#include <gtest/gtest.h>

#include "counter_delta.hpp"
#include "net/net_features.hpp"
#include "net_rig.hpp"
#include "virtio/device_status.hpp"

namespace vnk::virtio {
namespace {

using namespace status;
using test::CounterDelta;
using test::NetRig;

constexpr std::uint32_t kAll = kAcknowledge | kDriver | kFeaturesOk | kDriverOk;

TEST(MmioTransport, IdentityRegisters) {
  NetRig rig;
  EXPECT_EQ(rig.read32(mmio::kMagicValue), 0x74726976u);
  EXPECT_EQ(rig.read32(mmio::kVersionReg), 2u);
  EXPECT_EQ(rig.read32(mmio::kDeviceId), 1u);
  EXPECT_EQ(rig.read32(mmio::kVendorIdReg), mmio::kVendorId);
  rig.write32(mmio::kQueueSel, 0);
  EXPECT_EQ(rig.read32(mmio::kQueueNumMax), 256u);
  rig.write32(mmio::kQueueSel, 2);  // no third queue
  EXPECT_EQ(rig.read32(mmio::kQueueNumMax), 0u);
  EXPECT_EQ(rig.read32(mmio::kShmLenLow), 0xffffffffu);
}

TEST(MmioTransport, FeaturePagesExposeTheOfferedSet) {
  NetRig rig;
  const std::uint64_t f = rig.device_features();
  EXPECT_TRUE(f & bit(kFeatureVersion1));
  EXPECT_TRUE(f & bit(kFeatureRingEventIdx));
  EXPECT_TRUE(f & bit(kFeatureRingIndirectDesc));
  EXPECT_TRUE(f & bit(net::kFeatureMac));
  EXPECT_TRUE(f & bit(net::kFeatureStatus));
  EXPECT_FALSE(f & bit(net::kFeatureMtu));  // no MTU configured
  rig.write32(mmio::kDeviceFeaturesSel, 2);
  EXPECT_EQ(rig.read32(mmio::kDeviceFeatures), 0u);
}

TEST(MmioTransport, NonWordRegisterReadsReturnAllOnesAndWritesAreIgnored) {
  NetRig rig;
  CounterDelta d(rig.transport.counters());
  std::array<std::byte, 2> two{};
  rig.transport.read(mmio::kMagicValue, two);
  EXPECT_EQ(two[0], std::byte{0xff});
  EXPECT_EQ(two[1], std::byte{0xff});
  std::array<std::byte, 1> one{std::byte{1}};
  rig.transport.write(mmio::kStatus, one);
  EXPECT_EQ(rig.status(), 0u);
  EXPECT_TRUE(d.moved(rig.transport.counters(), {{"bad_access_width", 2}}));
}

TEST(MmioTransport, ConfigSpaceReadsAtAnyWidthAndZeroPastTheLayout) {
  net::NetConfig cfg;
  cfg.mac = *net::MacAddress::parse("02:aa:bb:cc:dd:ee");
  cfg.mtu = 9000;
  NetRig rig({cfg});
  // MAC one byte at a time (virtio_cread8), as Linux reads it.
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(rig.read_config(i, 1)[0], std::byte{cfg.mac.octets[i]});
  auto status = rig.read_config(6, 2);
  EXPECT_EQ(status[0], std::byte{1});  // link up
  auto mtu = rig.read_config(10, 2);
  EXPECT_EQ(std::to_integer<int>(mtu[0]) | std::to_integer<int>(mtu[1]) << 8, 9000);
  auto wide = rig.read_config(0, 8);
  EXPECT_EQ(wide[5], std::byte{0xee});
  EXPECT_EQ(wide[6], std::byte{1});
  auto past = rig.read_config(12, 4);
  for (auto b : past) EXPECT_EQ(b, std::byte{0});
  auto far = rig.read_config(0xe00, 8);
  for (auto b : far) EXPECT_EQ(b, std::byte{0});
}

TEST(MmioTransport, ProbeReachesDriverOk) {
  NetRig rig;
  EXPECT_EQ(rig.probe(), kAll);
  EXPECT_TRUE(rig.device.active());
}

TEST(MmioTransport, StatusStepsMustComeInOrder) {
  NetRig rig;
  CounterDelta d(rig.transport.counters());
  rig.write32(mmio::kStatus, kDriver);  // DRIVER before ACKNOWLEDGE
  EXPECT_EQ(rig.status(), 0u);
  rig.write32(mmio::kStatus, kAcknowledge);
  rig.write32(mmio::kStatus, kAcknowledge | kFeaturesOk);  // skips DRIVER
  EXPECT_EQ(rig.status(), kAcknowledge);
  rig.write32(mmio::kStatus, kAcknowledge | kDriver | kFeaturesOk);  // two bits at once
  EXPECT_EQ(rig.status(), kAcknowledge);
  EXPECT_TRUE(d.moved(rig.transport.counters(), {{"status_rejected", 3}}));
}

TEST(MmioTransport, DriverMayNotClearBitsExceptByReset) {
  NetRig rig;
  rig.probe();
  CounterDelta d(rig.transport.counters());
  rig.write32(mmio::kStatus, kAcknowledge | kDriver);
  EXPECT_EQ(rig.status(), kAll);
  rig.write32(mmio::kStatus, 0);
  EXPECT_EQ(rig.status(), 0u);
  EXPECT_FALSE(rig.device.active());
  EXPECT_TRUE(d.moved(rig.transport.counters(), {{"status_rejected", 1}, {"resets", 1}}));
}

TEST(MmioTransport, FeaturesOkRefusedWithoutVersion1) {
  NetRig rig;
  CounterDelta d(rig.transport.counters());
  const std::uint32_t s = rig.probe(rig.device_features() & ~bit(kFeatureVersion1));
  EXPECT_FALSE(s & kFeaturesOk);
  EXPECT_TRUE(s & kFailed);
  EXPECT_TRUE(d.moved(rig.transport.counters(), {{"features_rejected", 1}, {"resets", 1}}));
}

TEST(MmioTransport, FeaturesOkRefusedForAnUnofferedBit) {
  NetRig rig;
  const std::uint64_t greedy = rig.device_features() | bit(net::kFeatureCtrlVq);
  const std::uint32_t s = rig.probe(greedy, 256, /*force_features=*/true);
  EXPECT_FALSE(s & kFeaturesOk);
  EXPECT_TRUE(s & kFailed);
  EXPECT_EQ(rig.transport.counters().features_rejected.get(), 1u);
}

TEST(MmioTransport, FeatureBitsAbovePageOneAreUnoffered) {
  NetRig rig;
  rig.write32(mmio::kStatus, kAcknowledge);
  rig.write32(mmio::kStatus, kAcknowledge | kDriver);
  rig.write32(mmio::kDriverFeaturesSel, 1);
  rig.write32(mmio::kDriverFeatures, 1);  // VERSION_1
  rig.write32(mmio::kDriverFeaturesSel, 5);
  rig.write32(mmio::kDriverFeatures, 0x10);
  rig.write32(mmio::kStatus, kAcknowledge | kDriver | kFeaturesOk);
  EXPECT_FALSE(rig.status() & kFeaturesOk);
}

TEST(MmioTransport, DriverFeaturesAreFrozenAfterFeaturesOk) {
  NetRig rig;
  rig.probe();
  const std::uint64_t before = rig.transport.driver_features();
  CounterDelta d(rig.transport.counters());
  rig.write32(mmio::kDriverFeaturesSel, 0);
  rig.write32(mmio::kDriverFeatures, 0);
  EXPECT_EQ(rig.transport.driver_features(), before);
  EXPECT_TRUE(d.moved(rig.transport.counters(), {{"features_write_late", 1}}));
}

TEST(MmioTransport, QueueRegistersOnlyBetweenFeaturesOkAndDriverOk) {
  NetRig rig;
  CounterDelta d(rig.transport.counters());
  rig.write32(mmio::kQueueSel, 0);
  rig.write32(mmio::kQueueNum, 64);  // before FEATURES_OK
  EXPECT_EQ(rig.read32(mmio::kQueueNum), 0u);
  rig.probe();
  rig.write32(mmio::kQueueSel, 0);
  rig.write32(mmio::kQueueNum, 64);  // after DRIVER_OK
  rig.write32(mmio::kQueueReady, 0);
  EXPECT_EQ(rig.read32(mmio::kQueueNum), 256u);
  EXPECT_EQ(rig.read32(mmio::kQueueReady), 1u);
  EXPECT_TRUE(d.moved(rig.transport.counters(), {{"queue_write_outside_window", 3}, {"resets", 1}}));
}

TEST(MmioTransport, ActivationWithABrokenQueueSetsNeedsReset) {
  NetRig rig;
  rig.probe_until_queues(~0ull, 256);
  rig.write32(mmio::kQueueSel, 1);
  rig.write32(mmio::kQueueNum, 100);  // not a power of two
  CounterDelta d(rig.transport.counters());
  rig.write32(mmio::kStatus, kAll);
  EXPECT_TRUE(rig.status() & kNeedsReset);
  EXPECT_FALSE(rig.device.active());
  EXPECT_EQ(rig.irqs, 1);
  EXPECT_EQ(rig.read32(mmio::kInterruptStatus), mmio::kIntConfig);
  EXPECT_TRUE(d.moved(rig.transport.counters(), {{"activation_failed", 1}, {"interrupts", 1}}));
}

TEST(MmioTransport, InterruptAckClearsOnlyTheAckedBits) {
  NetRig rig;
  rig.probe();
  rig.transport.queue_used(0);
  rig.transport.config_changed();
  EXPECT_EQ(rig.read32(mmio::kInterruptStatus), 3u);
  rig.write32(mmio::kInterruptAck, mmio::kIntVring);
  EXPECT_EQ(rig.read32(mmio::kInterruptStatus), mmio::kIntConfig);
  EXPECT_EQ(rig.read32(mmio::kConfigGeneration), 1u);
}

TEST(DeviceStatusTable, Transitions) {
  EXPECT_EQ(classify_status_write(0, 0), StatusStep::reset);
  EXPECT_EQ(classify_status_write(0, kAcknowledge), StatusStep::acknowledge);
  EXPECT_EQ(classify_status_write(kAcknowledge, kAcknowledge | kDriver), StatusStep::driver);
  EXPECT_EQ(classify_status_write(kAcknowledge | kDriver, kAcknowledge | kDriver | kFeaturesOk),
            StatusStep::features_ok);
  EXPECT_EQ(classify_status_write(kAcknowledge | kDriver | kFeaturesOk, kAll), StatusStep::driver_ok);
  EXPECT_EQ(classify_status_write(kAll, kAll), StatusStep::unchanged);
  EXPECT_EQ(classify_status_write(kAll, kAll | kFailed), StatusStep::failed);
  EXPECT_EQ(classify_status_write(kAcknowledge, kAcknowledge | kFailed), StatusStep::failed);
  EXPECT_EQ(classify_status_write(kAll, kAcknowledge), StatusStep::rejected_clear);
  EXPECT_EQ(classify_status_write(kAcknowledge | kFailed, kAcknowledge | kFailed | kDriver),
            StatusStep::rejected_order);
  // The driver echoes NEEDS_RESET back (read-modify-write); it is not a step.
  EXPECT_EQ(classify_status_write(kAll, kAll | kNeedsReset), StatusStep::unchanged);
  EXPECT_EQ(classify_status_write(0, kDriverOk), StatusStep::rejected_order);
}

}  // namespace
}  // namespace vnk::virtio
