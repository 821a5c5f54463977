#include "packet/ip.hpp"

#include "packet/headers.hpp"
#include "packet/ipv6.hpp"

namespace vnk::packet {

IpPacket ip_packet(const Ipv4& ip) {
  return IpPacket{ip.src, ip.dst, ip.protocol, ip.header_len, ip.payload_len, ip.payload};
}

IpPacket ip_packet(const Ipv6& ip) {
  return IpPacket{ip.src, ip.dst, ip.protocol, ip.header_len, ip.payload_len, ip.payload};
}

std::size_t write_ip(std::span<std::byte> out, const IpFields& f) {
  if (f.src.is_v4()) {
    write_ipv4(out, Ipv4Fields{f.src.ipv4(), f.dst.ipv4(), f.protocol, f.payload_len, f.id, f.ttl, 0});
    return kIpv4HeaderSize;
  }
  write_ipv6(out, Ipv6Fields{f.src.ipv6(), f.dst.ipv6(), f.protocol, f.payload_len, f.ttl, 0});
  return kIpv6HeaderSize;
}

void add_pseudo_header(Checksum& c, const IpAddress& src, const IpAddress& dst, std::uint8_t protocol,
                       std::uint32_t length) noexcept {
  if (src.is_v4()) {
    add_ipv4_pseudo_header(c, src.ipv4().value, dst.ipv4().value, protocol, static_cast<std::uint16_t>(length));
  } else {
    add_ipv6_pseudo_header(c, src.ipv6(), dst.ipv6(), protocol, length);
  }
}

}  // namespace vnk::packet
