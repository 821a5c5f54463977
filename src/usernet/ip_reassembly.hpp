// Reassembly of IP datagrams the guest sent in fragments (RFC 791 §3.2 for
// IPv4; the same rules serve IPv6's fragment header, RFC 8200 §4.5), so UDP
// and ICMP larger than the guest's MTU still reach their host socket.
//
// Everything about it is bounded, since a hostile guest chooses every field:
// kMaxDatagrams in flight (a new one evicts the oldest), kMaxBytes held in
// all, kMaxFragments per datagram, kTimeoutMs from a datagram's first
// fragment. A fragment that overlaps another, other than an exact duplicate,
// drops its whole datagram (RFC 5722), as does one inconsistent with the
// datagram's end or beyond 65535 bytes. Payload is copied once, from guest
// memory into the datagram's buffer.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "usernet/flow_table.hpp"
#include "usernet/usernet_counters.hpp"

namespace vnk::usernet {

class IpReassembly {
 public:
  static constexpr std::size_t kMaxDatagrams = 64;
  static constexpr std::size_t kMaxBytes = 4u << 20;
  static constexpr std::size_t kMaxFragments = 64;
  static constexpr std::uint64_t kTimeoutMs = 30'000;
  static constexpr std::size_t kMaxPayload = 65535;  // bytes after the IP header, summed over the fragments

  // RFC 791: source, destination, protocol and identification name a datagram.
  struct Key {
    IpAddress src, dst;
    std::uint32_t id = 0;
    std::uint8_t protocol = 0;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct Fragment {
    std::span<const std::byte> header;  // the IP header as received (the first fragment's is kept)
    std::span<const iovec> data;        // this fragment's payload
    std::size_t length = 0;             // bytes of it
    std::size_t offset = 0;             // where it goes in the datagram, bytes
    bool more = false;                  // MF: not the last fragment
  };
  enum class Outcome { held, complete, dropped };

  // Each datagram's buffer keeps `headroom` bytes free in front of its
  // payload, so the caller can put its headers there and hand the datagram
  // on without copying it again.
  IpReassembly(UsernetCounters& counters, std::size_t headroom);

  // Adds one fragment. After Outcome::complete, header() is the first
  // fragment's IP header and completed() the datagram's buffer: `headroom`
  // free bytes, then the whole payload; both valid until the next add().
  Outcome add(const Key& key, const Fragment& fragment, std::uint64_t now_ms);
  [[nodiscard]] std::span<const std::byte> header() const noexcept { return done_header_; }
  [[nodiscard]] std::span<std::byte> completed() noexcept { return done_; }

  // Drops datagrams whose first fragment is kTimeoutMs old.
  void expire(std::uint64_t now_ms);
  [[nodiscard]] std::size_t size() const noexcept { return live_; }

 private:
  struct Range {
    std::uint32_t begin, end;
  };
  struct Entry {
    Key key{};
    bool live = false;
    std::uint64_t first_ms = 0;
    std::vector<std::byte> header;  // empty until the fragment at offset 0 arrives
    std::vector<std::byte> data;  // headroom_, then the payload as far as it has come
    std::vector<Range> ranges;  // sorted, disjoint
    std::optional<std::uint32_t> total;  // known from the last fragment
  };
  Entry* find_or_open(const Key& key, std::uint64_t now_ms);
  void drop(Entry& e);
  void free(Entry& e);

  UsernetCounters& counters_;
  std::size_t headroom_;
  std::vector<Entry> entries_;
  std::size_t live_ = 0;
  std::size_t bytes_ = 0;
  std::vector<std::byte> done_header_, done_;
};

}  // namespace vnk::usernet
