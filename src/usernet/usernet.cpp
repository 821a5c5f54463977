#include "usernet/usernet.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <arpa/inet.h>
#include <fmt/format.h>

#include <stdexcept>

#include "base/byte_order.hpp"
#include "base/epoll_ops.hpp"
#include "base/log.hpp"
#include "memory/iovec_ops.hpp"
#include "packet/dhcp.hpp"
#include "packet/dhcpv6.hpp"
#include "packet/headers.hpp"
#include "packet/icmp.hpp"
#include "packet/icmpv6.hpp"
#include "packet/ipv6.hpp"
#include "packet/tcp.hpp"
#include "usernet/guest_frame.hpp"

namespace vnk::usernet {

using namespace packet;

std::uint64_t monotonic_ms() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000'000;
}

UserNet::UserNet(UsernetConfig cfg)
    : cfg_(std::move(cfg)),
      host_(cfg_.host.value_or(host_features())),
      fds_(FdBudget::kMinFlowFds),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)),
      timer_(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)),
      clock_(cfg_.clock != nullptr ? cfg_.clock : &monotonic_ms),
      dhcp_(cfg_, counters_),
      dhcpv6_(cfg_, counters_),
      ndp_(cfg_, counters_),
      reassembly_(counters_, kReassemblyHeadroom),
      replies_(kReplyQueueFrames, kReplySlot),
      guests_(cfg_.guest_mac),
      datagrams_(FlowEnv{cfg_, host_, counters_, fds_, epoll_.get(), replies_, guests_, clock_, rx_offloads_}),
      tcp_(FlowEnv{cfg_, host_, counters_, fds_, epoll_.get(), replies_, guests_, clock_, rx_offloads_}),
      work_(kMaxFrame) {
  if (!epoll_.valid() || !timer_.valid()) throw std::runtime_error("usernet: epoll/timerfd: " + std::string(std::strerror(errno)));
  epoll_add(epoll_.get(), timer_.get(), EPOLLIN, make_tag(TagKind::timer, 0, 0));
  icmp_available_ = datagrams_.icmp_available();
  if (!icmp_available_) {
    log::error(
        "usernet: ping sockets are not permitted for this user (net.ipv4.ping_group_range) and raw ICMP needs "
        "CAP_NET_RAW; ICMP echo from the guest is dropped. Allow it with: sysctl -w "
        "net.ipv4.ping_group_range='0 2147483647'");
  }
  open_forwards();
  fds_ = cfg_.flow_fds ? FdBudget(*cfg_.flow_fds) : FdBudget();
  log::debug("usernet: flows may hold {} sockets", fds_.limit());
  if (!cfg_.pcap_path.empty()) pcap_ = std::make_unique<PcapWriter>(cfg_.pcap_path);
  if (cfg_.dns_upstreams.empty())
    log::warn("usernet: no DNS resolver (none in /etc/resolv.conf and no --dns-upstream); DNS queries are dropped");
}

UserNet::~UserNet() = default;

