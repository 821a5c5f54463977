// Which MAC address each guest IP address sits behind, learned from the
// source addresses of the guests' own frames -- the user-mode network's
// neighbour table. With one guest on the link it is that guest's MAC for
// every address (the frames it was given first); with several guests on
// one switch (vnetkit serve --guests) each flow's frames go to the MAC that
// sent from the flow's guest address.
//
// Bounded: at most kMaxEntries addresses (a guest that sprays source
// addresses evicts the least recently seen, never grows memory). A frame
// for an address no longer (or never) learned, while more than one MAC has
// been seen, goes to kUnknown -- 00:00:00:00:00:00, which no port owns: the
// switch drops and counts it rather than guess a guest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>

#include "base/mac_address.hpp"
#include "packet/ip_address.hpp"

namespace vnk::usernet {

class GuestNeighbors {
 public:
  static constexpr std::size_t kMaxEntries = 256;
  static constexpr MacAddress kUnknown{};

  // `initial`: a MAC known before any frame (a TAP's in a namespace).
  explicit GuestNeighbors(std::optional<MacAddress> initial = std::nullopt);

  // A guest frame from `mac` with source address `ip` (not unspecified or
  // multicast: the caller checks).
  void learn(const packet::IpAddress& ip, const MacAddress& mac);
  // A guest frame from `mac` with no usable source address (ARP, DHCP from
  // 0.0.0.0): the MAC counts as seen.
  void saw(const MacAddress& mac);
  // The MAC frames to `ip` go to.
  [[nodiscard]] MacAddress mac_for(const packet::IpAddress& ip) const;
  // Some guest has sent a frame (or its MAC was given): frames can be addressed.
  [[nodiscard]] bool known() const noexcept { return last_.has_value(); }
  // The most recent guest MAC seen.
  [[nodiscard]] std::optional<MacAddress> last() const noexcept { return last_; }
  [[nodiscard]] std::size_t size() const noexcept { return table_.size(); }

 private:
  struct Hash {
    std::size_t operator()(const packet::IpAddress& a) const noexcept;
  };
  struct Entry {
    MacAddress mac;
    std::uint64_t seen = 0;  // learn() sequence number, for eviction
  };
  std::unordered_map<packet::IpAddress, Entry, Hash> table_;
  std::optional<MacAddress> last_;
  bool several_ = false;  // more than one MAC has been seen
  std::uint64_t sequence_ = 0;
};

}  // namespace vnk::usernet
