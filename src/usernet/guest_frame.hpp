// Building frames for the guest around payload that is already in place:
// the Ethernet + IP headers usernet prepends to every reply, and the
// internet checksum over payload that sits in (guest) iovecs.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <span>

#include "base/mac_address.hpp"
#include "packet/checksum.hpp"
#include "packet/headers.hpp"
#include "packet/ipv6.hpp"

namespace vnk::usernet {

constexpr std::size_t kEthIpv4Size = packet::kEthernetHeaderSize + packet::kIpv4HeaderSize;
constexpr std::size_t kEthIpv6Size = packet::kEthernetHeaderSize + packet::kIpv6HeaderSize;
// Ethernet and IP headers of a frame of the family of `a`.
[[nodiscard]] constexpr std::size_t eth_ip_size(const packet::IpAddress& a) noexcept {
  return packet::kEthernetHeaderSize + packet::ip_header_size(a);
}

// Writes Ethernet (gateway -> guest) and IPv4 headers; returns kEthIpv4Size.
std::size_t write_eth_ipv4(std::span<std::byte> out, MacAddress guest, MacAddress gateway,
                           const packet::Ipv4Fields& ip);
// Writes Ethernet (gateway -> guest) and the IP header of ip.src's family;
// returns eth_ip_size(ip.src).
std::size_t write_eth_ip(std::span<std::byte> out, MacAddress guest, MacAddress gateway, const packet::IpFields& ip);
// Adds `len` bytes of `iov`, starting `offset` bytes in, to `sum`.
void add_iov(packet::Checksum& sum, std::span<const iovec> iov, std::size_t offset, std::size_t len) noexcept;

}  // namespace vnk::usernet
