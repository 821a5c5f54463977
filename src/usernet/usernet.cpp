#include "usernet/usernet.hpp"

#include "memory/iovec_ops.hpp"
#include "packet/dhcp.hpp"
#include "packet/headers.hpp"

namespace vnk::usernet {

using namespace packet;

UserNet::UserNet(UsernetConfig cfg)
    : cfg_(std::move(cfg)), dhcp_(cfg_, counters_), replies_(kReplyQueueFrames, kWorkBufferSize) {}

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
  if (frame.length > work_.size()) {
    counters_.drop_oversize.add();
    return net::TxResult::dropped;
  }
  const std::span<const std::byte> bytes(work_.data(), iov_read(frame.data, 0, std::span(work_).first(frame.length)));
  auto eth = parse_ethernet(bytes);
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
  guest_mac_ = eth->src;
  switch (eth->type) {
    case ethertype::kArp: handle_arp(eth->payload); break;
    case ethertype::kIpv4: handle_ipv4(eth->payload); break;
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

void UserNet::handle_ipv4(std::span<const std::byte> payload) {
  auto ip = parse_ipv4(payload);
  if (!ip) {
    counters_.drop_malformed.add();
    return;
  }
  if (ip->protocol == ip_proto::kUdp) {
    auto udp = parse_udp(*ip);
    if (!udp) {
      counters_.drop_malformed.add();
      return;
    }
    if (udp->dst_port == kDhcpServerPort) {
      auto msg = parse_dhcp(udp->payload);
      if (!msg) {
        counters_.drop_malformed.add();
        return;
      }
      queue_reply([&](std::span<std::byte> out) { return dhcp_.handle(*msg, out); });
      return;
    }
  }
  counters_.drop_unsupported.add();
}

net::RxResult UserNet::receive(std::span<const iovec> buffer) {
  net::RxResult r = replies_.pop_into(buffer);
  if (r.status == net::RxStatus::frame) counters_.frames_to_guest.add();
  return r;
}

}  // namespace vnk::usernet