void UserNet::open_forwards() {
  for (const auto& fw : cfg_.forwards) {
    const bool tcp = fw.protocol == ip_proto::kTcp;
    const std::string what = fmt::format("--forward {}:{}:{}:{}", tcp ? "tcp" : "udp", fw.host_address.to_uri_host(),
                                         fw.host_port, fw.guest_port);
    // An IPv6 listener on [::] takes IPv4 connections too where the host's
    // net.ipv6.bindv6only is 0 (the default).
    const SocketAddress sa(fw.host_address, fw.host_port);
    UniqueFd s(::socket(sa.family(), (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    const int one = 1;
    ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (!s.valid() || ::bind(s.get(), sa.get(), sa.length()) != 0 || (tcp && ::listen(s.get(), 128) != 0))
      throw std::runtime_error(
          fmt::format("{}: cannot listen on {}: {}", what, sa.to_string(), std::strerror(errno)));
    if (tcp) {
      const auto index = static_cast<std::uint32_t>(tcp_listeners_.size());
      if (!epoll_add(epoll_.get(), s.get(), EPOLLIN, make_tag(TagKind::listener, 0, index)))
        throw std::runtime_error(what + ": epoll: " + std::strerror(errno));
      tcp_listeners_.push_back(std::move(s));
      tcp_listener_forward_.push_back(fw);
    } else if (!datagrams_.add_forward(std::move(s), cfg_.guest, fw.guest_port, cfg_.gateway)) {
      throw std::runtime_error(what + ": epoll: " + std::strerror(errno));
    }
    log::info("usernet: forwarding {}", what);
  }
}

void UserNet::accept_forwarded(std::uint32_t index) {
  if (index >= tcp_listeners_.size()) return;
  for (;;) {
    SocketAddress peer;
    socklen_t len = SocketAddress::capacity();
    UniqueFd c(::accept4(tcp_listeners_[index].get(), peer.buffer(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!c.valid()) return;
    // The guest sees the connection come from the gateway over IPv4, which
    // it always has, whatever the host side's family.
    tcp_.accept_inbound(std::move(c), peer.family(), cfg_.guest, tcp_listener_forward_[index].guest_port,
                        cfg_.gateway, peer.port(), clock_());
  }
}

template <typename Build>
void UserNet::queue_reply(Build&& build) {
  auto slot = replies_.reserve();
  if (slot.empty()) {
    counters_.drop_queue_full.add();
    return;
  }
  const std::size_t n = build(slot);
  if (n != 0) replies_.commit(n);
}

net::TxResult UserNet::transmit(const net::TxFrame& frame) {
  counters_.frames_from_guest.add();
  if (pcap_) pcap_->write(frame.data, frame.length);
  if (frame.length > kMaxFrame) {
    counters_.drop_oversize.add();
    return net::TxResult::dropped;
  }
  const std::size_t copied = iov_read(frame.data, 0, std::span(work_).first(std::min(frame.length, kHeaderCopy)));
  auto eth = parse_ethernet(std::span(work_).first(copied));
  if (!eth) {
    counters_.drop_malformed.add();
    return net::TxResult::dropped;
  }
  if (!eth->src.is_unicast()) {
    counters_.drop_malformed.add();
    return net::TxResult::dropped;
  }
  if (!eth->dst.is_broadcast() && eth->dst != cfg_.gateway_mac && eth->dst.is_unicast()) {
    counters_.drop_not_for_us.add();
    return net::TxResult::dropped;
  }
  frame_src_ = eth->src;
  switch (eth->type) {
    case ethertype::kArp: handle_arp(eth->payload); break;
    case ethertype::kIpv4: handle_ipv4(frame, copied); break;
    case ethertype::kIpv6: handle_ipv6(frame, copied); break;
    default: counters_.drop_ethertype.add(); break;
  }
  return net::TxResult::sent;
}

void UserNet::handle_arp(std::span<const std::byte> payload) {
  auto arp = parse_arp(payload);
  if (!arp) {
    counters_.drop_malformed.add();
    return;
  }
  if (arp->op != arp_op::kRequest || (arp->target_ip != cfg_.gateway && arp->target_ip != cfg_.dns)) {
    counters_.arp_ignored.add();
    return;
  }
  guests_.saw(frame_src_);
  counters_.arp_requests.add();
  queue_reply([&](std::span<std::byte> out) {
    write_ethernet(out, arp->sender_mac, cfg_.gateway_mac, ethertype::kArp);
    write_arp(out.subspan(kEthernetHeaderSize),
              Arp{arp_op::kReply, cfg_.gateway_mac, arp->target_ip, arp->sender_mac, arp->sender_ip});
    counters_.arp_replies_sent.add();
    // Ethernet's 60-byte minimum; the NIC would pad on a wire.
    constexpr std::size_t kLen = 60;
    std::fill(out.begin() + kEthernetHeaderSize + kArpSize, out.begin() + kLen, std::byte{0});
    return kLen;
  });
}

void UserNet::handle_ipv4(const net::TxFrame& frame, std::size_t copied) {
  const std::size_t wire_len = frame.length - kEthernetHeaderSize;
  auto ip = parse_ipv4(std::span(work_).first(copied).subspan(kEthernetHeaderSize), wire_len, /*accept_fragments=*/true);
  if (!ip) {
    counters_.drop_malformed.add();
    return;
  }
  if (ip->is_fragment()) return reassemble(frame, *ip);
  const std::size_t want = ip->protocol == ip_proto::kTcp    ? copied
                           : ip->protocol == ip_proto::kIcmp ? frame.length
                                                             : std::min(frame.length, kHeadCopy);
  if (want > copied) {
    iov_read(frame.data, copied, std::span(work_).subspan(copied, want - copied));
    ip = parse_ipv4(std::span(work_).first(want).subspan(kEthernetHeaderSize), wire_len,
                    true);  // same header: cannot fail
  }
  if (ip->dst == cfg_.guest || (ip->src.value == 0 && ip->protocol != ip_proto::kUdp)) {
    counters_.drop_malformed.add();
    return;
  }
  if (ip->src.value != 0 && ip->src != kIpv4Broadcast && ip->src != cfg_.broadcast() && !ip->src.is_multicast())
    guests_.learn(ip->src, frame_src_);
  else
    guests_.saw(frame_src_);
  if (ip->protocol == ip_proto::kIcmp) {
    auto echo = parse_icmp_echo(*ip);
    if (!echo) {
      (echo.error() == ParseError::unsupported ? counters_.drop_unsupported : counters_.drop_malformed).add();
    } else if (echo->type != icmp_type::kEchoRequest) {
      counters_.drop_unsupported.add();
    } else if (!icmp_available_) {
      counters_.drop_icmp_not_permitted.add();
    } else {
      relay_echo(frame, ip_packet(*ip), echo->id);
    }
    return;
  }
  handle_transport(frame, ip_packet(*ip));
}

void UserNet::relay_echo(const net::TxFrame& frame, const IpPacket& ip, std::uint16_t id) {
  std::array<iovec, 64> payload;  // iov_slice sets the first n
  const std::size_t n = iov_slice(frame.data, kEthernetHeaderSize + ip.header_len, ip.payload_len, payload);
  queue_unreachable(ip, datagrams_.from_guest(ip.protocol, ip.src, id, ip.dst, 0, std::span(payload.data(), n),
                                               ip.payload_len));
}

void UserNet::handle_transport(const net::TxFrame& frame, const IpPacket& ip) {
  const std::size_t l4_offset = kEthernetHeaderSize + ip.header_len;
  std::array<iovec, 64> payload;  // iov_slice sets the first n
  switch (ip.protocol) {
    case ip_proto::kUdp: {
      auto udp = parse_udp(ip, (frame.header.flags & net::NetHeader::kFlagNeedsCsum) != 0);
      if (!udp) {
        counters_.drop_malformed.add();
        return;
      }
      if (ip.is_v4() && udp->dst_port == kDhcpServerPort) {
        auto msg = parse_dhcp(udp->payload);
        if (!msg) {
          counters_.drop_malformed.add();
          return;
        }
        queue_reply([&](std::span<std::byte> out) { return dhcp_.handle(*msg, clock_(), out); });
        return;
      }
      if (!ip.is_v4() && udp->dst_port == kDhcpv6ServerPort) {
        auto msg = udp->payload.size() == udp->payload_len ? parse_dhcpv6(udp->payload)
                                                           : std::unexpected(ParseError::truncated);
        if (!msg) {
          counters_.drop_malformed.add();
          return;
        }
        // A stateful address is the one at the guest's DHCPv4 pool index.
        const bool stateful = cfg_.ipv6.dhcp_address && msg->ia_na && msg->type != dhcpv6_type::kInformationRequest;
        const auto index = stateful ? dhcp_.guest_index(frame_src_, clock_()) : std::optional<std::uint32_t>(0);
        queue_reply([&](std::span<std::byte> out) {
          return dhcpv6_.handle(ip.src.ipv6(), udp->src_port, *msg, frame_src_, index, out);
        });
        return;
      }
      if (ip.is_v4() && (ip.dst.ipv4() == kIpv4Broadcast || ip.dst.ipv4() == cfg_.broadcast())) {
        counters_.drop_no_route.add();
        return;
      }
      const std::size_t n = iov_slice(frame.data, l4_offset + kUdpHeaderSize, udp->payload_len, payload);
      queue_unreachable(ip, datagrams_.from_guest(ip_proto::kUdp, ip.src, udp->src_port, ip.dst, udp->dst_port,
                                                  std::span(payload.data(), n), udp->payload_len));
      return;
    }
    case ip_proto::kTcp: {
      auto tcp = parse_tcp(ip);
      if (!tcp) {
        counters_.drop_malformed.add();
        return;
      }
      const std::size_t n = iov_slice(frame.data, l4_offset + tcp->header_len, tcp->payload_len, payload);
      tcp_.from_guest(FlowKey{ip_proto::kTcp, ip.src, tcp->src_port, ip.dst, tcp->dst_port}, *tcp,
                      std::span(payload.data(), n), clock_());
      return;
    }
    default: (ip.is_v4() ? counters_.drop_unsupported : counters_.ipv6_unsupported).add(); return;
  }
}

void UserNet::reassemble(const net::TxFrame& frame, const Ipv4& ip) {
  counters_.ip_fragments.add();
  std::array<iovec, 64> data;
  const std::size_t n = iov_slice(frame.data, kEthernetHeaderSize + ip.header_len, ip.payload_len, data);
  const IpReassembly::Fragment fragment{std::span(work_).subspan(kEthernetHeaderSize, ip.header_len),
                                        std::span(data.data(), n), ip.payload_len, ip.fragment_offset,
                                        ip.more_fragments};
  const IpReassembly::Key key{ip.src, ip.dst, ip.id, ip.protocol};
  if (reassembly_.add(key, fragment, clock_()) != IpReassembly::Outcome::complete) return update_timer();
  // The whole datagram as one frame, built in front of its payload: this
  // fragment's Ethernet header, the first fragment's IP header with its
  // fragment fields cleared and its lengths and checksum set.
  const std::size_t header_len = reassembly_.header().size();
  const std::size_t total = reassembly_.completed().size() - kReassemblyHeadroom + header_len;
  if (total > 65535) {  // the header grew past IPv4's limit
    counters_.ip_fragments_dropped.add();
    return;
  }
  const auto whole_frame = reassembled_frame();
  std::byte* h = whole_frame.data() + kEthernetHeaderSize;
  store_be<std::uint16_t>(h + 2, static_cast<std::uint16_t>(total));
  store_be<std::uint16_t>(h + 6, static_cast<std::uint16_t>(load_be<std::uint16_t>(h + 6) & 0x4000));  // DF stays
  store_be<std::uint16_t>(h + 10, 0);
  store_be<std::uint16_t>(h + 10, internet_checksum(std::span(h, header_len)));
  transmit_reassembled(whole_frame, false);
}

std::span<std::byte> UserNet::reassembled_frame() {
  const auto header = reassembly_.header();
  const auto buffer = reassembly_.completed();
  const auto whole_frame = buffer.subspan(kReassemblyHeadroom - header.size() - kEthernetHeaderSize);
  std::copy_n(work_.begin(), kEthernetHeaderSize, whole_frame.begin());
  std::copy(header.begin(), header.end(), whole_frame.begin() + kEthernetHeaderSize);
  return whole_frame;
}

void UserNet::transmit_reassembled(std::span<std::byte> whole_frame, bool v6) {
  const std::size_t len = whole_frame.size();
  const iovec whole{whole_frame.data(), len};
  const net::TxFrame frame{net::NetHeader{}, std::span(&whole, 1), len,
                           whole_frame.first(std::min(len, net::kTxHeadBytes))};
  const std::size_t copied = std::min(len, kHeaderCopy);
  std::copy_n(whole_frame.begin(), copied, work_.begin());
  v6 ? handle_ipv6(frame, copied) : handle_ipv4(frame, copied);
}

void UserNet::reassemble(const net::TxFrame& frame, const Ipv6& ip) {
  counters_.ip_fragments.add();
  if (ip.fragment_header_at > kMaxReassemblyHeader) {
    counters_.ip_fragments_dropped.add();
    return;
  }
  // The unfragmentable part as the whole datagram will carry it: its last
  // Next Header names what this fragment's Fragment header does. Set here,
  // on each fragment's own copy, so the first fragment's (the one kept)
  // is right whatever layout a later fragment claims.
  std::array<std::byte, kMaxReassemblyHeader> unfragmentable;
  std::copy_n(work_.begin() + kEthernetHeaderSize, ip.fragment_header_at, unfragmentable.begin());
  unfragmentable[ip.next_header_at] = std::byte{ip.protocol};  // next_header_at < fragment_header_at (parse_ipv6)
  std::array<iovec, 64> data;
  const std::size_t n = iov_slice(frame.data, kEthernetHeaderSize + ip.header_len, ip.payload_len, data);
  const IpReassembly::Fragment fragment{std::span(unfragmentable).first(ip.fragment_header_at),
                                        std::span(data.data(), n), ip.payload_len, ip.fragment_offset,
                                        ip.more_fragments};
  // RFC 8200 §4.5: source, destination and identification name a datagram.
  const IpReassembly::Key key{ip.src, ip.dst, ip.fragment_id, ip_proto::kFragment};
  if (reassembly_.add(key, fragment, clock_()) != IpReassembly::Outcome::complete) return update_timer();
  // The whole datagram as one packet behind the first fragment's
  // unfragmentable part.
  const std::size_t header_len = reassembly_.header().size();
  const std::size_t payload_length = header_len - kIpv6HeaderSize + reassembly_.completed().size() - kReassemblyHeadroom;
  if (payload_length > 65535) {
    counters_.ip_fragments_dropped.add();
    return;
  }
  const auto whole_frame = reassembled_frame();
  std::byte* h = whole_frame.data() + kEthernetHeaderSize;
  store_be<std::uint16_t>(h + 4, static_cast<std::uint16_t>(payload_length));
  transmit_reassembled(whole_frame, true);
}

void UserNet::handle_ipv6(const net::TxFrame& frame, std::size_t copied) {
  if (!cfg_.ipv6.enabled) {
    counters_.ipv6_disabled.add();
    return;
  }
  // The extension-header chain may run past the TCP-sized header copy:
  // parse from a longer one then. What the upper layer needs copied: TCP
  // its header (the payload stays in guest memory), UDP up to kHeadCopy (its
  // checksum is checked when whole), ICMPv6 all of it (checksummed whole).
  const std::size_t wire_len = frame.length - kEthernetHeaderSize;
  const auto copy_to = [&](std::size_t want) {
    want = std::min(want, frame.length);
    if (want > copied) copied += iov_read(frame.data, copied, std::span(work_).subspan(copied, want - copied));
  };
  const auto parse = [&] {
    return parse_ipv6(std::span(work_).first(copied).subspan(kEthernetHeaderSize), wire_len, /*accept_fragments=*/true);
  };
  auto ip = parse();
  if (!ip && ip.error() == ParseError::truncated && copied < frame.length) {
    copy_to(kHeadCopy);
    ip = parse();
  }
  if (ip && !ip->fragment) {
    const std::size_t l4 = kEthernetHeaderSize + ip->header_len;
    const std::size_t want = ip->protocol == ip_proto::kTcp      ? l4 + kTcpMaxHeaderSize
                             : ip->protocol == ip_proto::kIcmpv6 ? frame.length
                                                                 : std::max(kHeadCopy, l4 + kUdpHeaderSize);
    if (std::min(want, frame.length) > copied) {
      copy_to(want);
      ip = parse();
    }
  }
  if (!ip) {
    switch (ip.error()) {
      case ParseError::unsupported: counters_.ipv6_unsupported.add(); break;
      default: counters_.ipv6_malformed.add(); break;
    }
    return;
  }
  // IPv4-mapped addresses never appear in IPv6 packets on a link (RFC 4038
  // §4.2); in a flow key they would read as IPv4 and the flow would answer
  // in the other family.
  if (ip->src.is_multicast() || IpAddress(ip->src).is_v4() || IpAddress(ip->dst).is_v4()) {
    counters_.ipv6_malformed.add();
    return;
  }
  if (ip->fragment) return reassemble(frame, *ip);  // counted once whole
  counters_.ipv6_packets.add();
  // Flows need a source to answer: not the unspecified address (which only
  // Neighbor Discovery uses) nor one of the gateway's.
  const bool answerable = !ip->src.is_unspecified() && ip->src != cfg_.ipv6.gateway && ip->src != cfg_.ipv6.dns;
  if (answerable)
    guests_.learn(ip->src, frame_src_);
  else
    guests_.saw(frame_src_);
  if (ip->protocol != ip_proto::kIcmpv6) {
    if (!answerable) {
      counters_.ipv6_malformed.add();
      return;
    }
    return handle_transport(frame, ip_packet(*ip));
  }
  auto msg = parse_icmpv6(*ip);
  if (!msg) {
    counters_.ipv6_malformed.add();
    return;
  }
  switch (msg->type) {
    case icmpv6_type::kRouterSolicitation:
    case icmpv6_type::kNeighborSolicitation:
    case icmpv6_type::kRouterAdvertisement:
    case icmpv6_type::kNeighborAdvertisement:
      queue_reply([&](std::span<std::byte> out) { return ndp_.handle(*ip, *msg, frame_src_, out); });
      return;
    case icmpv6_type::kEchoRequest: {
      auto echo = parse_icmpv6_echo(*msg);
      if (!echo || msg->code != 0 || !answerable) {
        counters_.ipv6_malformed.add();
      } else if (!datagrams_.icmpv6_available()) {
        counters_.drop_icmp_not_permitted.add();
      } else {
        relay_echo(frame, ip_packet(*ip), echo->id);
      }
      return;
    }
    case icmpv6_type::kMldQuery:
    case icmpv6_type::kMldReport:
    case icmpv6_type::kMldDone:
    case icmpv6_type::kMldv2Report:
      // A guest joins its solicited-node groups; the link has nothing else
      // to deliver to it, so there is no group state to keep.
      counters_.ipv6_mld_ignored.add();
      return;
    default: counters_.ipv6_unsupported.add(); return;
  }
}

void UserNet::queue_unreachable(const IpPacket& ip, DatagramFlows::Refusal why) {
  // Both kinds of refusal get "administratively prohibited": it is the code
  // a guest's connected socket reports at once (EACCES, EHOSTUNREACH), while
  // Linux, like most stacks, treats "no route" and "host unreachable" as
  // soft errors a UDP socket never hears of -- the guest would wait out its
  // timeout.
  if (why == DatagramFlows::Refusal::none) return;
  // The quote comes from the header copy ip was parsed from (host memory):
  // IPv4 quotes the header and 8 bytes (RFC 792), IPv6 as much as fits.
  const std::size_t quoted = ip.is_v4() ? std::min<std::size_t>(8, ip.payload.size()) : ip.payload.size();
  const std::span<const std::byte> quote(ip.payload.data() - ip.header_len, ip.header_len + quoted);
  queue_reply([&](std::span<std::byte> out) -> std::size_t {
    if (!ip.is_v4()) {
      const std::size_t len = write_icmpv6_unreachable(out.subspan(kEthIpv6Size), icmpv6_unreachable::kAdminProhibited, quote);
      if (len == 0) return 0;
      counters_.icmp_unreachable_sent.add();
      return write_icmpv6_frame(out, frame_src_, cfg_.gateway_mac, cfg_.ipv6.gateway, ip.src.ipv6(), 64, len);
    }
    const std::size_t len = write_icmp_unreachable(out.subspan(kEthIpv4Size), icmp_unreachable::kAdminProhibited, quote);
    if (len == 0) return 0;
    write_eth_ipv4(out, frame_src_, cfg_.gateway_mac,
                   Ipv4Fields{cfg_.gateway, ip.src.ipv4(), ip_proto::kIcmp, static_cast<std::uint16_t>(len), 0, 64, 0});
    counters_.icmp_unreachable_sent.add();
    return kEthIpv4Size + len;
  });
}

void UserNet::update_timer() {
  const bool want = tcp_.size() + datagrams_.size() + reassembly_.size() > 0;
  if (want == timer_armed_) return;
  itimerspec its{};
  if (want) its.it_interval.tv_nsec = its.it_value.tv_nsec = kTickMs * 1'000'000;
  ::timerfd_settime(timer_.get(), 0, &its, nullptr);
  timer_armed_ = want;
}

void UserNet::run_timers() {
  const std::uint64_t now = clock_();
  reassembly_.expire(now);
  tcp_.on_tick(now);
  datagrams_.expire(now);
}

void UserNet::poll_host() {
  receives_since_poll_ = 0;
  std::array<epoll_event, 64> events{};
  // Bounded: host sockets are level-triggered where an error or a datagram
  // stays pending until next_frame() takes it, so thousands of flows with a
  // pending ICMP error (a guest's UDP flood to closed ports) would report
  // the same events for ever. What is left is reported again next time.
  for (unsigned round = 0; round < kPollRounds; ++round) {
    const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 0);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) {
      const std::uint64_t tag = events[i].data.u64;
      switch (tag_kind(tag)) {
        case TagKind::timer: {
          std::uint64_t expirations = 0;
          (void)!::read(timer_.get(), &expirations, sizeof expirations);
          run_timers();
          break;
        }
        case TagKind::tcp: tcp_.on_event(tag_slot(tag), tag_gen(tag), events[i].events, clock_()); break;
        case TagKind::datagram: datagrams_.on_event(tag_slot(tag), tag_gen(tag)); break;
        case TagKind::raw_icmp: datagrams_.on_raw_icmp_event(tag_slot(tag)); break;
        case TagKind::listener: accept_forwarded(tag_slot(tag)); break;
      }
    }
    if (n < static_cast<int>(events.size())) break;
  }
  update_timer();
}

net::RxResult UserNet::receive(std::span<const iovec> buffer) {
  // Take host events when nothing is queued, and now and then regardless so
  // a busy flow cannot hide the others' events.
  if (!rx_pending() || ++receives_since_poll_ >= 32) poll_host();
  net::RxResult r = replies_.pop_into(buffer);
  if (r.status != net::RxStatus::frame) {
    std::size_t n = datagrams_.next_frame(buffer);
    net::NetHeader header{};
    if (n == 0) n = tcp_.next_frame(buffer, clock_(), header);
    if (n != 0) r = net::RxResult{net::RxStatus::frame, n, n, header};
  }
  if (r.status == net::RxStatus::frame) {
    counters_.frames_to_guest.add();
    if (pcap_) pcap_->write(buffer, r.written);
  }
  update_timer();
  return r;
}

}  // namespace vnk::usernet
