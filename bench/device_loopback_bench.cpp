// Frames per second through the virtio-net device with the loopback backend,
// driven by the mock driver over virtio-MMIO: each iteration the driver posts
// a batch of TX chains, kicks once, and the device sends every frame to the
// loopback backend and delivers it into a posted RX buffer (one copy,
// guest TX buffer -> loopback ring -> guest RX buffer, is two memcpys).
// The driver side reuses pre-written buffers so the figure is the device's
// cost, not the mock driver's.
#include <benchmark/benchmark.h>

#include <vector>

#include "base/log.hpp"
#include "net_rig.hpp"

namespace {

using namespace vnk;

constexpr std::uint16_t kQueueSize = 256;
constexpr std::size_t kBatch = 64;

void BM_LoopbackFrames(benchmark::State& state) {
  log::set_level(log::Level::error);
  const auto frame_len = static_cast<std::size_t>(state.range(0));
  test::NetRig rig;
  rig.probe({}, kQueueSize);
  auto& tx = rig.txq();
  auto& rx = rig.rxq();

  // One pre-written TX buffer per descriptor (header + frame in one
  // descriptor, as Linux sends when the header fits in the skb headroom).
  const auto frame = test::make_frame(frame_len, 1);
  std::vector<test::Buffer> tx_bufs(kQueueSize);
  for (auto& b : tx_bufs) {
    b = {rig.alloc(net::kNetHeaderSize + frame_len, 64), static_cast<std::uint32_t>(net::kNetHeaderSize + frame_len),
         false};
    rig.write_guest(b.addr, std::vector<std::byte>(net::kNetHeaderSize));
    rig.write_guest(GuestAddress{b.addr.value + net::kNetHeaderSize}, frame);
  }
  std::vector<test::Buffer> rx_bufs(kQueueSize);
  for (auto& b : rx_bufs) {
    b = {rig.alloc(net::kNetHeaderSize + frame_len, 64), static_cast<std::uint32_t>(net::kNetHeaderSize + frame_len),
         true};
    rx.add(std::span(&b, 1));
  }

  std::uint64_t frames = 0;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kBatch; ++i) {
      const std::uint16_t head = tx.next_free_head();
      tx.add(std::span(&tx_bufs[head], 1));
    }
    rig.kick_tx();
    while (auto u = rx.pop_used()) {
      if (u->len != net::kNetHeaderSize + frame_len) state.SkipWithError("short RX frame");
      rx.add(std::span(&rx_bufs[u->id], 1));  // Linux refills the ring the same way
      ++frames;
    }
    while (tx.pop_used()) {
    }
  }
  if (rig.counters().rx_packets.get() != rig.counters().tx_packets.get())
    state.SkipWithError("frames lost between TX and RX");
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
  state.SetBytesProcessed(static_cast<std::int64_t>(frames * frame_len));
  state.counters["frame_bytes"] = static_cast<double>(frame_len);
  state.counters["interrupts_per_frame"] = benchmark::Counter(
      static_cast<double>(rig.counters().rx_interrupts.get() + rig.counters().tx_interrupts.get()) /
      static_cast<double>(frames ? frames : 1));
}

BENCHMARK(BM_LoopbackFrames)->Arg(64)->Arg(1500)->Arg(65536)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
