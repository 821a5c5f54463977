// The user-mode network, as a NetBackend: the guest's frames are answered by
// a gateway inside this process instead of leaving on a wire.
//
// ARP for the gateway and DNS addresses is answered with the gateway MAC;
// DHCP gives the guest its lease. ICMP echo, UDP and TCP become host sockets
// (DatagramFlows, TcpFlows): the gateway address reaches the host's
// loopback, the DNS address the upstream resolver, other addresses
// themselves. Every frame ends in one counter.
//
// Host sockets join one internal epoll set, which is this backend's rx_fd():
// it turns readable when a socket has something for the guest. Everything
// runs on the caller's (the device's I/O) thread. Payload moves between host
// sockets and guest memory directly: TX frames are parsed from a copy of
// their headers and sent from the guest's buffers; RX data is received into
// the guest's buffer behind the headers usernet writes there.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <vector>

#include "backend/frame_ring.hpp"
#include "base/unique_fd.hpp"
#include "net/net_backend.hpp"
#include "usernet/datagram_flows.hpp"
#include "usernet/dhcp_server.hpp"
#include "usernet/dhcpv6_server.hpp"
#include "usernet/guest_neighbors.hpp"
#include "usernet/ip_reassembly.hpp"
#include "usernet/ndp_responder.hpp"
#include "usernet/pcap_writer.hpp"
#include "usernet/tcp/tcp_flows.hpp"
#include "usernet/usernet_config.hpp"
#include "usernet/usernet_counters.hpp"

namespace vnk::usernet {

class UserNet final : public net::NetBackend {
 public:
  // Of each TX frame only the headers are copied for parsing: Ethernet plus
  // the largest IPv4 and TCP headers. TCP payload never is; UDP datagrams
  // are copied up to kHeadCopy bytes (whole ones have their checksum checked,
  // DHCP is parsed), ICMP messages whole (their checksum covers them).
  static constexpr std::size_t kHeaderCopy = 14 + 60 + 60;
  static constexpr std::size_t kHeadCopy = 2048;
  static constexpr std::size_t kMaxFrame = 14 + 65535;
  static constexpr std::size_t kReplyQueueFrames = 64;
  static constexpr std::size_t kReplySlot = 2048;
  static constexpr long kTickMs = 100;
  // epoll_wait calls of 64 events each that one poll_host() makes at most.
  static constexpr unsigned kPollRounds = 16;

  // `cfg` must have passed validate(). Throws std::runtime_error with a
  // sentence for the user when a forwarded port cannot be opened.
  explicit UserNet(UsernetConfig cfg);
  ~UserNet() override;

  net::TxResult transmit(const net::TxFrame& frame) override;
  void flush_tx() override { datagrams_.flush(); }
  net::RxResult receive(std::span<const iovec> buffer) override;
  // Replies (ARP, DHCP, DNS, ICMP errors) go first and their length is known;
  // flow frames are sized by the buffer they are built in.
  [[nodiscard]] std::size_t next_frame_bound() const override {
    return replies_.empty() ? net::kMaxFrameSize : replies_.front_length();
  }
  [[nodiscard]] bool rx_pending() const override {
    return !replies_.empty() || tcp_.has_frames() || datagrams_.has_frames();
  }
  [[nodiscard]] int rx_fd() const override { return epoll_.get(); }
  [[nodiscard]] std::string_view name() const override { return "user"; }
  // With partial checksums TCP data toward the consumer carries only the
  // pseudo-header sum; with TSO a data segment may hold up to 64 KiB.
  void set_rx_offloads(net::RxOffloads offloads) override { rx_offloads_ = offloads; }
  // usernet terminates every TCP and UDP flow: a partial checksum needs no
  // completing, and a TCP GSO frame's payload goes to the socket as one.
  [[nodiscard]] net::TxOffloads tx_offloads() const override { return {true, true, true}; }

