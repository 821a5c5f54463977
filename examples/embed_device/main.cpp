// Embedding vnetkit's virtio-net device in a VMM, in one file.
//
// A VMM gives the device guest memory and a backend, and forwards the guest's
// MMIO accesses to the transport (on a KVM_EXIT_MMIO in its 4 KiB window).
// Here the "guest" is a few lines of driver code in the same process, so the
// program runs anywhere: it probes the device as Linux's virtio_mmio driver
// does, sets up the two queues, sends one Ethernet frame on TX and receives
// it back on RX through the loopback backend.
//
// Build against an installed vnetkit:
//   cmake -S . -B build -DCMAKE_PREFIX_PATH=/usr/local && cmake --build build
//   g++ -o embed_device main.cpp $(pkg-config --cflags --libs vnetkit)
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>

#include "backend/loopback_backend.hpp"
#include "memory/guest_memory.hpp"
#include "net/net_config.hpp"
#include "net/net_device.hpp"
#include "net/net_features.hpp"
#include "net/net_header.hpp"
#include "virtio/features.hpp"
#include "virtio/mmio_transport.hpp"

namespace mmio = vnk::virtio::mmio;

namespace {

constexpr std::uint64_t kBase = 0x8000'0000;  // guest-physical start of RAM
constexpr std::uint16_t kQueueSize = 16;

// Guest-physical layout of one split virtqueue (desc, avail, used) and its buffer.
struct QueueLayout {
  std::uint64_t desc, avail, used, buffer;
};
constexpr QueueLayout kRx{kBase + 0x0000, kBase + 0x1000, kBase + 0x2000, kBase + 0x10000};
constexpr QueueLayout kTx{kBase + 0x4000, kBase + 0x5000, kBase + 0x6000, kBase + 0x20000};

// The VMM's side: a 32-bit MMIO access forwarded to the transport.
std::uint32_t mmio_read(vnk::virtio::MmioTransport& t, std::uint64_t offset) {
  std::array<std::byte, 4> b{};
  t.read(offset, b);
  std::uint32_t v = 0;
  std::memcpy(&v, b.data(), 4);
  return v;
}
void mmio_write(vnk::virtio::MmioTransport& t, std::uint64_t offset, std::uint32_t v) {
  std::array<std::byte, 4> b{};
  std::memcpy(b.data(), &v, 4);
  t.write(offset, b);
}

template <typename T>
void poke(const vnk::GuestMemory& mem, std::uint64_t gpa, T v) {
  (void)mem.write_obj(vnk::GuestAddress{gpa}, v);
}
template <typename T>
T peek(const vnk::GuestMemory& mem, std::uint64_t gpa) {
  return mem.read_obj<T>(vnk::GuestAddress{gpa}).value_or(T{});
}

// The guest's side: one descriptor in slot 0, published on the avail ring.
void post_buffer(const vnk::GuestMemory& mem, const QueueLayout& q, std::uint32_t len, bool device_writes) {
  poke<std::uint64_t>(mem, q.desc, q.buffer);
  poke<std::uint32_t>(mem, q.desc + 8, len);
  poke<std::uint16_t>(mem, q.desc + 12, device_writes ? 2 : 0);  // VIRTQ_DESC_F_WRITE
  poke<std::uint16_t>(mem, q.avail + 4, 0);                        // ring[0] = head 0
  poke<std::uint16_t>(mem, q.avail + 2, 1);                        // idx = 1
}

void setup_queue(vnk::virtio::MmioTransport& t, std::uint32_t index, const QueueLayout& q) {
  mmio_write(t, mmio::kQueueSel, index);
  mmio_write(t, mmio::kQueueNum, kQueueSize);
  mmio_write(t, mmio::kQueueDescLow, static_cast<std::uint32_t>(q.desc));
  mmio_write(t, mmio::kQueueDescHigh, static_cast<std::uint32_t>(q.desc >> 32));
  mmio_write(t, mmio::kQueueAvailLow, static_cast<std::uint32_t>(q.avail));
  mmio_write(t, mmio::kQueueAvailHigh, static_cast<std::uint32_t>(q.avail >> 32));
  mmio_write(t, mmio::kQueueUsedLow, static_cast<std::uint32_t>(q.used));
  mmio_write(t, mmio::kQueueUsedHigh, static_cast<std::uint32_t>(q.used >> 32));
  mmio_write(t, mmio::kQueueReady, 1);
}

}  // namespace

