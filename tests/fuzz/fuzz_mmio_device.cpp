// libFuzzer target: a fuzzed driver against the virtio-MMIO transport and the
// net device, over fuzzed guest memory.
//
// Input: a sequence of operations, each an opcode byte and its operands.
//   0 write  register: u16 offset, u32 value
//   1 read   register: u16 offset, u8 width
//   2 poke   guest memory: u16 offset, u8 length, bytes
//   3 kick   TX       4 kick RX       5 backend has frames
//   6 link   toggle   7 probe: u64 features, u8 queue-size exponent
//   8 notify queue: u32 value
// Probe lays the rings at fixed offsets of a 64 KiB guest region (desc
// 0x0000/0x4000, avail 0x1000/0x5000, used 0x2000/0x6000), so pokes there
// become descriptors, ring entries and indices.
// Invariants checked beyond the sanitizers: the device never reports more
// completed chains than were made available, counters never go backwards,
// and (inputs of odd length: the backend takes TX offloads, so CSUM and
// HOST_TSO4 are offered) no offload header the backend receives points
// outside its frame.
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>

#include "backend/loopback_backend.hpp"
#include "base/byte_order.hpp"
#include "base/log.hpp"
#include "net/net_device.hpp"
#include "virtio/features.hpp"
#include "virtio/mmio_transport.hpp"

