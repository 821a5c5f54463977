// UDP and ICMP echo over either IP family, each guest flow mapped to one
// connected host socket.
//
// A flow is keyed by the guest's 5-tuple (for ICMP the echo identifier takes
// the place of the guest port). Its host socket is a connected UDP socket
// of the destination's family (which may differ from the guest's: a query
// to the DNS address reaches the resolver over whichever family it has), or
// an unprivileged ping socket (SOCK_DGRAM, IPPROTO_ICMP or IPPROTO_ICMPV6)
// whose kernel-chosen identifier is swapped back to the guest's on replies. Where ping
// sockets are not permitted but raw ones are, ICMP flows share one raw
// socket (RawIcmp, IPv4 only) and usernet chooses each flow's identifier. Small
// datagrams from the guest are held in a DatagramBatch and leave with one
// sendmmsg() per run of datagrams to the same socket (flush()); larger ones
// are sent straight from guest memory. Replies are received straight into
// the guest's RX buffer behind the headers usernet writes.
//
// The table (FlowTable) is bounded: the least recently used flow is evicted
// when it is full, never a forward's listener
// and idle flows close after a timeout; DNS flows, one per query port, close
// sooner. Nothing is allocated per datagram.
#pragma once

#include <netinet/in.h>
#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "base/unique_fd.hpp"
#include "packet/headers.hpp"
#include "usernet/datagram_batch.hpp"
#include "usernet/flow_env.hpp"
#include "usernet/raw_icmp.hpp"

namespace vnk::usernet {

class DatagramFlows {
 public:
  static constexpr std::size_t kMaxFlows = 4096;
  static constexpr std::uint64_t kUdpIdleMs = 120'000;
  static constexpr std::uint64_t kDnsIdleMs = 10'000;
  static constexpr std::uint64_t kIcmpIdleMs = 30'000;

  // Where pings must go through the raw socket, it is opened here, at
  // start-up: later the sandbox has dropped CAP_NET_RAW.
  explicit DatagramFlows(FlowEnv env);
  ~DatagramFlows();

  // A datagram from the guest: UDP (`port`s are UDP ports) or an ICMP or
  // ICMPv6 echo request (`guest_port` is the echo identifier, `remote_port`
  // 0). `payload` is the UDP payload or the whole ICMP message, in guest
  // memory; the addresses are of one family.
  // Why a new flow was refused, when the guest should be told: by the
  // reachability policy or for want of open files (prohibited), or because
  // the host has no route to the destination (unreachable: an IPv6 address
  // on a host without IPv6, say). Other failures are only counted.
  enum class Refusal : std::uint8_t { none, prohibited, unreachable };
  Refusal from_guest(std::uint8_t protocol, const IpAddress& guest_ip, std::uint16_t guest_port, const IpAddress& remote,
                  std::uint16_t remote_port, std::span<const iovec> payload, std::size_t length);
  // Sends the datagrams from_guest() is holding (end of a batch of frames).
  void flush();
  // Listens for `udp:` port forwards: datagrams to the bound host socket
  // reach the guest at guest_port from `remote` (the gateway), one flow per
  // host peer, and the guest's answers go back to that peer. Returns false
  // (errno set) when the socket cannot be registered.
  bool add_forward(UniqueFd bound, const IpAddress& guest_ip, std::uint16_t guest_port, const IpAddress& remote);
  // The host socket of `slot` is readable.
  void on_event(std::uint32_t slot, std::uint16_t gen);
  // The shared raw ICMP socket is readable.
  // (`slot` of its tag: 0 the IPv4 socket, 1 the IPv6 one.)
  void on_raw_icmp_event(std::uint32_t slot) noexcept { raw_ready_[slot & 1] = true; }
  // Whether guest pings can be relayed: ping sockets, or (IPv4) a raw socket.
  [[nodiscard]] bool icmp_available() const noexcept {
    return env_.host.ping_sockets_v4 || env_.host.raw_icmp_v4;
  }
  [[nodiscard]] bool icmpv6_available() const noexcept {
    return env_.host.ping_sockets_v6 || env_.host.raw_icmp_v6;
  }
  // Receives the next waiting datagram into `buffer` as a whole frame;
  // returns its length, or 0 when nothing waits.
  std::size_t next_frame(std::span<const iovec> buffer);
  [[nodiscard]] bool has_frames() const noexcept {
    return !ready_.empty() || raw_ready_[0] || raw_ready_[1] || outgoing_.pending();
  }
  // Closes flows idle past their timeout.
  void expire(std::uint64_t now_ms);
  [[nodiscard]] std::size_t size() const noexcept { return flows_.size(); }