int main() {
  // 1. Guest RAM: one 1 MiB region (a memfd the VMM would also give KVM).
  const vnk::RegionSpec ram{vnk::GuestAddress{kBase}, 1 << 20};
  auto memory = vnk::GuestMemory::create(std::span(&ram, 1));
  if (!memory) {
    std::fprintf(stderr, "embed_device: cannot create guest memory\n");
    return 1;
  }
  auto mem = std::make_shared<const vnk::GuestMemory>(std::move(*memory));

  // 2. A backend and the device on the MMIO transport. The IRQ callback is
  //    where a VMM writes its irqfd.
  vnk::backend::LoopbackBackend backend;
  auto config = vnk::net::normalize(vnk::net::NetConfig{});
  if (!config) {
    std::fprintf(stderr, "embed_device: %s\n", config.error().c_str());
    return 1;
  }
  vnk::net::NetDevice device(*config, backend);
  unsigned interrupts = 0;
  vnk::virtio::MmioTransport transport(device, mem, [&interrupts] { ++interrupts; });

  // 3. What the guest's virtio_mmio driver reads first.
  if (mmio_read(transport, mmio::kMagicValue) != mmio::kMagic || mmio_read(transport, mmio::kDeviceId) != 1) {
    std::fprintf(stderr, "embed_device: not a virtio-net device\n");
    return 1;
  }
  std::printf("virtio-mmio version %u, device id %u (net)\n", mmio_read(transport, mmio::kVersionReg),
              mmio_read(transport, mmio::kDeviceId));

  // 4. Status and features, in the order virtio 1.2 §3.1.1 asks. This driver
  //    takes only VERSION_1 and MAC: no offloads, no mergeable buffers.
  using namespace vnk::virtio::status;
  mmio_write(transport, mmio::kStatus, kAcknowledge);
  mmio_write(transport, mmio::kStatus, kAcknowledge | kDriver);
  const std::uint64_t wanted = vnk::virtio::bit(vnk::virtio::kFeatureVersion1) | vnk::virtio::bit(vnk::net::kFeatureMac);
  mmio_write(transport, mmio::kDriverFeaturesSel, 0);
  mmio_write(transport, mmio::kDriverFeatures, static_cast<std::uint32_t>(wanted));
  mmio_write(transport, mmio::kDriverFeaturesSel, 1);
  mmio_write(transport, mmio::kDriverFeatures, static_cast<std::uint32_t>(wanted >> 32));
  mmio_write(transport, mmio::kStatus, kAcknowledge | kDriver | kFeaturesOk);
  if ((mmio_read(transport, mmio::kStatus) & kFeaturesOk) == 0) {
    std::fprintf(stderr, "embed_device: the device refused the features\n");
    return 1;
  }
  std::array<std::byte, 6> mac{};
  transport.read(mmio::kConfig, mac);
  std::printf("MAC %02x:%02x:%02x:%02x:%02x:%02x\n", unsigned(mac[0]), unsigned(mac[1]), unsigned(mac[2]),
              unsigned(mac[3]), unsigned(mac[4]), unsigned(mac[5]));

  setup_queue(transport, 0, kRx);
  setup_queue(transport, 1, kTx);
  mmio_write(transport, mmio::kStatus, kAcknowledge | kDriver | kFeaturesOk | kDriverOk);

  // 5. One RX buffer, then one frame on TX: a 12-byte virtio-net header
  //    (all zero: no offload) and a 60-byte broadcast frame.
  post_buffer(*mem, kRx, 2048, true);
  mmio_write(transport, mmio::kQueueNotify, 0);
  std::array<std::byte, vnk::net::kNetHeaderSize + 60> out{};
  std::memset(out.data() + vnk::net::kNetHeaderSize, 0xff, 6);  // destination: broadcast
  std::memcpy(out.data() + vnk::net::kNetHeaderSize + 6, mac.data(), 6);
  out[vnk::net::kNetHeaderSize + 12] = std::byte{0x88};  // EtherType 0x88b5 (local experimental)
  out[vnk::net::kNetHeaderSize + 13] = std::byte{0xb5};
  std::memcpy(out.data() + vnk::net::kNetHeaderSize + 14, "hello from the guest", 20);
  (void)mem->write(vnk::GuestAddress{kTx.buffer}, out);
  post_buffer(*mem, kTx, out.size(), false);
  mmio_write(transport, mmio::kQueueNotify, 1);  // the device transmits now, on this thread
  device.backend_ready();                        // a VMM calls this when backend.rx_fd() is readable

  // 6. The frame came back on RX: used ring entry 0, and the same bytes.
  const auto used_idx = peek<std::uint16_t>(*mem, kRx.used + 2);
  const auto used_len = peek<std::uint32_t>(*mem, kRx.used + 8);
  std::array<std::byte, out.size()> in{};
  (void)mem->read(vnk::GuestAddress{kRx.buffer}, in);
  const bool same = used_idx == 1 && used_len == out.size() &&
                    std::memcmp(in.data() + vnk::net::kNetHeaderSize, out.data() + vnk::net::kNetHeaderSize, 60) == 0;
  std::printf("TX used %u, RX used %u (%u bytes), %u interrupts: %s\n", peek<std::uint16_t>(*mem, kTx.used + 2),
              used_idx, used_len, interrupts, same ? "frame looped back intact" : "FRAME LOST OR CHANGED");
  return same ? 0 : 1;
}
