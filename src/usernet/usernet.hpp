// The user-mode network, as a NetBackend: the guest's frames are answered by
// a gateway inside this process instead of leaving on a wire.
//
// Built so far: the guest's MAC is learned from its frames; ARP for the
// gateway and DNS addresses is answered with the gateway MAC; DHCP gives the
// guest its lease (address, mask, router, DNS, MTU, lease time). Frames for
// protocols not served yet are dropped and counted by reason.
//
// Replies wait in a bounded FrameRing for the guest's RX buffers.
#pragma once

#include <array>
#include <optional>

#include "backend/frame_ring.hpp"
#include "net/net_backend.hpp"
#include "usernet/dhcp_server.hpp"
#include "usernet/usernet_config.hpp"
#include "usernet/usernet_counters.hpp"

namespace vnk::usernet {

class UserNet final : public net::NetBackend {
 public:
  // Frames handled on the TX path are copied into a working buffer this big;
  // control traffic (ARP, DHCP) is far smaller.
  static constexpr std::size_t kWorkBufferSize = 2048;
  static constexpr std::size_t kReplyQueueFrames = 64;

  // `cfg` must have passed validate().
  explicit UserNet(UsernetConfig cfg);

  net::TxResult transmit(const net::TxFrame& frame) override;
  net::RxResult receive(std::span<const iovec> buffer) override;
  [[nodiscard]] bool rx_pending() const override { return !replies_.empty(); }
  [[nodiscard]] std::string_view name() const override { return "user"; }

  [[nodiscard]] const UsernetConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] const UsernetCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] std::optional<MacAddress> guest_mac() const noexcept { return guest_mac_; }
  [[nodiscard]] bool leased() const noexcept { return dhcp_.leased(); }

 private:
  void handle_arp(std::span<const std::byte> payload);
  void handle_ipv4(std::span<const std::byte> payload);
  // Queues a reply built by `build` (returns its size, 0 for none).
  template <typename Build>
  void queue_reply(Build&& build);

  UsernetConfig cfg_;
  UsernetCounters counters_;
  DhcpServer dhcp_;
  backend::FrameRing replies_;
  std::optional<MacAddress> guest_mac_;
  std::array<std::byte, kWorkBufferSize> work_{};
};

}  // namespace vnk::usernet
