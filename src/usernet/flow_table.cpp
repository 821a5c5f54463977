#include "usernet/flow_table.hpp"

#include <arpa/inet.h>
#include <sys/random.h>

#include <ctime>

namespace vnk::usernet {

std::uint64_t random_seed() noexcept {
  std::uint64_t v = 0;
  if (::getrandom(&v, sizeof v, GRND_NONBLOCK) != sizeof v) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    v = static_cast<std::uint64_t>(ts.tv_nsec) * 0x9e3779b97f4a7c15ull;
  }
  return v;
}

std::string FlowKey::to_string() const {
  const auto end = [](const IpAddress& a, std::uint16_t port) {
    return a.to_uri_host() + ":" + std::to_string(port);
  };
  return end(guest, guest_port) + " > " + end(remote, remote_port);
}

std::size_t FlowKeyHash::operator()(const FlowKey& k) const noexcept {
  // FNV-1a over the key's bytes, then a multiplicative mix: the guest
  // chooses ports and addresses, so no field may cancel another.
  std::uint64_t h = 0xcbf29ce484222325ull ^ seed;
  const auto mix = [&h](std::uint8_t b) { h = (h ^ b) * 0x100000001b3ull; };
  mix(k.protocol);
  for (const auto b : k.guest.bytes) mix(b);
  for (const auto b : k.remote.bytes) mix(b);
  mix(static_cast<std::uint8_t>(k.guest_port)), mix(static_cast<std::uint8_t>(k.guest_port >> 8));
  mix(static_cast<std::uint8_t>(k.remote_port)), mix(static_cast<std::uint8_t>(k.remote_port >> 8));
  h *= 0x9e3779b97f4a7c15ull;
  return static_cast<std::size_t>(h ^ (h >> 29));
}

}  // namespace vnk::usernet
