#include "usernet/guest_frame.hpp"

#include <algorithm>

namespace vnk::usernet {

std::size_t write_eth_ipv4(std::span<std::byte> out, MacAddress guest, MacAddress gateway,
                           const packet::Ipv4Fields& ip) {
  packet::write_ethernet(out, guest, gateway, packet::ethertype::kIpv4);
  packet::write_ipv4(out.subspan(packet::kEthernetHeaderSize), ip);
  return kEthIpv4Size;
}

std::size_t write_eth_ip(std::span<std::byte> out, MacAddress guest, MacAddress gateway, const packet::IpFields& ip) {
  packet::write_ethernet(out, guest, gateway, ip.src.is_v4() ? packet::ethertype::kIpv4 : packet::ethertype::kIpv6);
  return packet::kEthernetHeaderSize + packet::write_ip(out.subspan(packet::kEthernetHeaderSize), ip);
}

void add_iov(packet::Checksum& sum, std::span<const iovec> iov, std::size_t offset, std::size_t len) noexcept {
  for (const iovec& v : iov) {
    if (len == 0) break;
    if (offset >= v.iov_len) {
      offset -= v.iov_len;
      continue;
    }
    const std::size_t n = std::min(v.iov_len - offset, len);
    sum.add(std::span(static_cast<const std::byte*>(v.iov_base) + offset, n));
    len -= n;
    offset = 0;
  }
}

}  // namespace vnk::usernet
