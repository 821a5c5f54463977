#include "usernet/dhcp_server.hpp"

#include "packet/headers.hpp"

namespace vnk::usernet {

using namespace packet;

DhcpServer::DhcpServer(const UsernetConfig& cfg, UsernetCounters& counters)
    : cfg_(cfg), counters_(counters), pool_(cfg.guests == 0 ? 1 : cfg.guests) {}

bool DhcpServer::leased() const noexcept {
  for (const Lease& l : pool_)
    if (l.bound) return true;
  return false;
}

std::optional<std::size_t> DhcpServer::index_of(Ipv4Address ip) const noexcept {
  const std::uint32_t i = ip.value - cfg_.guest.value;  // wraps for addresses below the pool
  if (i >= pool_.size()) return std::nullopt;
  return i;
}

std::optional<Ipv4Address> DhcpServer::lease_of(const MacAddress& mac) const noexcept {
  for (std::size_t i = 0; i < pool_.size(); ++i)
    if (pool_[i].bound && pool_[i].mac == mac) return Ipv4Address{cfg_.guest.value + static_cast<std::uint32_t>(i)};
  return std::nullopt;
}

std::optional<std::size_t> DhcpServer::place(const MacAddress& mac, std::optional<Ipv4Address> wanted,
                                             std::uint64_t now_ms) {
  // One guest: its address, whoever asks.
  if (pool_.size() == 1) {
    if (pool_[0].mac != mac) pool_[0] = Lease{mac, 0, true, false};
    return 0;
  }
  for (Lease& l : pool_)
    if (l.held && l.expires_ms <= now_ms) l = Lease{};  // run out
  for (std::size_t i = 0; i < pool_.size(); ++i)
    if (pool_[i].held && pool_[i].mac == mac) return i;
  std::optional<std::size_t> free;
  if (wanted)
    if (auto i = index_of(*wanted); i && !pool_[*i].held) free = i;
  for (std::size_t i = 0; !free && i < pool_.size(); ++i)
    if (!pool_[i].held) free = i;
  if (!free) {
    counters_.dhcp_pool_exhausted.add();
    return std::nullopt;
  }
  pool_[*free] = Lease{mac, now_ms + kOfferMs, true, false};
  return free;
}

std::optional<std::uint32_t> DhcpServer::guest_index(const MacAddress& mac, std::uint64_t now_ms) {
  auto i = place(mac, std::nullopt, now_ms);
  if (!i) return std::nullopt;
  return static_cast<std::uint32_t>(*i);
}

std::size_t DhcpServer::handle(const DhcpMessage& msg, std::uint64_t now_ms, std::span<std::byte> out) {
  if (msg.op != 1) {
    counters_.dhcp_ignored.add();
    return 0;
  }
  const auto address = [this](std::size_t i) { return Ipv4Address{cfg_.guest.value + static_cast<std::uint32_t>(i)}; };
  switch (msg.message_type) {
    case dhcp_type::kDiscover: {
      counters_.dhcp_discovers.add();
      auto i = place(msg.chaddr, msg.requested_ip, now_ms);
      if (!i) return 0;
      return reply(msg, dhcp_type::kOffer, address(*i), out);
    }
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
      auto i = place(msg.chaddr, wanted, now_ms);
      if (!i || address(*i) != wanted) return reply(msg, dhcp_type::kNak, kIpv4Any, out);
      Lease& l = pool_[*i];
      l.bound = true;
      l.expires_ms = now_ms + std::uint64_t{cfg_.lease_seconds} * 1000;
      return reply(msg, dhcp_type::kAck, wanted, out);
    }
    case dhcp_type::kInform:
      counters_.dhcp_informs.add();
      return reply(msg, dhcp_type::kAck, kIpv4Any, out);
    case dhcp_type::kRelease:
    case dhcp_type::kDecline:
      counters_.dhcp_releases.add();
      for (Lease& l : pool_)
        if (l.held && l.mac == msg.chaddr) l = Lease{};
      return 0;
    default: counters_.dhcp_ignored.add(); return 0;
  }
}

std::size_t DhcpServer::reply(const DhcpMessage& msg, std::uint8_t type, Ipv4Address yiaddr, std::span<std::byte> out) {
  if (out.size() < kUdpFrameOverhead + kDhcpFixedSize + 64) return 0;
  const bool inform = msg.message_type == dhcp_type::kInform;
  const bool nak = type == dhcp_type::kNak;
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
