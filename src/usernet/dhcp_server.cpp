#include "usernet/dhcp_server.hpp"

#include "packet/headers.hpp"

namespace vnk::usernet {

using namespace packet;

std::size_t DhcpServer::handle(const DhcpMessage& msg, std::span<std::byte> out) {
  if (msg.op != 1) {
    counters_.dhcp_ignored.add();
    return 0;
  }
  switch (msg.message_type) {
    case dhcp_type::kDiscover:
      counters_.dhcp_discovers.add();
      return reply(msg, dhcp_type::kOffer, out);
    case dhcp_type::kRequest: {
      counters_.dhcp_requests.add();
      // A REQUEST naming another server is the client choosing that server.
      if (msg.server_id && *msg.server_id != cfg_.gateway) {
        counters_.dhcp_ignored.add();
        return 0;
      }
      // SELECTING/INIT-REBOOT name the address in option 50; RENEWING and
      // REBINDING put it in ciaddr.
      const Ipv4Address wanted = msg.requested_ip.value_or(msg.ciaddr);
      if (wanted != cfg_.guest) return reply(msg, dhcp_type::kNak, out);
      leased_ = true;
      return reply(msg, dhcp_type::kAck, out);
    }
    case dhcp_type::kInform:
      counters_.dhcp_informs.add();
      return reply(msg, dhcp_type::kAck, out);
    case dhcp_type::kRelease:
    case dhcp_type::kDecline:
      counters_.dhcp_releases.add();
      leased_ = false;
      return 0;
    default: counters_.dhcp_ignored.add(); return 0;
  }
}

std::size_t DhcpServer::reply(const DhcpMessage& msg, std::uint8_t type, std::span<std::byte> out) {
  if (out.size() < kUdpFrameOverhead + kDhcpFixedSize + 64) return 0;
  const bool inform = msg.message_type == dhcp_type::kInform;
  const bool nak = type == dhcp_type::kNak;
  const Ipv4Address yiaddr = (inform || nak) ? kIpv4Any : cfg_.guest;
  DhcpWriter w(out.subspan(kUdpFrameOverhead), msg, type, yiaddr, nak ? kIpv4Any : cfg_.gateway);
  w.option_ip(dhcp_option::kServerId, cfg_.gateway);
  if (!nak) {
    if (!inform) {
      w.option_u32(dhcp_option::kLeaseTime, cfg_.lease_seconds);
      w.option_u32(dhcp_option::kRenewalTime, cfg_.lease_seconds / 2);
      w.option_u32(dhcp_option::kRebindingTime, static_cast<std::uint32_t>(cfg_.lease_seconds / 8ull * 7));
    }
    w.option_ip(dhcp_option::kSubnetMask, cfg_.netmask());
    w.option_ip(dhcp_option::kRouter, cfg_.gateway);
    w.option_ip(dhcp_option::kDns, cfg_.dns);
    w.option_ip(dhcp_option::kBroadcast, cfg_.broadcast());
    w.option_u16(dhcp_option::kInterfaceMtu, cfg_.mtu);
    if (!cfg_.hostname.empty()) w.option(dhcp_option::kHostname, std::as_bytes(std::span(cfg_.hostname)));
    if (!cfg_.domain.empty()) w.option(dhcp_option::kDomainName, std::as_bytes(std::span(cfg_.domain)));
  }
  const std::size_t len = w.finish();
  if (len == 0) return 0;

  // RFC 2131 §4.1: to ciaddr when the client has one; broadcast when it asks
  // for it or for a NAK; otherwise to the offered address at its MAC.
  UdpEndpoints e{msg.chaddr, cfg_.gateway_mac, cfg_.gateway, kDhcpServerPort, yiaddr, kDhcpClientPort};
  if (msg.ciaddr != kIpv4Any && !nak) {
    e.dst = msg.ciaddr;
  } else if (nak || (msg.flags & 0x8000) != 0 || yiaddr == kIpv4Any) {
    e.dst = kIpv4Broadcast;
    e.dst_mac = MacAddress::broadcast();
  }
  switch (type) {
    case dhcp_type::kOffer: counters_.dhcp_offers.add(); break;
    case dhcp_type::kAck: counters_.dhcp_acks.add(); break;
    case dhcp_type::kNak: counters_.dhcp_naks.add(); break;
    default: break;
  }
  return write_udp_frame(out, e, static_cast<std::uint16_t>(len));
}

}  // namespace vnk::usernet
