#include "backend/virtual_switch.hpp"

#include <algorithm>
#include <cstring>

#include "base/byte_order.hpp"
#include "memory/iovec_ops.hpp"
#include "packet/checksum.hpp"

namespace vnk::backend {

namespace {

constexpr std::size_t kMacSize = 6;
constexpr std::size_t kEthernetHeader = 14;
// Uplink frames one receive() looks through for its own before giving up
// for now (the others went to their guests' queues).
constexpr unsigned kPullTries = 16;

// The frame's first `length` bytes of `buffer`, with its header, into
// `queue`; false when full.
bool copy_into(FrameQueue& queue, std::span<const iovec> buffer, std::size_t length, const net::NetHeader& header) {
  auto room = queue.reserve(length);
  if (room.empty()) return false;
  queue.commit(iov_read(buffer, 0, room), header);
  return true;
}

bool is_tso(const net::NetHeader& h) { return (h.gso_type & ~net::NetHeader::kGsoEcn) != net::NetHeader::kGsoNone; }

// Whether a consumer that accepts `o` takes a frame with header `h`.
bool accepts(const net::RxOffloads& o, const net::NetHeader& h) {
  if ((h.flags & net::NetHeader::kFlagNeedsCsum) != 0 && !o.partial_csum) return false;
  switch (h.gso_type & ~net::NetHeader::kGsoEcn) {
    case net::NetHeader::kGsoNone: return true;
    case net::NetHeader::kGsoTcpV4: return o.tso4;
    case net::NetHeader::kGsoTcpV6: return o.tso6;
    default: return false;
  }
}

}  // namespace

SwitchPort::SwitchPort(VirtualSwitch& sw, unsigned id, const SwitchOptions& o)
    : switch_(sw), id_(id), from_peers_(o.queue_bytes), from_uplink_(o.queue_bytes) {}

net::TxOffloads SwitchPort::tx_offloads() const { return switch_.uplink_.tx_offloads(); }

void SwitchPort::set_rx_offloads(net::RxOffloads offloads) {
  rx_offloads_ = offloads;
  switch_.update_rx_offloads();
}

bool SwitchPort::holds(const MacAddress& mac) const noexcept {
  return std::find(macs_.begin(), macs_.begin() + static_cast<std::ptrdiff_t>(mac_count_), mac) !=
         macs_.begin() + static_cast<std::ptrdiff_t>(mac_count_);
}

net::TxResult SwitchPort::transmit(const net::TxFrame& frame) { return switch_.from_port(*this, frame); }

void SwitchPort::flush_tx() { switch_.uplink_.flush_tx(); }

net::RxResult SwitchPort::receive(std::span<const iovec> buffer) {
  // Turns between the other guests' frames and the uplink's; uplink frames
  // another port pulled for us go before any we pull now, in their order.
  const bool peers_first = peers_turn_;
  peers_turn_ = !peers_turn_;
  if (peers_first && !from_peers_.empty()) return from_peers_.pop_into(buffer);
  net::RxResult r = from_uplink_.empty() ? switch_.pull_uplink(*this, buffer) : from_uplink_.pop_into(buffer);
  if (r.status == net::RxStatus::frame) switch_.counters_.frames_from_uplink.add();
  if (r.status != net::RxStatus::empty) return r;
  return from_peers_.pop_into(buffer);
}

bool SwitchPort::rx_pending() const {
  return !from_peers_.empty() || !from_uplink_.empty() ||
         net::rx_pending_through(switch_.uplink_, switch_.interceptor_);
}

std::size_t SwitchPort::next_frame_bound() const {
  std::size_t bound = std::max(from_peers_.front_length(), from_uplink_.front_length());
  if (from_uplink_.empty()) {
    bound = std::max(bound, switch_.uplink_.next_frame_bound());
    if (switch_.interceptor_) bound = std::max(bound, switch_.interceptor_->next_frame_bound());
  }
  return bound;
}

int SwitchPort::rx_fd() const { return switch_.uplink_.rx_fd(); }

VirtualSwitch::VirtualSwitch(net::NetBackend& uplink, net::FrameInterceptor* interceptor, SwitchOptions options)
    : uplink_(uplink), interceptor_(interceptor), options_(options) {}

VirtualSwitch::~VirtualSwitch() = default;

SwitchPort* VirtualSwitch::attach() {
  if (ports_.size() >= options_.max_ports) return nullptr;
  ports_.push_back(std::unique_ptr<SwitchPort>(new SwitchPort(*this, next_id_++, options_)));
  update_rx_offloads();  // the newcomer takes none until its consumer says
  return ports_.back().get();
}

void VirtualSwitch::detach(SwitchPort* port) {
  std::erase_if(ports_, [port](const auto& p) { return p.get() == port; });
  update_rx_offloads();
}

void VirtualSwitch::update_rx_offloads() {
  net::RxOffloads all{true, true, true};
  for (const auto& p : ports_) {
    all.partial_csum = all.partial_csum && p->rx_offloads_.partial_csum;
    all.tso4 = all.tso4 && p->rx_offloads_.tso4;
    all.tso6 = all.tso6 && p->rx_offloads_.tso6;
  }
  if (ports_.empty()) all = {};
  uplink_.set_rx_offloads(all);
}

bool VirtualSwitch::deliver(SwitchPort& to, const net::TxFrame& frame) {
  net::NetHeader h = frame.header;
  h.num_buffers = 0;
  h.gso_type &= static_cast<std::uint8_t>(~net::NetHeader::kGsoEcn);  // no GUEST_ECN: CWR on every segment
  h.flags &= net::NetHeader::kFlagNeedsCsum;
  const bool keep = accepts(to.rx_offloads_, h);
  if (!keep && is_tso(h)) {
    counters_.drop_offload.add();
    return false;
  }
  if (frame.length > options_.max_frame && !is_tso(h)) {
    counters_.drop_oversize.add();
    return false;
  }
  auto room = to.from_peers_.reserve(frame.length);
  if (room.empty()) {
    counters_.drop_queue_full.add();
    return false;
  }
  // The head from the engine's host copy, the rest from guest memory: each
  // byte read once.
  std::memcpy(room.data(), frame.head.data(), frame.head.size());
  iov_read(frame.data, frame.head.size(), room.subspan(frame.head.size()));
  if (!keep && (h.flags & net::NetHeader::kFlagNeedsCsum) != 0) {
    // The receiver checks every checksum: finish the sender's partial one
    // (csum_start and csum_offset were checked against the frame by the
    // TX engine) over the bytes just copied.
    packet::Checksum sum;
    sum.add(room.subspan(h.csum_start));
    const std::size_t at = std::size_t{h.csum_start} + h.csum_offset;
    store_be<std::uint16_t>(room.data() + at, sum.finish());
    h = {};
    counters_.checksums_completed.add();
  }
  to.from_peers_.commit(frame.length, keep ? h : net::NetHeader{});
  return true;
}

SwitchPort* VirtualSwitch::owner(const MacAddress& mac) const noexcept {
  for (const auto& p : ports_)
    if (p->holds(mac)) return p.get();
  return nullptr;
}

bool VirtualSwitch::learn(SwitchPort& port, const MacAddress& src) {
  if (port.holds(src)) return true;
  if (owner(src) != nullptr) {
    counters_.drop_mac_taken.add();
    return false;
  }
  if (port.mac_count_ == SwitchPort::kMacsPerPort) {
    counters_.drop_too_many_macs.add();
    return false;
  }
  port.macs_[port.mac_count_++] = src;
  return true;
}

net::TxResult VirtualSwitch::from_port(SwitchPort& port, const net::TxFrame& frame) {
  if (frame.head.size() < kEthernetHeader) {
    counters_.drop_malformed.add();
    return net::TxResult::dropped;
  }
  const MacAddress dst = MacAddress::load(frame.head.data());
  const MacAddress src = MacAddress::load(frame.head.data() + kMacSize);
  if (!src.is_unicast()) {
    counters_.drop_malformed.add();
    return net::TxResult::dropped;
  }
  if (!learn(port, src)) return net::TxResult::dropped;
  if (!dst.is_unicast()) {
    if (options_.guest_to_guest) {
      for (const auto& p : ports_) {
        if (p.get() == &port) continue;
        if (deliver(*p, frame)) counters_.frames_flooded.add();
      }
    }
  } else if (SwitchPort* to = owner(dst)) {
    if (to == &port) {
      counters_.drop_unknown_destination.add();  // its own MAC: nowhere to go
      return net::TxResult::dropped;
    }
    if (!options_.guest_to_guest) {
      counters_.drop_isolated.add();
      return net::TxResult::dropped;
    }
    if (!deliver(*to, frame)) return net::TxResult::dropped;
    counters_.frames_between_guests.add();
    return net::TxResult::sent;
  }
  counters_.frames_to_uplink.add();
  return net::transmit_through(uplink_, interceptor_, frame) == net::TxPath::dropped ? net::TxResult::dropped
                                                                                     : net::TxResult::sent;
}

net::RxResult VirtualSwitch::pull_uplink(SwitchPort& port, std::span<const iovec> buffer) {
  for (unsigned i = 0; i < kPullTries; ++i) {
    net::RxResult r = net::receive_through(uplink_, interceptor_, buffer);
    if (r.status != net::RxStatus::frame) return r;
    std::array<std::byte, kMacSize> d{};
    if (iov_read(buffer, 0, d) != kMacSize) {
      counters_.drop_malformed.add();
      continue;
    }
    const MacAddress dst = MacAddress::load(d.data());
    const bool whole = r.written == r.frame_len;
    if (!dst.is_unicast()) {
      // Router Advertisements, DHCP broadcasts: every guest gets one.
      for (const auto& p : ports_) {
        if (p.get() == &port) continue;
        if (!whole)
          counters_.drop_malformed.add();  // our buffer was too small for it: it cannot be passed on whole
        else if (!copy_into(p->from_uplink_, buffer, r.written, r.header))
          counters_.drop_queue_full.add();
        else
          counters_.frames_flooded.add();
      }
      return r;
    }
    if (port.holds(dst)) return r;
    SwitchPort* to = owner(dst);
    if (to == nullptr) {
      counters_.drop_unknown_destination.add();
    } else if (!whole) {
      counters_.drop_malformed.add();  // our buffer was too small for it: it cannot be passed on whole
    } else if (!copy_into(to->from_uplink_, buffer, r.written, r.header)) {
      counters_.drop_queue_full.add();
    }
  }
  return {};
}

}  // namespace vnk::backend