 private:
  using Key = FlowKey;
  // The FlowHeader (key, generation, live) is the flow table's; port-forward
  // listeners are not in its index.
  struct Flow : FlowHeader {
    UniqueFd sock;
    bool ready = false;  // in ready_
    std::uint64_t last_used_ms = 0;
    std::uint64_t idle_ms = 0;
    // Port forwards: the listener owns the bound socket; each host peer gets
    // a flow that borrows it (fd) and remembers the peer to sendto().
    bool listener = false;
    int borrowed_fd = -1;
    SocketAddress peer;  // forwards: the host peer; raw ICMP: the host destination
    bool raw_icmp = false;  // no socket of its own: RawIcmp with identifier raw_id
    std::uint16_t raw_id = 0;
    [[nodiscard]] int fd() const noexcept { return sock.valid() ? sock.get() : borrowed_fd; }
  };

  // A new flow; nullptr (counted) when it cannot be opened, with `why` set
  // when the guest is to be told.
  Flow* open(const Key& key, Refusal& why);
  // The flow of a forward's host peer, created on its first datagram.
  Flow* peer_flow(const Flow& listener, const SocketAddress& peer);
  void close(std::uint32_t slot);
  // The flow carried a datagram now: its idle timer restarts and it becomes
  // the last to be evicted.
  void mark_used(Flow& f);
  // A live flow for `key` in a fresh slot (returned in `slot`), in the
  // table's index, the least recently used flow evicted when it is full;
  // its socket is the caller's to set.
  Flow& new_flow(const Key& key, std::uint64_t idle_ms, std::uint32_t& slot);
  // An ICMP flow on the shared raw socket: a fresh identifier, the host
  // destination remembered for matching replies.
  Flow* open_raw_icmp(const Key& key, const SocketAddress& dst, Refusal& why);
  // raw_ and raw_ready_ are indexed by family: 0 IPv4, 1 IPv6.
  static unsigned raw_index(int family) noexcept { return family == AF_INET6 ? 1 : 0; }
  // Opens the raw ICMP socket of `family`; false when the fd budget or the kernel refuses.
  bool open_raw_socket(int family, Refusal& why);
  // A frame for the guest from the next echo reply on raw socket `v` (0
  // IPv4, 1 IPv6) matching a raw flow.
  std::size_t next_raw_icmp_frame(std::span<const iovec> buffer, unsigned v);
  // Writes the Ethernet and IP headers of an ICMP(v6) message of `len` bytes
  // already behind them in `buffer`, with the guest's identifier.
  void finish_icmp_frame(std::span<const iovec> buffer, const Flow& f, std::size_t len);

  // A datagram from a host socket that does not fit the guest's MTU leaves
  // as fragments (IPv4, or IPv6 with a Fragment header), one per
  // next_frame(): this is its IP payload (the UDP header and data, or the
  // ICMP message) and how far it has gone.
  struct Outgoing {
    std::vector<std::byte> packet;
    std::size_t sent = 0;
    IpAddress src, dst;
    std::uint8_t protocol = 0;
    std::uint32_t id = 0;
    [[nodiscard]] bool pending() const noexcept { return sent < packet.size(); }
  };
  // Starts fragmenting the IP payload of `len` bytes behind the Ethernet
  // and IP headers in `buffer` (its UDP header or ICMP message complete)
  // and writes the first fragment over it.
  std::size_t fragment(std::span<const iovec> buffer, const Flow& f, std::size_t len);
  std::size_t next_fragment(std::span<const iovec> buffer);

  FlowEnv env_;
  Outgoing outgoing_;
  FlowTable<Flow> flows_{TagKind::datagram};
  DatagramBatch batch_;
  std::deque<std::uint32_t> ready_;
  std::uint16_t ip_id_ = 0;
  std::uint32_t fragment_id_ = 0;  // IPv6 Fragment headers
  std::array<RawIcmp, 2> raw_;                           // IPv4, IPv6: opened at start-up where needed
  std::array<bool, 2> raw_ready_{};                      // raw_[v] may hold replies
  std::unordered_map<std::uint16_t, std::uint32_t> raw_ids_;  // identifier -> slot
  std::uint16_t next_raw_id_ = 0;
};

}  // namespace vnk::usernet
