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
#include "usernet/guest_frame.hpp"
#include "usernet/host_route.hpp"

namespace vnk::usernet {

using namespace packet;

DatagramFlows::DatagramFlows(FlowEnv env) : env_(env) {
  bool refused = false;
  if (!env_.host.ping_sockets_v4 && env_.host.raw_icmp_v4) (void)open_raw_socket(refused);
}

DatagramFlows::~DatagramFlows() {
  flush();
  for (std::uint32_t s = 0; s < flows_.extent(); ++s)
    if (flows_[s].live) close(s);
}

bool DatagramFlows::add_forward(UniqueFd bound, Ipv4Address guest_ip, std::uint16_t guest_port, Ipv4Address remote) {
  const std::uint32_t slot = flows_.open(FlowKey::v4(ip_proto::kUdp, guest_ip, guest_port, remote, 0), false);
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

DatagramFlows::Flow* DatagramFlows::peer_flow(const Flow& listener, const sockaddr_in& peer) {
  Key key = listener.key;
  key.remote_port = ntohs(peer.sin_port);
  const int fd = listener.sock.get();
  const auto probe = flows_.probe_remote_port(key, [&](std::uint32_t s) {
    const Flow& f = flows_[s];
    return f.borrowed_fd == fd && f.peer.sin_addr.s_addr == peer.sin_addr.s_addr && f.peer.sin_port == peer.sin_port;
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

DatagramFlows::Flow* DatagramFlows::open(const Key& key, bool& refused) {
  auto dst = host_destination(env_.cfg, key.protocol, key.remote.ipv4(), key.remote_port);
  if (!dst) {
    const bool policy = dst.error() == RouteRefusal::link_local;
    (policy ? env_.counters.drop_link_local : env_.counters.drop_no_route).add();
    refused = policy;
    return nullptr;
  }
  const bool icmp = key.protocol == ip_proto::kIcmp;
  if (icmp && !env_.host.ping_sockets_v4) return open_raw_icmp(key, *dst, refused);
  // Each flow's socket comes out of the open-file budget; existing flows
  // are left alone when it is used up.
  auto fd = env_.fds.lease();
  if (!fd) {
    env_.counters.flows_refused_fd_limit.add();
    refused = true;
    return nullptr;
  }
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, icmp ? IPPROTO_ICMP : IPPROTO_UDP));
  if (!sock.valid()) {
    (icmp ? env_.counters.icmp_socket_errors : env_.counters.udp_socket_errors).add();
    return nullptr;
  }
  if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&*dst), sizeof *dst) != 0) {
    env_.counters.drop_no_route.add();
    return nullptr;
  }
  std::uint32_t slot = 0;
  Flow& f = new_flow(key, icmp ? kIcmpIdleMs : key.remote == FlowAddress::v4(env_.cfg.dns) ? kDnsIdleMs : kUdpIdleMs, slot);
  if (!epoll_add(env_.epoll_fd, sock.get(), EPOLLIN, flows_.tag(slot))) {
    close(slot);
    return nullptr;
  }
  fd.keep();  // close() gives it back
  f.sock = std::move(sock);
  (icmp ? env_.counters.icmp_flows_opened : env_.counters.udp_flows_opened).add();
  return &f;
}

