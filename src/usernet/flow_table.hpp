// One flow table for every protocol usernet relays (TCP, UDP, ICMP echo):
// keys wide enough for IPv6, slots reused through a free list with a
// generation each, a hash index, epoll tags that name slot and generation,
// an order of use for evicting the least recently used flow, and the
// remote-port probing that forwarded connections need.
//
// A flow's record derives from FlowHeader, which the table fills: key,
// generation and whether the slot is live. TcpFlows and DatagramFlows each
// keep one table of their own records; the key type, slot handling and
// index are this one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "packet/ip_address.hpp"

namespace vnk::usernet {

// epoll tags inside usernet: kind in the top byte, then a generation, then
// the flow's slot, so an event for a flow that closed and whose slot was
// reused is recognised as stale.
enum class TagKind : std::uint8_t { timer = 1, tcp = 2, datagram = 3, listener = 4, raw_icmp = 5 };
constexpr std::uint64_t make_tag(TagKind k, std::uint16_t gen, std::uint32_t slot) noexcept {
  return (std::uint64_t{static_cast<std::uint8_t>(k)} << 56) | (std::uint64_t{gen} << 32) | slot;
}
constexpr TagKind tag_kind(std::uint64_t t) noexcept { return static_cast<TagKind>(t >> 56); }
constexpr std::uint16_t tag_gen(std::uint64_t t) noexcept { return static_cast<std::uint16_t>(t >> 32); }
constexpr std::uint32_t tag_slot(std::uint64_t t) noexcept { return static_cast<std::uint32_t>(t); }

using packet::IpAddress;

// A guest flow: protocol, the guest's end and the remote end. For ICMP echo
// the identifier stands in guest_port and remote_port is 0.
struct FlowKey {
  std::uint8_t protocol = 0;
  IpAddress guest;
  std::uint16_t guest_port = 0;
  IpAddress remote;
  std::uint16_t remote_port = 0;

  [[nodiscard]] bool is_v4() const noexcept { return guest.is_v4(); }
  // "guest:port > remote:port", for logs.
  [[nodiscard]] std::string to_string() const;
  friend constexpr bool operator==(const FlowKey&, const FlowKey&) = default;
};

// Keyed with a random seed per table: the guest chooses addresses and
// ports, and must not be able to pile its flows into one bucket.
struct FlowKeyHash {
  std::uint64_t seed = 0;
  std::size_t operator()(const FlowKey& k) const noexcept;
};
std::uint64_t random_seed() noexcept;

// What every flow record starts with; the table sets it.
struct FlowHeader {
  FlowKey key{};
  std::uint16_t gen = 0;
  bool live = false;     // the slot holds a flow
  bool indexed = false;  // findable by key (port-forward listeners are not)
};

template <typename Record>
class FlowTable {
  static_assert(std::is_base_of_v<FlowHeader, Record>);

 public:
  explicit FlowTable(TagKind kind) : kind_(kind), index_(16, FlowKeyHash{random_seed()}) {}