  [[nodiscard]] const UsernetConfig& config() const noexcept { return cfg_; }
  [[nodiscard]] const UsernetCounters& counters() const noexcept { return counters_; }
  // The guest MAC seen last (or configured).
  [[nodiscard]] std::optional<MacAddress> guest_mac() const noexcept { return guests_.last(); }
  [[nodiscard]] const GuestNeighbors& neighbors() const noexcept { return guests_; }
  [[nodiscard]] bool leased() const noexcept { return dhcp_.leased(); }
  // False when this host lets us open neither ping sockets
  // (net.ipv4.ping_group_range) nor a raw ICMP socket (CAP_NET_RAW): guest
  // pings are then dropped and counted.
  [[nodiscard]] bool icmp_available() const noexcept { return icmp_available_; }
  [[nodiscard]] std::size_t tcp_flows() const noexcept { return tcp_.size(); }
  [[nodiscard]] std::size_t pcap_frames() const noexcept { return pcap_ ? pcap_->frames() : 0; }
  [[nodiscard]] std::size_t datagram_flows() const noexcept { return datagrams_.size(); }
  // Takes the events waiting on rx_fd() (connects completing, data, timers).
  // receive() calls it; tests may call it directly.
  void poll_host();
  // Runs the flows' timers at the clock's time now (the internal timer does
  // this every kTickMs); tests with their own clock call it directly.
  void run_timers();
  // The guest's IPv6 addresses seen in Neighbor Discovery, the most recent last.
  [[nodiscard]] std::span<const packet::Ipv6Address> ipv6_guest_addresses() const noexcept {
    return ndp_.guest_addresses();
  }

 private:
  void handle_arp(std::span<const std::byte> payload);
  // `copied` bytes of the frame are in work_.
  void handle_ipv4(const net::TxFrame& frame, std::size_t copied);
  void handle_ipv6(const net::TxFrame& frame, std::size_t copied);
  // UDP and TCP over either family, `ip` parsed from work_.
  void handle_transport(const net::TxFrame& frame, const packet::IpPacket& ip);
  // An ICMP or ICMPv6 echo request with identifier `id` to its ping flow.
  void relay_echo(const net::TxFrame& frame, const packet::IpPacket& ip, std::uint16_t id);
  // An IPv4 fragment (`ip`, parsed from work_): held until its datagram is
  // whole, which then goes through handle_ipv4 as one packet.
  void reassemble(const net::TxFrame& frame, const packet::Ipv4& ip);
  // An IPv6 fragment the same way: its datagram, once whole, goes through
  // handle_ipv6 with the unfragmentable part in front of it.
  void reassemble(const net::TxFrame& frame, const packet::Ipv6& ip);
  // The completed datagram as one frame in front of its payload: this
  // fragment's Ethernet header (from work_), then the first fragment's IP
  // header, whose fields the caller sets.
  std::span<std::byte> reassembled_frame();
  // Hands that frame to handle_ipv4 or handle_ipv6 as one TX frame.
  void transmit_reassembled(std::span<std::byte> whole_frame, bool v6);
  // Room kept in front of a reassembled payload for Ethernet and the IP
  // header (IPv4 with options, or IPv6's unfragmentable part).
  static constexpr std::size_t kMaxReassemblyHeader = 128;
  static constexpr std::size_t kReassemblyHeadroom = 14 + kMaxReassemblyHeader;
  // Queues a reply built by `build` (returns its size, 0 for none).
  template <typename Build>
  void queue_reply(Build&& build);
  void update_timer();
  // Tells the guest its datagram `ip` (parsed from work_) was refused
  // (`why`; nothing for Refusal::none): ICMP or ICMPv6 Destination
  // Unreachable, administratively prohibited.
  void queue_unreachable(const packet::IpPacket& ip, DatagramFlows::Refusal why);

  UsernetConfig cfg_;
  HostFeatures host_;  // cfg_.host, or the start-up probe
  UsernetCounters counters_;
  FdBudget fds_;  // set once the forwards' listeners are open
  UniqueFd epoll_;
  UniqueFd timer_;
  std::uint64_t (*clock_)() noexcept;
  net::RxOffloads rx_offloads_;
  bool timer_armed_ = false;
  bool icmp_available_ = false;
  DhcpServer dhcp_;
  Dhcpv6Server dhcpv6_;
  NdpResponder ndp_;
  IpReassembly reassembly_;
  backend::FrameRing replies_;
  GuestNeighbors guests_;
  MacAddress frame_src_;  // the source MAC of the TX frame being handled
  DatagramFlows datagrams_;
  TcpFlows tcp_;
  void accept_forwarded(std::uint32_t index);
  void open_forwards();

  std::unique_ptr<PcapWriter> pcap_;
  std::vector<UniqueFd> tcp_listeners_;  // index i serves tcp_listener_forward_[i]
  std::vector<UsernetConfig::Forward> tcp_listener_forward_;
  unsigned receives_since_poll_ = 0;
  std::vector<std::byte> work_;  // kMaxFrame, allocated once; holds the copied part of a TX frame
};

}  // namespace vnk::usernet
