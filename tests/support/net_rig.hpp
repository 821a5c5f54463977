// A virtio-net device on the MMIO transport with a mock Linux driver in front
// of it, so a unit test reads like a driver talking to the device:
//
//   NetRig rig;                     // memory, loopback backend, device, transport
//   rig.probe();                    // ACK, DRIVER, features, FEATURES_OK, queues, DRIVER_OK
//   rig.post_rx(8, 2048);
//   rig.send(frame);                // TX chain + QUEUE_NOTIFY
//   auto got = rig.take_rx();       // completed RX chains
//
// Guest memory is one region at a non-zero guest-physical base so an address
// that is really an offset is caught. Every TX head owns a fixed slot of guest
// memory (buffers and an indirect table) that is reused, so a benchmark can
// run for ever without the allocator growing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "backend/loopback_backend.hpp"
#include "driver_queue.hpp"
#include "net/net_device.hpp"
#include "virtio/features.hpp"
#include "virtio/mmio_transport.hpp"

namespace vnk::test {

constexpr GuestAddress kGuestBase{0x4000'0000};
constexpr std::uint64_t kGuestSize = 64ull << 20;

// How send() lays a frame out in the TX chain.
struct TxLayout {
  bool header_separate = true;   // header in its own descriptor (Linux's any_header_sg off)
  std::uint32_t split_header_at = 0;  // >0: header split across two descriptors at this byte
  std::uint32_t chunk = 0;       // >0: frame split into descriptors of this many bytes
  bool indirect = false;         // one INDIRECT descriptor pointing at a table
};

struct RxFrame {
  std::uint32_t used_len = 0;   // of all its buffers
  net::NetHeader header;
  std::vector<std::byte> data;  // frame bytes after the 12-byte header
  std::uint16_t buffers = 1;    // used elements it took (num_buffers with MRG_RXBUF)
};

struct RigOptions {
  net::NetConfig config{};
  net::NetBackend* backend = nullptr;  // default: the rig's own loopback backend
  net::FrameInterceptor* interceptor = nullptr;
};

class NetRig {
 public:
  explicit NetRig(RigOptions opts = {});

  // MMIO register access as a driver does it (32-bit, little-endian).
  std::uint32_t read32(std::uint64_t offset);
  void write32(std::uint64_t offset, std::uint32_t value);
  std::vector<std::byte> read_config(std::uint64_t offset, std::size_t width);
  [[nodiscard]] std::uint64_t device_features();

  // Linux's virtio_dev_probe + virtnet_probe, as far as the transport sees it.
  // Accepts `features & offered` unless `force_features` writes them as given.
  // Returns the status register afterwards.
  std::uint32_t probe(std::optional<std::uint64_t> features = {}, std::uint16_t queue_size = 256,
                      bool force_features = false);
  // Same sequence up to (not including) DRIVER_OK.
  std::uint32_t probe_until_queues(std::uint64_t features, std::uint16_t queue_size, bool force_features = false);
  // Configures queue `index` at the driver queue's addresses.
  void setup_queue(std::uint16_t index, std::uint16_t size);

  DriverQueue& rxq() { return *rxq_; }
  DriverQueue& txq() { return *txq_; }
  void kick_rx() { write32(virtio::mmio::kQueueNotify, 0); }
  void kick_tx() { write32(virtio::mmio::kQueueNotify, 1); }

  // A fresh guest allocation (never freed).
  GuestAddress alloc(std::uint64_t size, std::uint64_t align = 16);
  void write_guest(GuestAddress at, std::span<const std::byte> bytes);

  // Queues one frame on TX (header zeroed unless `header` is given); no kick.
  std::optional<std::uint16_t> queue_tx(std::span<const std::byte> frame, TxLayout layout = {},
                                        const net::NetHeader& header = {});
  // queue_tx + kick.
  std::optional<std::uint16_t> send(std::span<const std::byte> frame, TxLayout layout = {});
  // Completed TX chains (their buffers become reusable).
  std::size_t reap_tx();

  // Posts `count` RX buffers of `size` bytes each (device-writable).
  void post_rx(std::size_t count, std::uint32_t size);
  // Completed RX frames; with MRG_RXBUF the buffers of one frame (the
  // header's num_buffers) are joined as a driver does.
  std::vector<RxFrame> take_rx();

  [[nodiscard]] const net::NetCounters& counters() const { return device.counters(); }
  [[nodiscard]] std::uint32_t status() { return read32(virtio::mmio::kStatus); }

  std::shared_ptr<const GuestMemory> memory;
  backend::LoopbackBackend loopback;
  net::NetDevice device;
  virtio::MmioTransport transport;
  int irqs = 0;

 private:
  GuestAddress tx_slot(std::uint16_t head);

  std::uint64_t next_free_;
  std::optional<DriverQueue> rxq_, txq_;
  std::vector<GuestAddress> tx_slots_;
  std::map<std::uint16_t, std::pair<GuestAddress, std::uint32_t>> rx_buffers_;
};

// An Ethernet frame of `len` bytes: broadcast destination, the default MAC
// as source, ethertype 0x88b5 (local experimental), then a byte pattern
// seeded by `seed` so corruption shows.
std::vector<std::byte> make_frame(std::size_t len, std::uint8_t seed = 0);

}  // namespace vnk::test
