#include "usernet/datagram_flows.hpp"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <optional>

#include "base/byte_order.hpp"
#include "base/epoll_ops.hpp"
#include "base/log.hpp"
#include "memory/iovec_ops.hpp"
#include "packet/icmp.hpp"
#include "packet/icmpv6.hpp"
#include "usernet/guest_frame.hpp"
#include "usernet/host_route.hpp"

namespace vnk::usernet {

using namespace packet;

DatagramFlows::DatagramFlows(FlowEnv env) : env_(env) {
  Refusal ignored = Refusal::none;
  if (!env_.host.ping_sockets_v4 && env_.host.raw_icmp_v4) (void)open_raw_socket(AF_INET, ignored);
  if (!env_.host.ping_sockets_v6 && env_.host.raw_icmp_v6) (void)open_raw_socket(AF_INET6, ignored);
}

DatagramFlows::~DatagramFlows() {
  flush();
  for (std::uint32_t s = 0; s < flows_.extent(); ++s)
    if (flows_[s].live) close(s);
}

namespace {

bool is_icmp(std::uint8_t protocol) noexcept { return protocol == ip_proto::kIcmp || protocol == ip_proto::kIcmpv6; }

}  // namespace

bool DatagramFlows::add_forward(UniqueFd bound, const IpAddress& guest_ip, std::uint16_t guest_port,
                                const IpAddress& remote) {
  const std::uint32_t slot = flows_.open(FlowKey{ip_proto::kUdp, guest_ip, guest_port, remote, 0}, false);
  Flow& f = flows_[slot];
  if (!epoll_add(env_.epoll_fd, bound.get(), EPOLLIN, flows_.tag(slot))) {
    flows_.close(slot);
    return false;
  }
  f.sock = std::move(bound);
  f.listener = true;
  f.idle_ms = UINT64_MAX;  // listeners never expire
  return true;
}

DatagramFlows::Flow* DatagramFlows::peer_flow(const Flow& listener, const SocketAddress& peer) {
  Key key = listener.key;
  key.remote_port = peer.port();
  const int fd = listener.sock.get();
  const auto probe = flows_.probe_remote_port(key, [&](std::uint32_t s) {
    const Flow& f = flows_[s];
    return f.borrowed_fd == fd && f.peer == peer;
  });
  if (!probe) return nullptr;
  if (probe->existing) return &flows_[*probe->existing];
  std::uint32_t slot = 0;
  Flow& f = new_flow(probe->key, kUdpIdleMs, slot);  // may move flows_: `listener` is not used after this
  f.borrowed_fd = fd;
  f.peer = peer;
  env_.counters.udp_flows_opened.add();
  return &f;
}

DatagramFlows::Flow& DatagramFlows::new_flow(const Key& key, std::uint64_t idle_ms, std::uint32_t& slot) {
  // A full table makes room only now that the new flow is certain: a flow
  // refused (policy, open files, no socket) never costs an existing one.
  if (flows_.size() >= kMaxFlows) {
    // The guest's own flows go first; a forward's peer flows (opened from
    // the host side) only when nothing else is left.
    auto oldest = flows_.least_recent([](const Flow& f) { return f.borrowed_fd < 0; });
    if (!oldest) oldest = flows_.least_recent();
    if (oldest) close(*oldest);
    env_.counters.flows_evicted.add();
  }
  slot = flows_.open(key);
  Flow& f = flows_[slot];
  f.idle_ms = idle_ms;
  f.last_used_ms = env_.clock();
  return f;
}

DatagramFlows::Flow* DatagramFlows::open(const Key& key, Refusal& why) {
  auto dst = host_destination(env_.cfg, key.protocol, key.remote, key.remote_port);
  if (!dst) {
    const bool policy = dst.error() == RouteRefusal::link_local;
    (policy ? env_.counters.drop_link_local : env_.counters.drop_no_route).add();
    if (policy) why = Refusal::prohibited;
    return nullptr;
  }
  const bool icmp = is_icmp(key.protocol);
  const bool v6_socket = dst->family() == AF_INET6;
  if (icmp && !(v6_socket ? env_.host.ping_sockets_v6 : env_.host.ping_sockets_v4))
    return open_raw_icmp(key, *dst, why);
  // Each flow's socket comes out of the open-file budget; existing flows
  // are left alone when it is used up.
  auto fd = env_.fds.lease();
  if (!fd) {
    env_.counters.flows_refused_fd_limit.add();
    why = Refusal::prohibited;
    return nullptr;
  }
  const int protocol = !icmp ? int{IPPROTO_UDP} : v6_socket ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
  UniqueFd sock(::socket(dst->family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol));
  if (!sock.valid()) {
    (icmp ? env_.counters.icmp_socket_errors : env_.counters.udp_socket_errors).add();
    if (errno == EAFNOSUPPORT) why = Refusal::unreachable;  // no IPv6 in this host's kernel
    return nullptr;
  }
  if (::connect(sock.get(), dst->get(), dst->length()) != 0) {
    // No route on the host (an IPv6 destination where the host has no
    // IPv6, ...): the guest hears it at once instead of waiting.
    env_.counters.drop_no_route.add();
    if (errno == ENETUNREACH || errno == EHOSTUNREACH || errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT)
      why = Refusal::unreachable;
    return nullptr;
  }
  std::uint32_t slot = 0;
  const bool dns = key.remote == IpAddress(env_.cfg.dns) || key.remote == IpAddress(env_.cfg.ipv6.dns);
  Flow& f = new_flow(key, icmp ? kIcmpIdleMs : dns ? kDnsIdleMs : kUdpIdleMs, slot);
  if (!epoll_add(env_.epoll_fd, sock.get(), EPOLLIN, flows_.tag(slot))) {
    close(slot);
    return nullptr;
  }
  fd.keep();  // close() gives it back
  f.sock = std::move(sock);
  (icmp ? env_.counters.icmp_flows_opened : env_.counters.udp_flows_opened).add();
  if (!key.is_v4()) env_.counters.ipv6_flows_opened.add();
  return &f;
}

bool DatagramFlows::open_raw_socket(int family, Refusal& why) {
  // One socket for every raw flow, kept to the end: one fd of the budget.
  auto fd = env_.fds.lease();
  if (!fd) {
    env_.counters.flows_refused_fd_limit.add();
    why = Refusal::prohibited;
    return false;
  }
  const unsigned v = raw_index(family);
  const bool permitted = v == 1 ? env_.host.raw_icmp_v6 : env_.host.raw_icmp_v4;
  if (!permitted || !raw_[v].open(family, env_.epoll_fd, make_tag(TagKind::raw_icmp, 0, v))) {
    env_.counters.icmp_socket_errors.add();
    return false;
  }
  fd.keep();  // for as long as this object lives
  // Identifiers start at a random point, away from other programs' pings
  // (often the process id), which the raw socket sees too.
  std::uint16_t r = 0;
  if (::getrandom(&r, sizeof r, GRND_NONBLOCK) == sizeof r) next_raw_id_ = r;
  return true;
}

DatagramFlows::Flow* DatagramFlows::open_raw_icmp(const Key& key, const SocketAddress& dst, Refusal& why) {
  if (!raw_[raw_index(dst.family())].valid() && !open_raw_socket(dst.family(), why)) return nullptr;
  std::uint16_t id = next_raw_id_++;
  while (raw_ids_.contains(id)) id = next_raw_id_++;  // at most kMaxFlows are taken
  std::uint32_t slot = 0;
  Flow& f = new_flow(key, kIcmpIdleMs, slot);
  f.raw_icmp = true;
  f.raw_id = id;
  f.peer = dst;
  raw_ids_.emplace(id, slot);
  env_.counters.icmp_flows_opened.add();
  return &f;
}

void DatagramFlows::mark_used(Flow& f) {
  f.last_used_ms = env_.clock();
  flows_.touch(flows_.slot_of(f));
}

void DatagramFlows::close(std::uint32_t slot) {
  Flow& f = flows_[slot];
  if (!f.live) return;
  if (batch_.fd() == f.fd()) flush();  // what the guest sent on it goes before the socket does
  if (f.raw_icmp) raw_ids_.erase(f.raw_id);
  if (f.sock.valid() && !f.listener) env_.fds.give();
  if (f.sock.valid()) epoll_del(env_.epoll_fd, f.sock.get());  // a borrowed fd stays with its listener
  flows_.close(slot);
  // A slot still listed in ready_ is skipped there (not live).
}

DatagramFlows::Refusal DatagramFlows::from_guest(std::uint8_t protocol, const IpAddress& guest_ip, std::uint16_t guest_port,
                               const IpAddress& remote, std::uint16_t remote_port, std::span<const iovec> payload,
                               std::size_t length) {
  const Key key{protocol, guest_ip, guest_port, remote, remote_port};
  Flow* f = nullptr;
  if (const auto found = flows_.find(key)) {
    f = &flows_[*found];
  } else {
    Refusal why = Refusal::none;
    f = open(key, why);
    if (f == nullptr) return why;
  }
  mark_used(*f);
  const bool icmp = is_icmp(protocol);
  if (f->raw_icmp) {
    if (!raw_[raw_index(f->peer.family())].send(f->peer, f->raw_id, payload, length)) {
      env_.counters.icmp_send_errors.add();
      return Refusal::none;
    }
    env_.counters.icmp_echo_requests.add();
    return Refusal::none;
  }
  const SocketAddress* to = f->borrowed_fd >= 0 ? &f->peer : nullptr;
  if (!batch_.accepts(f->fd(), length)) flush();  // another socket's, or too big to hold: keep the order
  if (batch_.accepts(f->fd(), length)) {
    batch_.add(f->fd(), to, icmp, payload, length);
    if (batch_.full()) flush();
    return Refusal::none;
  }
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(payload.data());
  m.msg_iovlen = payload.size();
  if (to != nullptr) {
    m.msg_name = const_cast<sockaddr*>(f->peer.get());
    m.msg_namelen = f->peer.length();
  }
  const ssize_t n = ::sendmsg(f->fd(), &m, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(length)) {
    (icmp ? env_.counters.icmp_send_errors : env_.counters.udp_send_errors).add();
    return Refusal::none;
  }
  (icmp ? env_.counters.icmp_echo_requests : env_.counters.udp_datagrams_out).add();
  return Refusal::none;
}

void DatagramFlows::flush() {
  if (batch_.empty()) return;
  const DatagramBatch::Outcome o = batch_.send();
  env_.counters.udp_datagrams_out.add(o.udp_sent);
  env_.counters.udp_send_errors.add(o.udp_failed);
  env_.counters.icmp_echo_requests.add(o.icmp_sent);
  env_.counters.icmp_send_errors.add(o.icmp_failed);
}

void DatagramFlows::on_event(std::uint32_t slot, std::uint16_t gen) {
  Flow* f = flows_.at(slot, gen);
  if (f == nullptr || f->ready) return;  // stale, or queued already
  f->ready = true;
  ready_.push_back(slot);
}

void DatagramFlows::finish_icmp_frame(std::span<const iovec> buffer, const Flow& f, std::size_t len) {
  // The host's identifier (the kernel's, or ours on the raw socket) goes
  // back to the guest's, and the checksum is redone over the whole message
  // (for ICMPv6, with the pseudo-header).
  const std::size_t at = eth_ip_size(f.key.guest);
  std::array<std::byte, kIcmpHeaderSize> ih{};
  iov_read(buffer, at, ih);
  store_be<std::uint16_t>(ih.data() + 4, f.key.guest_port);
  store_be<std::uint16_t>(ih.data() + 2, 0);
  Checksum sum;
  if (!f.key.is_v4()) add_pseudo_header(sum, f.key.remote, f.key.guest, ip_proto::kIcmpv6, static_cast<std::uint32_t>(len));
  sum.add(ih);
  add_iov(sum, buffer, at + kIcmpHeaderSize, len - kIcmpHeaderSize);
  store_be<std::uint16_t>(ih.data() + 2, sum.finish());
  iov_write(buffer, at, ih);
  std::array<std::byte, kEthIpv6Size> h{};
  write_eth_ip(h, env_.guests.mac_for(f.key.guest), env_.cfg.gateway_mac,
               IpFields{f.key.remote, f.key.guest, f.key.protocol, static_cast<std::uint16_t>(len), ip_id_++});
  iov_write(buffer, 0, std::span(h).first(at));
  env_.counters.icmp_echo_replies.add();
}

std::size_t DatagramFlows::next_raw_icmp_frame(std::span<const iovec> buffer, unsigned v) {
  std::uint64_t ignored = 0;
  std::size_t written = 0;
  while (auto r = raw_[v].receive(ignored)) {
    // Only an echo reply to a live flow, from the address it pinged, and
    // only if it fits: anything else the raw socket sees stays here.
    auto it = raw_ids_.find(r->id);
    if (it == raw_ids_.end() || flows_[it->second].peer.address() != r->src) {
      ++ignored;
      continue;
    }
    Flow& f = flows_[it->second];
    const std::size_t len = r->message.size();
    const std::size_t at = eth_ip_size(f.key.guest);
    if (at + len > iov_length(buffer) || len > ip_max_payload(f.key.guest)) {
      env_.counters.drop_too_big_for_guest.add();
      continue;
    }
    iov_write(buffer, at, r->message);
    finish_icmp_frame(buffer, f, len);
    mark_used(f);
    written = at + len;
    break;
  }
  if (written == 0) raw_ready_[v] = false;  // level-triggered: epoll reports the socket again
  env_.counters.icmp_raw_ignored.add(ignored);
  return written;
}

std::size_t DatagramFlows::fragment(std::span<const iovec> buffer, const Flow& f, std::size_t len) {
  Outgoing& o = outgoing_;
  o.packet.resize(len);
  iov_read(buffer, eth_ip_size(f.key.guest), o.packet);
  o.sent = 0;
  o.src = f.key.remote;
  o.dst = f.key.guest;
  o.protocol = f.key.protocol;
  o.id = o.src.is_v4() ? ip_id_++ : fragment_id_++;
  return next_fragment(buffer);
}

std::size_t DatagramFlows::next_fragment(std::span<const iovec> buffer) {
  Outgoing& o = outgoing_;
  const bool v4 = o.src.is_v4();
  // IPv6 fragments carry an 8-byte Fragment header (RFC 8200 §4.5) after
  // the fixed header. Every fragment but the last carries a multiple of 8
  // bytes.
  constexpr std::size_t kFragmentHeader = 8;
  const std::size_t headers = v4 ? kEthIpv4Size : kEthIpv6Size + kFragmentHeader;
  const std::size_t per = (env_.cfg.mtu - (headers - kEthernetHeaderSize)) / 8 * 8;
  const std::size_t n = std::min(per, o.packet.size() - o.sent);
  if (iov_length(buffer) < headers + n) {
    env_.counters.drop_too_big_for_guest.add();  // a buffer smaller than the MTU: the datagram is lost
    o.sent = o.packet.size();
    return 0;
  }
  const bool more = o.sent + n < o.packet.size();
  std::array<std::byte, kEthIpv6Size + kFragmentHeader> h{};
  if (v4) {
    write_eth_ipv4(h, env_.guests.mac_for(o.dst), env_.cfg.gateway_mac,
                   Ipv4Fields{o.src.ipv4(), o.dst.ipv4(), o.protocol, static_cast<std::uint16_t>(n),
                              static_cast<std::uint16_t>(o.id), 64, 0,
                              static_cast<std::uint16_t>((more ? 0x2000 : 0) | o.sent / 8)});
  } else {
    write_eth_ip(h, env_.guests.mac_for(o.dst), env_.cfg.gateway_mac,
                 IpFields{o.src, o.dst, ip_proto::kFragment, static_cast<std::uint16_t>(kFragmentHeader + n)});
    std::byte* frag = h.data() + kEthIpv6Size;
    frag[0] = static_cast<std::byte>(o.protocol);
    frag[1] = std::byte{0};
    store_be<std::uint16_t>(frag + 2, static_cast<std::uint16_t>(o.sent | (more ? 1 : 0)));  // offset in 8s, M
    store_be<std::uint32_t>(frag + 4, o.id);
  }
  iov_write(buffer, 0, std::span(h).first(headers));
  iov_write(buffer, headers, std::span(o.packet).subspan(o.sent, n));
  o.sent += n;
  env_.counters.ip_fragments_to_guest.add();
  return headers + n;
}

std::size_t DatagramFlows::next_frame(std::span<const iovec> buffer) {
  if (outgoing_.pending() && env_.guests.known()) return next_fragment(buffer);
  for (unsigned v = 0; v < 2; ++v) {
    if (!raw_ready_[v] || !env_.guests.known()) continue;
    if (const std::size_t n = next_raw_icmp_frame(buffer, v); n != 0) return n;
  }
  while (!ready_.empty()) {
    const std::uint32_t slot = ready_.front();
    if (!flows_[slot].live || !flows_[slot].ready) {
      ready_.pop_front();
      continue;
    }
    if (!env_.guests.known()) {
      // No guest to address yet: leave the datagram in the socket.
      return 0;
    }
    const Key key = flows_[slot].key;  // a copy: peer_flow() may move the table
    const bool icmp = is_icmp(key.protocol);
    const std::size_t l3 = eth_ip_size(key.guest);
    const std::size_t hdr = l3 + (icmp ? 0 : kUdpHeaderSize);
    std::array<iovec, 64> tail;  // the first n are set
    const std::size_t nt = iov_tail(buffer, hdr, tail);
    const std::size_t room = iov_length(std::span(tail.data(), nt));
    const std::size_t max_payload = ip_max_payload(key.guest) - (icmp ? 0 : kUdpHeaderSize);
    SocketAddress peer;
    msghdr m{};
    m.msg_iov = tail.data();
    m.msg_iovlen = nt;
    if (flows_[slot].listener) {
      m.msg_name = peer.buffer();
      m.msg_namelen = SocketAddress::capacity();
    }
    const ssize_t n = ::recvmsg(flows_[slot].sock.get(), &m, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        // An ICMP error for the connected socket (port unreachable): the
        // guest's datagram is lost, as it would be on a wire.
        (icmp ? env_.counters.icmp_recv_errors : env_.counters.udp_recv_errors).add();
        continue;
      }
      flows_[slot].ready = false;  // level-triggered: epoll reports it again when more arrives
      ready_.pop_front();
      continue;
    }
    // Round-robin: the flow goes to the back while it may have more.
    ready_.pop_front();
    ready_.push_back(slot);
    Flow* fp = &flows_[slot];
    if (fp->listener) {
      fp = peer_flow(*fp, peer);
      if (fp == nullptr) continue;
    }
    mark_used(*fp);
    Flow& f = *fp;
    const auto len = static_cast<std::size_t>(n);
    if (len > room || len > max_payload || (icmp && len < kIcmpHeaderSize)) {
      env_.counters.drop_too_big_for_guest.add();
      continue;
    }
    std::array<std::byte, kEthIpv6Size + kUdpHeaderSize> h{};
    if (icmp) {
      // Ping sockets pass echo replies only; be sure before rewriting it.
      std::array<std::byte, 1> type{};
      iov_read(buffer, hdr, type);
      if (static_cast<std::uint8_t>(type[0]) != (f.key.is_v4() ? icmp_type::kEchoReply : icmpv6_type::kEchoReply)) {
        env_.counters.icmp_recv_errors.add();
        continue;
      }
      finish_icmp_frame(buffer, f, len);
    } else {
      Checksum payload;
      add_iov(payload, buffer, hdr, len);
      const std::size_t n_h =
          write_udp_frame_headers(h, UdpEndpoints{env_.guests.mac_for(f.key.guest), env_.cfg.gateway_mac, f.key.remote,
                                                  f.key.remote_port, f.key.guest, f.key.guest_port},
                                  static_cast<std::uint16_t>(len), payload, ip_id_++);
      iov_write(buffer, 0, std::span(h).first(n_h));
      env_.counters.udp_datagrams_in.add();
    }
    // Larger than the guest's MTU: fragments, never one oversize frame.
    if (hdr + len - kEthernetHeaderSize > env_.cfg.mtu) return fragment(buffer, f, hdr + len - l3);
    return hdr + len;
  }
  return 0;
}

void DatagramFlows::expire(std::uint64_t now_ms) {
  for (std::uint32_t s = 0; s < flows_.extent(); ++s) {
    const Flow& f = flows_[s];
    if (f.live && now_ms - f.last_used_ms > f.idle_ms) {
      close(s);
      env_.counters.flows_expired.add();
    }
  }
}

}  // namespace vnk::usernet
