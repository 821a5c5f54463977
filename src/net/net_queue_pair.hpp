// One RX/TX queue pair of the net device, independent of any transport.
//
// The MMIO transport drives it from QUEUE_NOTIFY on the vCPU thread; the
// vhost-user server drives the same object from kick eventfds on its I/O
// thread. Not thread-safe: one thread owns a queue pair at a time.
#pragma once

#include <cstdint>
#include <memory>

#include "net/engine_context.hpp"
#include "net/rx_engine.hpp"
#include "net/tx_engine.hpp"

namespace vnk::net {

class NetQueuePair {
 public:
  NetQueuePair(std::shared_ptr<const GuestMemory> memory, EngineContext ctx, virtio::Virtqueue rx,
               virtio::Virtqueue tx, std::uint16_t rx_index);

  // Each call does a bounded amount of work (one drain budget per queue)
  // and returns true when more is waiting, so the caller's event loop can
  // serve its other sources before calling again: a guest that keeps TX
  // busy must not starve control messages, host sockets or signals.
  //
  // The driver kicked TX: send what it posted, then deliver anything that
  // became pending (a loopback backend echoes TX straight back).
  [[nodiscard]] bool on_tx_kick();
  // The driver posted RX buffers, or the backend has frames: deliver them.
  [[nodiscard]] bool on_rx_ready();
  // One bounded round of both directions; true when more is waiting.
  [[nodiscard]] bool resume();
  // A busy-poll round: as on_tx_kick(), but an empty queue leaves the
  // driver's notifications off. Call resume() before going back to waiting
  // for kicks, so notifications are on again and nothing posted meanwhile
  // is missed.
  [[nodiscard]] bool poll();

  // Swaps the memory layout (vhost-user SET_MEM_TABLE) between drains.
  void set_memory(std::shared_ptr<const GuestMemory> memory);

  [[nodiscard]] RxEngine& rx() noexcept { return rx_; }
  [[nodiscard]] TxEngine& tx() noexcept { return tx_; }

 private:
  std::shared_ptr<const GuestMemory> memory_;
  EngineContext ctx_;
  RxEngine rx_;
  TxEngine tx_;
};

}  // namespace vnk::net
