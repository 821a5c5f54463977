#include "usernet/dhcpv6_server.hpp"

#include <algorithm>

#include "base/byte_order.hpp"
#include "packet/dns_name.hpp"

namespace vnk::usernet {

using namespace packet;

Dhcpv6Server::Dhcpv6Server(const UsernetConfig& cfg, UsernetCounters& counters)
    : link_local_(Ipv6Address::link_local_from(cfg.gateway_mac)), cfg_(cfg), counters_(counters) {
  store_be<std::uint16_t>(duid_.data(), 3);      // DUID-LL
  store_be<std::uint16_t>(duid_.data() + 2, 1);  // hardware type: Ethernet
  cfg.gateway_mac.store(duid_.data() + 4);
}

std::size_t Dhcpv6Server::handle(const Ipv6Address& client, std::uint16_t client_port, const Dhcpv6Message& msg,
                                 const MacAddress& guest_mac, std::optional<std::uint32_t> guest_index,
                                 std::span<std::byte> out) {
  using namespace dhcpv6_type;
  const bool ours = msg.server_id && std::ranges::equal(*msg.server_id, duid_);
  const auto ignore = [&] {
    counters_.dhcpv6_ignored.add();
    return std::size_t{0};
  };
  std::uint8_t reply_type = kReply;
  switch (msg.type) {
    case kSolicit:
      counters_.dhcpv6_solicits.add();
      if (!msg.client_id || msg.server_id) return ignore();
      if (!msg.rapid_commit || !cfg_.ipv6.dhcp_address) reply_type = kAdvertise;
      break;
    case kRequest:
    case kRenew:
    case kRelease:
    case kDecline:
      counters_.dhcpv6_requests.add();
      if (!msg.client_id || !ours) return ignore();
      break;
    case kRebind:
    case kConfirm:
      counters_.dhcpv6_requests.add();
      if (!msg.client_id || msg.server_id) return ignore();
      break;
    case kInformationRequest:
      counters_.dhcpv6_information_requests.add();
      if (msg.server_id && !ours) return ignore();
      break;
    default: return ignore();  // server messages, relay messages, Reconfigure
  }

  // Ethernet + IPv6 + UDP in front; the DHCPv6 message behind them.
  constexpr std::size_t kHeaders = kEthernetHeaderSize + kIpv6HeaderSize + kUdpHeaderSize;
  if (out.size() < kHeaders) return 0;
  Dhcpv6Writer w(out.subspan(kHeaders), reply_type, msg.transaction);
  w.option(dhcpv6_option::kServerId, duid_);
  if (msg.client_id) w.option(dhcpv6_option::kClientId, *msg.client_id);
  if (reply_type == kReply && msg.type == kSolicit) w.option(dhcpv6_option::kRapidCommit, {});
  const bool releasing = msg.type == kRelease || msg.type == kDecline;
  if (releasing || msg.type == kConfirm) {
    w.status(dhcpv6_status::kSuccess, releasing ? "released" : "on link");
  } else if (msg.ia_na && msg.type != kInformationRequest) {
    std::array<std::byte, 12> ia{};  // IAID, T1, T2
    store_be<std::uint32_t>(ia.data(), *msg.ia_na);
    if (cfg_.ipv6.dhcp_address && guest_index) {
      store_be<std::uint32_t>(ia.data() + 4, kPreferredSeconds / 2);
      store_be<std::uint32_t>(ia.data() + 8, kPreferredSeconds * 4 / 5);
      w.begin(dhcpv6_option::kIaNa, ia);
      std::array<std::byte, 24> addr{};
      cfg_.ipv6.guest.store(addr.data());
      store_be<std::uint32_t>(addr.data() + 12, load_be<std::uint32_t>(addr.data() + 12) + *guest_index);
      store_be<std::uint32_t>(addr.data() + 16, kPreferredSeconds);
      store_be<std::uint32_t>(addr.data() + 20, kValidSeconds);
      w.option(dhcpv6_option::kIaAddr, addr);
      w.end();
      counters_.dhcpv6_addresses.add();
    } else {
      w.begin(dhcpv6_option::kIaNa, ia);
      w.status(dhcpv6_status::kNoAddrsAvail, "SLAAC only: addresses come from the router advertisement");
      w.end();
    }
  }
  if (!releasing) {
    std::array<std::byte, 16> dns{};
    cfg_.ipv6.dns.store(dns.data());
    w.option(dhcpv6_option::kDnsServers, dns);
    std::array<std::byte, 256> name{};
    if (const std::size_t n = cfg_.domain.empty() ? 0 : write_dns_name(name, cfg_.domain); n != 0)
      w.option(dhcpv6_option::kDomainList, std::span(name).first(n));
    if (msg.type == kInformationRequest) w.option_u32(dhcpv6_option::kInformationRefreshTime, 86400);
  }
  if (!w.ok()) return 0;
  const auto len = static_cast<std::uint16_t>(w.size());
  const std::size_t n = write_udp_frame(
      out, UdpEndpoints{guest_mac, cfg_.gateway_mac, link_local_, kDhcpv6ServerPort, client, client_port}, len);
  counters_.dhcpv6_replies.add();
  return n;
}

}  // namespace vnk::usernet