bool DatagramFlows::open_raw_socket(bool& refused) {
  // One socket for every raw flow, kept to the end: one fd of the budget.
  auto fd = env_.fds.lease();
  if (!fd) {
    env_.counters.flows_refused_fd_limit.add();
    refused = true;
    return false;
  }
  if (!env_.host.raw_icmp_v4 || !raw_.open(env_.epoll_fd, make_tag(TagKind::raw_icmp, 0, 0))) {
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

DatagramFlows::Flow* DatagramFlows::open_raw_icmp(const Key& key, const sockaddr_in& dst, bool& refused) {
  if (!raw_.valid() && !open_raw_socket(refused)) return nullptr;
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

bool DatagramFlows::from_guest(std::uint8_t protocol, Ipv4Address guest_ip, std::uint16_t guest_port,
                               Ipv4Address remote, std::uint16_t remote_port, std::span<const iovec> payload,
                               std::size_t length) {
  const Key key = FlowKey::v4(protocol, guest_ip, guest_port, remote, remote_port);
  Flow* f = nullptr;
  if (const auto found = flows_.find(key)) {
    f = &flows_[*found];
  } else {
    bool refused = false;  // by policy or for want of open files: the guest is told
    f = open(key, refused);
    if (f == nullptr) return !refused;
  }
  mark_used(*f);
  const bool icmp = protocol == ip_proto::kIcmp;
  if (f->raw_icmp) {
    if (!raw_.send(f->peer, f->raw_id, payload, length)) {
      env_.counters.icmp_send_errors.add();
      return true;
    }
    env_.counters.icmp_echo_requests.add();
    return true;
  }
  const sockaddr_in* to = f->borrowed_fd >= 0 ? &f->peer : nullptr;
  if (!batch_.accepts(f->fd(), length)) flush();  // another socket's, or too big to hold: keep the order
  if (batch_.accepts(f->fd(), length)) {
    batch_.add(f->fd(), to, icmp, payload, length);
    if (batch_.full()) flush();
    return true;
  }
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(payload.data());
  m.msg_iovlen = payload.size();
  if (to != nullptr) {
    m.msg_name = &f->peer;
    m.msg_namelen = sizeof f->peer;
  }
  const ssize_t n = ::sendmsg(f->fd(), &m, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n != static_cast<ssize_t>(length)) {
    (icmp ? env_.counters.icmp_send_errors : env_.counters.udp_send_errors).add();
    return true;
  }
  (icmp ? env_.counters.icmp_echo_requests : env_.counters.udp_datagrams_out).add();
  return true;
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
  // back to the guest's, and the checksum is redone over the whole message.
  std::array<std::byte, kIcmpHeaderSize> ih{};
  iov_read(buffer, kEthIpv4Size, ih);
  store_be<std::uint16_t>(ih.data() + 4, f.key.guest_port);
  store_be<std::uint16_t>(ih.data() + 2, 0);
  Checksum sum;
  sum.add(ih);
  add_iov(sum, buffer, kEthIpv4Size + kIcmpHeaderSize, len - kIcmpHeaderSize);
  store_be<std::uint16_t>(ih.data() + 2, sum.finish());
  iov_write(buffer, kEthIpv4Size, ih);
  std::array<std::byte, kEthIpv4Size> h{};
  write_eth_ipv4(h, *env_.guest_mac, env_.cfg.gateway_mac,
                 Ipv4Fields{f.key.remote.ipv4(), f.key.guest.ipv4(), ip_proto::kIcmp,
                            static_cast<std::uint16_t>(len), ip_id_++, 64, 0});
  iov_write(buffer, 0, h);
  env_.counters.icmp_echo_replies.add();
}

std::size_t DatagramFlows::next_raw_icmp_frame(std::span<const iovec> buffer) {
  std::uint64_t ignored = 0;
  std::size_t written = 0;
  while (auto r = raw_.receive(ignored)) {
    // Only an echo reply to a live flow, from the address it pinged, and
    // only if it fits: anything else the raw socket sees stays here.
    auto it = raw_ids_.find(r->id);
    if (it == raw_ids_.end() || flows_[it->second].peer.sin_addr.s_addr != htonl(r->src.value)) {
      ++ignored;
      continue;
    }
    Flow& f = flows_[it->second];
    const std::size_t len = r->message.size();
    if (kEthIpv4Size + len > iov_length(buffer) || len > 65535 - kIpv4HeaderSize) {
      env_.counters.drop_too_big_for_guest.add();
      continue;
    }
    iov_write(buffer, kEthIpv4Size, r->message);
    finish_icmp_frame(buffer, f, len);
    mark_used(f);
    written = kEthIpv4Size + len;
    break;
  }
  if (written == 0) raw_ready_ = false;  // level-triggered: epoll reports the socket again
  env_.counters.icmp_raw_ignored.add(ignored);
  return written;
}

std::size_t DatagramFlows::fragment(std::span<const iovec> buffer, const Flow& f, std::size_t len) {
  Outgoing& o = outgoing_;
  o.packet.resize(len);
  iov_read(buffer, kEthIpv4Size, o.packet);
  o.sent = 0;
  o.src = f.key.remote.ipv4();
  o.dst = f.key.guest.ipv4();
  o.protocol = f.key.protocol;
  o.id = ip_id_++;
  return next_fragment(buffer);
}

std::size_t DatagramFlows::next_fragment(std::span<const iovec> buffer) {
  Outgoing& o = outgoing_;
  // Every fragment but the last carries a multiple of 8 bytes (RFC 791).
  const std::size_t per = (env_.cfg.mtu - kIpv4HeaderSize) / 8 * 8;
  const std::size_t n = std::min(per, o.packet.size() - o.sent);
  if (iov_length(buffer) < kEthIpv4Size + n) {
    env_.counters.drop_too_big_for_guest.add();  // a buffer smaller than the MTU: the datagram is lost
    o.sent = o.packet.size();
    return 0;
  }
  const bool more = o.sent + n < o.packet.size();
  std::array<std::byte, kEthIpv4Size> h{};
  write_eth_ipv4(h, *env_.guest_mac, env_.cfg.gateway_mac,
                 Ipv4Fields{o.src, o.dst, o.protocol, static_cast<std::uint16_t>(n), o.id, 64, 0,
                            static_cast<std::uint16_t>((more ? 0x2000 : 0) | o.sent / 8)});
  iov_write(buffer, 0, h);
  iov_write(buffer, kEthIpv4Size, std::span(o.packet).subspan(o.sent, n));
  o.sent += n;
  env_.counters.ip_fragments_to_guest.add();
  return kEthIpv4Size + n;
}

std::size_t DatagramFlows::next_frame(std::span<const iovec> buffer) {
  if (outgoing_.pending() && env_.guest_mac) return next_fragment(buffer);
  if (raw_ready_ && env_.guest_mac) {
    if (const std::size_t n = next_raw_icmp_frame(buffer); n != 0) return n;
  }
  while (!ready_.empty()) {
    const std::uint32_t slot = ready_.front();
    if (!flows_[slot].live || !flows_[slot].ready) {
      ready_.pop_front();
      continue;
    }
    if (!env_.guest_mac) {
      // No guest to address yet: leave the datagram in the socket.
      return 0;
    }
    const bool icmp = flows_[slot].key.protocol == ip_proto::kIcmp;
    const std::size_t hdr = kEthIpv4Size + (icmp ? 0 : kUdpHeaderSize);
    std::array<iovec, 64> tail;  // the first n are set
    const std::size_t nt = iov_tail(buffer, hdr, tail);
    const std::size_t room = iov_length(std::span(tail.data(), nt));
    const std::size_t max_payload = 65535 - kIpv4HeaderSize - (icmp ? 0 : kUdpHeaderSize);
    sockaddr_in peer{};
    msghdr m{};
    m.msg_iov = tail.data();
    m.msg_iovlen = nt;
    if (flows_[slot].listener) {
      m.msg_name = &peer;
      m.msg_namelen = sizeof peer;
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
    std::array<std::byte, kUdpFrameOverhead> h{};
    if (icmp) {
      // Ping sockets pass echo replies only; be sure before rewriting it.
      std::array<std::byte, 1> type{};
      iov_read(buffer, hdr, type);
      if (static_cast<std::uint8_t>(type[0]) != icmp_type::kEchoReply) {
        env_.counters.icmp_recv_errors.add();
        continue;
      }
      finish_icmp_frame(buffer, f, len);
    } else {
      Checksum payload;
      add_iov(payload, buffer, hdr, len);
      write_udp_frame_headers(h, UdpEndpoints{*env_.guest_mac, env_.cfg.gateway_mac, f.key.remote.ipv4(),
                                              f.key.remote_port, f.key.guest.ipv4(), f.key.guest_port},
                              static_cast<std::uint16_t>(len), payload, ip_id_++);
      iov_write(buffer, 0, h);
      env_.counters.udp_datagrams_in.add();
    }
    // Larger than the guest's MTU: fragments, never one oversize frame.
    if (hdr + len - kEthIpv4Size > env_.cfg.mtu - kIpv4HeaderSize) return fragment(buffer, f, hdr + len - kEthIpv4Size);
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