  // The slot of the flow with `key`, if one is open.
  [[nodiscard]] std::optional<std::uint32_t> find(const FlowKey& key) const {
    const auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  // A live record for `key` in a fresh slot, with a new generation, most
  // recently used; listed in the index unless `indexed` is false. The key
  // must not be open already.
  std::uint32_t open(const FlowKey& key, bool indexed = true) {
    std::uint32_t s = 0;
    if (!free_.empty()) {
      s = free_.back();
      free_.pop_back();
    } else {
      s = static_cast<std::uint32_t>(records_.size());
      records_.emplace_back();
      order_.push_back(Link{});
    }
    Record& r = records_[s];
    r.key = key;
    r.gen = next_gen_++;
    r.live = true;
    r.indexed = indexed;
    if (indexed) index_.emplace(key, s);
    link_newest(s);
    return s;
  }
  // Ends the flow in slot `s`: out of the index and the order of use, the
  // record reset (its sockets closed), the slot free for reuse.
  void close(std::uint32_t s) {
    Record& r = records_[s];
    if (!r.live) return;
    if (r.indexed) index_.erase(r.key);
    unlink(s);
    r = Record{};
    free_.push_back(s);
  }
  Record& operator[](std::uint32_t s) noexcept { return records_[s]; }
  const Record& operator[](std::uint32_t s) const noexcept { return records_[s]; }
  // The live record an epoll tag's slot and generation name; nullptr for a
  // stale tag (the flow closed, its slot perhaps reused).
  Record* at(std::uint32_t s, std::uint16_t gen) noexcept {
    if (s >= records_.size() || !records_[s].live || records_[s].gen != gen) return nullptr;
    return &records_[s];
  }
  // The slot of a record of this table.
  [[nodiscard]] std::uint32_t slot_of(const Record& r) const noexcept {
    return static_cast<std::uint32_t>(&r - records_.data());
  }
  [[nodiscard]] std::uint64_t tag(std::uint32_t s) const noexcept { return make_tag(kind_, records_[s].gen, s); }

  // The flow in slot `s` was used now: it becomes the last to be evicted.
  void touch(std::uint32_t s) noexcept {
    unlink(s);
    link_newest(s);
  }
  // The least recently used indexed flow (listeners are never evicted)
  // that `evictable` accepts.
  template <typename Pred>
  [[nodiscard]] std::optional<std::uint32_t> least_recent(Pred&& evictable) const {
    for (std::uint32_t s = head_; s != kNone; s = order_[s].next)
      if (records_[s].indexed && evictable(records_[s])) return s;
    return std::nullopt;
  }
  [[nodiscard]] std::optional<std::uint32_t> least_recent() const {
    return least_recent([](const Record&) { return true; });
  }

  // A key for a new flow like `key` whose remote port is free: while another
  // flow holds it, the port moves on (to 49152 from below 1024). `mine(slot)`
  // says whether the flow found is the one wanted after all; then its slot
  // is returned in `existing`. nullopt after kProbeLimit tries.
  static constexpr unsigned kProbeLimit = 1000;
  struct Probe {
    FlowKey key;
    std::optional<std::uint32_t> existing;
  };
  template <typename Mine>
  [[nodiscard]] std::optional<Probe> probe_remote_port(FlowKey key, Mine&& mine) const {
    for (unsigned tries = 0; tries < kProbeLimit; ++tries) {
      const auto s = find(key);
      if (!s) return Probe{key, std::nullopt};
      if (mine(*s)) return Probe{key, *s};
      key.remote_port = static_cast<std::uint16_t>(key.remote_port < 1024 ? 49152 : key.remote_port + 1);
    }
    return std::nullopt;
  }

  // Indexed flows open.
  [[nodiscard]] std::size_t size() const noexcept { return index_.size(); }
  // Slots ever used (live or free): the bound for a scan.
  [[nodiscard]] std::uint32_t extent() const noexcept { return static_cast<std::uint32_t>(records_.size()); }
  template <typename F>
  void for_each_live(F&& f) {
    for (std::uint32_t s = 0; s < extent(); ++s)
      if (records_[s].live) f(s, records_[s]);
  }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  struct Link {
    std::uint32_t prev = kNone, next = kNone;
  };
  void link_newest(std::uint32_t s) noexcept {
    order_[s] = Link{tail_, kNone};
    if (tail_ != kNone) order_[tail_].next = s;
    else head_ = s;
    tail_ = s;
  }
  void unlink(std::uint32_t s) noexcept {
    const Link l = order_[s];
    if (l.prev != kNone) order_[l.prev].next = l.next;
    else head_ = l.next;
    if (l.next != kNone) order_[l.next].prev = l.prev;
    else tail_ = l.prev;
    order_[s] = Link{};
  }

  TagKind kind_;
  std::vector<Record> records_;
  std::vector<Link> order_;  // least recently used at head_, most at tail_
  std::uint32_t head_ = kNone, tail_ = kNone;
  std::vector<std::uint32_t> free_;
  std::unordered_map<FlowKey, std::uint32_t, FlowKeyHash> index_;
  std::uint16_t next_gen_ = 1;
};

}  // namespace vnk::usernet