namespace {

using namespace vnk;
constexpr GuestAddress kBase{0x10000};
constexpr std::uint64_t kSize = 0x10000;

class Reader {
 public:
  Reader(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  bool empty() const { return pos_ >= n_; }
  template <typename T>
  T get() {
    T v{};
    const std::size_t k = std::min(sizeof(T), n_ - pos_);
    std::memcpy(&v, d_ + pos_, k);
    pos_ += k;
    return v;
  }
  std::span<const std::uint8_t> bytes(std::size_t k) {
    k = std::min(k, n_ - pos_);
    auto s = std::span(d_ + pos_, k);
    pos_ += k;
    return s;
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_;
  std::size_t pos_ = 0;
};

std::shared_ptr<const GuestMemory> memory() {
  static auto mem = [] {
    log::set_level(log::Level::error);
    const RegionSpec spec{kBase, kSize, 0};
    return std::make_shared<const GuestMemory>(*GuestMemory::create(std::span(&spec, 1)));
  }();
  return mem;
}

void write32(virtio::MmioTransport& t, std::uint64_t off, std::uint32_t v) {
  std::array<std::byte, 4> raw{};
  store_le<std::uint32_t>(raw.data(), v);
  t.write(off, raw);
}

void probe(virtio::MmioTransport& t, std::uint64_t features, std::uint8_t exp) {
  using namespace virtio;
  const std::uint16_t size = static_cast<std::uint16_t>(1u << (exp % 9));  // 1..256
  write32(t, mmio::kStatus, 0);
  write32(t, mmio::kStatus, status::kAcknowledge);
  write32(t, mmio::kStatus, status::kAcknowledge | status::kDriver);
  write32(t, mmio::kDriverFeaturesSel, 0);
  write32(t, mmio::kDriverFeatures, static_cast<std::uint32_t>(features));
  write32(t, mmio::kDriverFeaturesSel, 1);
  write32(t, mmio::kDriverFeatures, static_cast<std::uint32_t>(features >> 32) | 1);  // VERSION_1
  write32(t, mmio::kStatus, status::kAcknowledge | status::kDriver | status::kFeaturesOk);
  for (std::uint32_t q = 0; q < 2; ++q) {
    const std::uint64_t base = kBase.value + q * 0x4000;
    write32(t, mmio::kQueueSel, q);
    write32(t, mmio::kQueueNum, size);
    write32(t, mmio::kQueueDescLow, static_cast<std::uint32_t>(base));
    write32(t, mmio::kQueueAvailLow, static_cast<std::uint32_t>(base + 0x1000));
    write32(t, mmio::kQueueUsedLow, static_cast<std::uint32_t>(base + 0x2000));
    write32(t, mmio::kQueueReady, 1);
  }
  write32(t, mmio::kStatus, status::kAcknowledge | status::kDriver | status::kFeaturesOk | status::kDriverOk);
}

// A loopback backend that, for inputs of odd length, takes TX offloads
// (so CSUM and HOST_TSO4 are offered and fuzzed headers reach
// check_tx_header's field checks) and checks what the device let through.
class OffloadLoopback final : public net::NetBackend {
 public:
  explicit OffloadLoopback(bool offloads) : offloads_(offloads) {}
  net::TxResult transmit(const net::TxFrame& f) override {
    const auto& h = f.header;
    if ((h.flags & net::NetHeader::kFlagNeedsCsum) != 0 &&
        (h.csum_start < net::kEthernetHeaderSize || std::size_t{h.csum_start} + h.csum_offset + 2 > f.length))
      __builtin_trap();
    if (h.gso_type != net::NetHeader::kGsoNone &&
        (h.gso_type != net::NetHeader::kGsoTcpV4 || h.gso_size == 0 || h.hdr_len > f.length))
      __builtin_trap();
    return loop_.transmit(f);
  }
  net::RxResult receive(std::span<const iovec> buffer) override { return loop_.receive(buffer); }
  [[nodiscard]] bool rx_pending() const override { return loop_.rx_pending(); }
  [[nodiscard]] std::string_view name() const override { return "offload-loopback"; }
  [[nodiscard]] net::TxOffloads tx_offloads() const override { return {offloads_, offloads_}; }
  [[nodiscard]] const backend::LoopbackBackend& inner() const { return loop_; }

 private:
  backend::LoopbackBackend loop_{8};
  bool offloads_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto mem = memory();
  (void)mem->fill(kBase, kSize, std::byte{0});
  OffloadLoopback loopback(size % 2 == 1);
  net::NetDevice device(net::NetConfig{}, loopback);
  virtio::MmioTransport transport(device, mem, [] {});
  Reader in(data, size);
  std::uint64_t previous_tx = 0;
  for (int ops = 0; !in.empty() && ops < 256; ++ops) {
    switch (in.get<std::uint8_t>() % 9) {
      case 0: {
        const auto off = in.get<std::uint16_t>() % 0x200u;
        write32(transport, off, in.get<std::uint32_t>());
        break;
      }
      case 1: {
        const auto off = in.get<std::uint16_t>() % 0x200u;
        std::array<std::byte, 8> buf{};
        transport.read(off, std::span(buf).first(in.get<std::uint8_t>() % 9));
        break;
      }
      case 2: {
        const auto off = in.get<std::uint16_t>();
        const auto len = in.get<std::uint8_t>();
        auto bytes = in.bytes(len);
        (void)mem->write(GuestAddress{kBase.value + off}, std::as_bytes(bytes));  // may run off the end: refused
        break;
      }
      case 3: write32(transport, virtio::mmio::kQueueNotify, 1); break;
      case 4: write32(transport, virtio::mmio::kQueueNotify, 0); break;
      case 5: device.backend_ready(); break;
      case 6: device.set_link_up(!device.link_up()); break;
      case 7: {
        const auto f = in.get<std::uint64_t>();
        probe(transport, f & device.device_features(), in.get<std::uint8_t>());
        break;
      }
      case 8: write32(transport, virtio::mmio::kQueueNotify, in.get<std::uint32_t>()); break;
    }
    const std::uint64_t tx = device.counters().tx_packets.get();
    if (tx < previous_tx) __builtin_trap();
    previous_tx = tx;
  }
  // Every frame the loopback accepted was either delivered or is still queued.
  const auto& lc = loopback.inner().counters();
  if (lc.frames_queued.get() != lc.frames_delivered.get() + loopback.inner().queued()) __builtin_trap();
  return 0;
}
