// The metadata service (MMDS) as a FrameInterceptor in front of any backend:
// TCP to 169.254.169.254:80 is answered here and never reaches the backend.
//
// A deliberately small TCP responder: one request per connection (HTTP/1.0
// semantics, "Connection: close"), the response sent in MSS-sized segments
// followed by FIN, in-order data only (anything else is re-ACKed), a bounded
// connection table and a bounded request buffer. Frames for the guest wait
// in a FrameRing. MetadataStore holds the document and the session tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "backend/frame_ring.hpp"
#include "base/counter_set.hpp"
#include "base/mac_address.hpp"
#include "mmds/metadata_store.hpp"
#include "net/net_backend.hpp"
#include "packet/headers.hpp"

namespace vnk::mmds {

#define VNK_MMDS_COUNTERS(X)                                                      \
  X(connections)        /* SYNs accepted */                                      \
  X(requests)           /* requests answered (any status) */                     \
  X(unauthorized)       /* 401: token missing or invalid */                      \
  X(tokens_issued)      /* PUT /latest/api/token answered 200 */                 \
  X(bad_requests)       /* 400: unparsable or oversized request */               \
  X(resets_sent)        /* RSTs for segments of no connection */                 \
  X(evicted)            /* connections dropped to make room */                   \
  X(drop_queue_full)    /* no room to queue a frame for the guest */            \
  X(frames_to_guest)    /* frames delivered */

struct MmdsCounters {
  VNK_MMDS_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_MMDS_COUNTERS)
};

class MmdsInterceptor final : public net::FrameInterceptor {
 public:
  static constexpr packet::Ipv4Address kAddress = packet::Ipv4Address::of(169, 254, 169, 254);
  static constexpr std::size_t kMaxConnections = 32;
  static constexpr std::size_t kMaxRequest = 8192;
  static constexpr std::uint16_t kMss = 1400;

  MmdsInterceptor(MetadataStore store, MacAddress gateway_mac);

  bool intercept_tx(const net::TxFrame& frame) override;
  net::RxResult receive(std::span<const iovec> buffer) override;
  [[nodiscard]] bool rx_pending() const override { return !out_.empty(); }
  [[nodiscard]] std::size_t next_frame_bound() const override { return out_.front_length(); }
  [[nodiscard]] const MmdsCounters& counters() const noexcept { return counters_; }
  [[nodiscard]] MetadataStore& store() noexcept { return store_; }

 private:
  struct Conn {
    bool live = false;
    MacAddress guest_mac;
    packet::Ipv4Address guest_ip;
    std::uint16_t guest_port = 0;
    std::uint32_t snd_nxt = 0, rcv_nxt = 0;
    bool responded = false, guest_fin = false;
    std::uint64_t opened_ms = 0;
    std::string request;
  };
  // A TCP segment for the service; `ip.payload` holds all of it.
  void segment(const MacAddress& mac, const packet::Ipv4& ip);
  void respond(Conn& c);
  // Queues a segment from 169.254.169.254:80 to the connection's guest.
  void send(const Conn& c, std::uint8_t flags, std::uint32_t seq, std::string_view payload,
            bool syn_options = false);
  void send_reset(const MacAddress& mac, packet::Ipv4Address ip, std::uint16_t port, std::uint32_t seq,
                  std::uint32_t ack, bool with_ack);

  MetadataStore store_;
  MacAddress gateway_mac_;
  MmdsCounters counters_;
  backend::FrameRing out_;
  std::array<Conn, kMaxConnections> conns_{};
  std::array<std::byte, 4096> head_{};
  std::uint16_t ip_id_ = 0;
};

}  // namespace vnk::mmds
