#include "usernet/guest_neighbors.hpp"

#include <algorithm>
#include <cstring>

#include "usernet/flow_table.hpp"

namespace vnk::usernet {

std::size_t GuestNeighbors::Hash::operator()(const packet::IpAddress& a) const noexcept {
  // Guests choose their addresses; a per-process seed keeps them from
  // piling into one bucket.
  static const std::uint64_t seed = random_seed();
  std::uint64_t lo = 0, hi = 0;
  std::memcpy(&lo, a.bytes.data(), 8);
  std::memcpy(&hi, a.bytes.data() + 8, 8);
  std::uint64_t h = (lo ^ seed) * 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 29) ^ hi) * 0xbf58476d1ce4e5b9ull;
  return static_cast<std::size_t>(h ^ (h >> 32));
}

GuestNeighbors::GuestNeighbors(std::optional<MacAddress> initial) : last_(initial) {}

void GuestNeighbors::saw(const MacAddress& mac) {
  if (last_ && *last_ != mac) several_ = true;
  last_ = mac;
}

void GuestNeighbors::learn(const packet::IpAddress& ip, const MacAddress& mac) {
  saw(mac);
  const std::uint64_t now = ++sequence_;
  if (auto it = table_.find(ip); it != table_.end()) {
    it->second = Entry{mac, now};
    return;
  }
  if (table_.size() >= kMaxEntries) {
    auto oldest = std::min_element(table_.begin(), table_.end(),
                                   [](const auto& a, const auto& b) { return a.second.seen < b.second.seen; });
    table_.erase(oldest);
  }
  table_.emplace(ip, Entry{mac, now});
}

MacAddress GuestNeighbors::mac_for(const packet::IpAddress& ip) const {
  if (auto it = table_.find(ip); it != table_.end()) return it->second.mac;
  if (!several_ && last_) return *last_;
  return kUnknown;
}

}  // namespace vnk::usernet
