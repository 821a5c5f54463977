#include "vhost_user/net_session.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <vector>

#include "base/byte_order.hpp"
#include "base/log.hpp"
#include "net/net_device.hpp"
#include "virtio/features.hpp"

namespace vnk::vhost_user {

using virtio::bit;

namespace {

constexpr std::uint32_t kBackendConfigChangeMsg = 2;  // VHOST_USER_BACKEND_CONFIG_CHANGE_MSG

Reply u64_reply(std::uint64_t v) {
  Reply r;
  store_le<std::uint64_t>(r.storage.data(), v);
  r.size = 8;
  return r;
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void signal(int fd) {
  if (fd < 0) return;
  const std::uint64_t one = 1;
  // EAGAIN only when the counter is about to overflow: the frontend has not
  // read it in 2^64 signals, and one more would change nothing.
  [[maybe_unused]] const ssize_t n = ::write(fd, &one, sizeof one);
}

}  // namespace

NetSession::NetSession(const net::NetConfig& cfg, net::NetBackend& backend, net::FrameInterceptor* interceptor,
                       SessionStats* stats)
    : cfg_(cfg),
      backend_(backend),
      interceptor_(interceptor),
      link_up_(cfg.link_up),
      own_stats_(stats ? nullptr : std::make_unique<SessionStats>()),
      net_counters_(stats ? stats->net : own_stats_->net),
      counters_(stats ? stats->session : own_stats_->session) {}

bool NetSession::wants_backend() const noexcept {
  return pair_ && !pair_->rx().starved() && !pair_->rx().queue().poisoned();
}

NetSession::~NetSession() = default;

std::uint64_t NetSession::offered_features() const noexcept {
  return net::offered_features(cfg_, backend_.tx_offloads()) | bit(kFeatureProtocolFeatures);
}

std::uint64_t NetSession::offered_protocol_features() const noexcept {
  using namespace protocol_feature;
  // BACKEND_REQ: Linux 6.1's virtio_uml only allocates its interrupt line
  // when this is offered and the fd sent; without it virtio_net fails to
  // probe with -EBUSY. CONFIG: virtio_uml reads the MAC through GET_CONFIG.
  return bit(kMq) | bit(kReplyAck) | bit(kNetMtu) | bit(kBackendReq) | bit(kConfig);
}

std::expected<std::uint16_t, ProtocolError> NetSession::ring_index(std::uint32_t index) const {
  if (index >= kNumQueues) return std::unexpected(ProtocolError::bad_index);
  return static_cast<std::uint16_t>(index);
}

std::expected<std::optional<Reply>, ProtocolError> NetSession::handle(Message& m) {
  counters_.messages.add();
  auto r = dispatch(m);
  if (!r) {
    if (r.error() == ProtocolError::unknown_request) {
      counters_.unknown_requests.add();
      log::warn("vhost-user: {} (request {}) not supported", to_string(m.request()), m.header.request);
    } else {
      counters_.rejected.add();
      log::warn("vhost-user: {} refused: {}", to_string(m.request()), to_string(r.error()));
    }
    // With REPLY_ACK the frontend waits for a status: tell it we failed and
    // keep the session; without it, a malformed message ends the session.
    if (m.needs_reply_ack() && (acked_protocol_features_ & bit(protocol_feature::kReplyAck))) return u64_reply(1);
    if (r.error() == ProtocolError::unknown_request) return std::nullopt;
    return std::unexpected(r.error());
  }
  if (!*r && m.needs_reply_ack() && (acked_protocol_features_ & bit(protocol_feature::kReplyAck))) return u64_reply(0);
  return r;
}

std::expected<std::optional<Reply>, ProtocolError> NetSession::dispatch(Message& m) {
  const auto p = m.payload();
  // Only the fd-carrying requests may carry fds.
  const Request req = m.request();
  const bool takes_fds = req == Request::set_mem_table || req == Request::set_vring_kick ||
                         req == Request::set_vring_call || req == Request::set_vring_err ||
                         req == Request::set_backend_req_fd || req == Request::set_log_fd;
  if (!takes_fds && m.fd_count != 0) return std::unexpected(ProtocolError::bad_fd_count);

  switch (req) {
    case Request::get_features:
      if (!p.empty()) return std::unexpected(ProtocolError::bad_size);
      return u64_reply(offered_features());
    case Request::set_features: {
      auto f = decode_u64(p);
      if (!f) return std::unexpected(f.error());
      if (*f & ~offered_features()) return std::unexpected(ProtocolError::bad_state);
      acked_features_ = *f;
      return std::nullopt;
    }
    case Request::get_protocol_features:
      if (!p.empty()) return std::unexpected(ProtocolError::bad_size);
      return u64_reply(offered_protocol_features());
    case Request::set_protocol_features: {
      auto f = decode_u64(p);
      if (!f) return std::unexpected(f.error());
      if (*f & ~offered_protocol_features()) return std::unexpected(ProtocolError::bad_state);
      acked_protocol_features_ = *f;
      return std::nullopt;
    }
    case Request::set_owner: owner_ = true; return std::nullopt;
    case Request::reset_owner: reset_all(); return std::nullopt;
    case Request::get_queue_num:
      if (!p.empty()) return std::unexpected(ProtocolError::bad_size);
      return u64_reply(kNumQueues / 2);
    case Request::set_mem_table: {
      auto r = set_mem_table(m);
      if (!r) return std::unexpected(r.error());
      return std::nullopt;
    }
    case Request::set_vring_num: {
      auto s = decode_vring_state(p);
      if (!s) return std::unexpected(s.error());
      auto i = ring_index(s->index);
      if (!i) return std::unexpected(i.error());
      if (s->num == 0 || s->num > kMaxQueueSize || (s->num & (s->num - 1)) != 0)
        return std::unexpected(ProtocolError::bad_state);
      rings_[*i].num = static_cast<std::uint16_t>(s->num);
      return std::nullopt;
    }
    case Request::set_vring_addr: {
      auto a = decode_vring_addr(p);
      if (!a) return std::unexpected(a.error());
      auto i = ring_index(a->index);
      if (!i) return std::unexpected(i.error());
      rings_[*i].addr = *a;
      return std::nullopt;
    }
    case Request::set_vring_base: {
      auto s = decode_vring_state(p);
      if (!s) return std::unexpected(s.error());
      auto i = ring_index(s->index);
      if (!i) return std::unexpected(i.error());
      if (s->num > 0xffff) return std::unexpected(ProtocolError::bad_state);
      rings_[*i].base = static_cast<std::uint16_t>(s->num);
      return std::nullopt;
    }
    case Request::get_vring_base: {
      auto r = get_vring_base(m);
      if (!r) return std::unexpected(r.error());
      return *r;
    }
    case Request::set_vring_kick: {
      auto r = set_vring_fd(m, &Ring::kick);
      if (!r) return std::unexpected(r.error());
      return std::nullopt;
    }
    case Request::set_vring_call: {
      auto r = set_vring_fd(m, &Ring::call);
      if (!r) return std::unexpected(r.error());
      return std::nullopt;
    }
    case Request::set_vring_err: {
      auto r = set_vring_fd(m, &Ring::err);
      if (!r) return std::unexpected(r.error());
      return std::nullopt;
    }
    case Request::set_vring_enable: {
      auto s = decode_vring_state(p);
      if (!s) return std::unexpected(s.error());
      auto i = ring_index(s->index);
      if (!i) return std::unexpected(i.error());
      rings_[*i].enabled = s->num != 0;
      if (rings_[*i].enabled) {
        maybe_start();
      } else if (pair_) {
        stop();
      }
      return std::nullopt;
    }
    case Request::set_backend_req_fd:
      if (m.fd_count != 1) return std::unexpected(ProtocolError::bad_fd_count);
      backend_req_ = m.take_fd();
      // Our end of the frontend's socketpair: a notice must never block us.
      set_nonblocking(backend_req_.get());
      return std::nullopt;
    case Request::get_config: {
      auto r = get_config(m);
      if (!r) return std::unexpected(r.error());
      return *r;
    }
    case Request::set_config: {
      // §5.1.4: nothing in the net config space is writable by a VERSION_1
      // driver; acknowledge and ignore, as the MMIO transport does.
      auto c = decode_config(p);
      if (!c) return std::unexpected(c.error());
      net_counters_.config_writes_ignored.add();
      return std::nullopt;
    }
    case Request::net_set_mtu: {
      auto v = decode_u64(p);
      if (!v) return std::unexpected(v.error());
      return std::nullopt;  // the guest's MTU is its own business; frames are bounded anyway
    }
    case Request::send_rarp: return std::nullopt;  // nothing to announce on a user-mode network
    default: return std::unexpected(ProtocolError::unknown_request);
  }
}

std::expected<void, ProtocolError> NetSession::set_mem_table(Message& m) {
  auto t = decode_mem_table(m.payload());
  if (!t) return std::unexpected(t.error());
  if (m.fd_count != t->count) return std::unexpected(ProtocolError::bad_fd_count);
  std::array<FdRegionSpec, kMaxMemRegions> specs{};
  for (std::uint32_t i = 0; i < t->count; ++i) {
    const MemRegion& r = t->regions[i];
    specs[i] =
        FdRegionSpec{m.fds[i].get(), GuestAddress{r.guest_phys_addr}, r.memory_size, r.userspace_addr, r.mmap_offset};
  }
  auto mem = GuestMemory::from_fds(std::span(specs.data(), t->count));
  if (!mem) return std::unexpected(ProtocolError::bad_region);
  // The mappings keep the memory; the fds close with the message.
  memory_ = std::make_shared<const GuestMemory>(std::move(*mem));
  counters_.mem_table_updates.add();
  // A running engine continues on the new layout from its next drain.
  if (pair_) pair_->set_memory(memory_);
  maybe_start();
  return {};
}

std::expected<void, ProtocolError> NetSession::set_vring_fd(Message& m, UniqueFd Ring::*slot) {
  auto v = decode_u64(m.payload());
  if (!v) return std::unexpected(v.error());
  auto i = ring_index(static_cast<std::uint32_t>(*v & kVringIndexMask));
  if (!i) return std::unexpected(i.error());
  const bool no_fd = (*v & kVringNoFd) != 0;
  if (no_fd != (m.fd_count == 0) || m.fd_count > 1) return std::unexpected(ProtocolError::bad_fd_count);
  Ring& ring = rings_[*i];
  ring.*slot = m.take_fd();
  // A signal must never block the I/O thread: User-Mode Linux hands over the
  // write end of a pipe, which fills if the guest stops reading it.
  if (slot != &Ring::kick && (ring.*slot).valid()) set_nonblocking((ring.*slot).get());
  if (slot == &Ring::kick) {
    // Polling mode (no kick fd) is not offered: a ring without one never starts.
    ring.kicked = !no_fd;
    // Without PROTOCOL_FEATURES a ring is enabled as soon as it starts.
    if (!(acked_features_ & bit(kFeatureProtocolFeatures))) ring.enabled = true;
    maybe_start();
  }
  return {};
}

std::expected<Reply, ProtocolError> NetSession::get_vring_base(const Message& m) {
  auto s = decode_vring_state(m.payload());
  if (!s) return std::unexpected(s.error());
  auto i = ring_index(s->index);
  if (!i) return std::unexpected(i.error());
  stop();  // records each running ring's next_avail as its base
  Ring& ring = rings_[*i];
  ring.kicked = false;
  ring.kick.reset();
  Reply r;
  store_le<std::uint32_t>(r.storage.data(), *i);
  store_le<std::uint32_t>(r.storage.data() + 4, ring.base);
  r.size = 8;
  return r;
}

std::expected<Reply, ProtocolError> NetSession::get_config(const Message& m) {
  auto c = decode_config(m.payload());
  if (!c) return std::unexpected(c.error());
  // The reply echoes offset/size/flags followed by the bytes read; Linux's
  // virtio_uml asks one size at a time from offset 0.
  Reply r;
  store_le<std::uint32_t>(r.storage.data(), c->offset);
  store_le<std::uint32_t>(r.storage.data() + 4, c->size);
  store_le<std::uint32_t>(r.storage.data() + 8, c->flags);
  net::read_config_space(cfg_, link_up_, c->offset, std::span(r.storage).subspan(12, c->size));
  r.size = 12 + std::size_t{c->size};
  return r;
}

bool NetSession::ring_ready(const Ring& r) const noexcept {
  return r.kicked && r.enabled && r.num != 0 && r.addr;
}

void NetSession::maybe_start() {
  if (pair_ || !memory_ || !ring_ready(rings_[0]) || !ring_ready(rings_[1])) return;
  const bool event_idx = acked_features_ & bit(virtio::kFeatureRingEventIdx);
  const bool indirect = acked_features_ & bit(virtio::kFeatureRingIndirectDesc);
  using virtio::Virtqueue;
  std::array<virtio::QueueConfig, kNumQueues> configs;
  for (std::uint16_t i = 0; i < kNumQueues; ++i) {
    const Ring& r = rings_[i];
    // Ring addresses are the frontend's virtual addresses (vhost-user.rst,
    // "Vring address description"): translate each whole ring.
    auto desc = memory_->user_to_guest(r.addr->desc, Virtqueue::desc_table_size(r.num));
    auto avail = memory_->user_to_guest(r.addr->avail, Virtqueue::avail_ring_size(r.num));
    auto used = memory_->user_to_guest(r.addr->used, Virtqueue::used_ring_size(r.num));
    if (!desc || !avail || !used) {
      log::warn("vhost-user: ring {} addresses are outside the memory table", i);
      counters_.rejected.add();
      return;
    }
    configs[i] = virtio::QueueConfig{r.num, true, *desc, *avail, *used};
  }
  if (virtio::rings_overlap(configs)) {
    log::warn("vhost-user: rings refused: they overlap in guest memory");
    net_counters_.rings_overlap.add();
    counters_.rejected.add();
    return;
  }
  std::array<std::optional<Virtqueue>, kNumQueues> queues;
  for (std::uint16_t i = 0; i < kNumQueues; ++i) {
    const Ring& r = rings_[i];
    auto q = Virtqueue::create(configs[i], kMaxQueueSize, *memory_, event_idx, indirect);
    std::expected<void, virtio::QueueError> resumed;
    if (q) resumed = q->resume(*memory_, RingIndex(r.base));
    if (!q || !resumed) {
      log::warn("vhost-user: ring {} refused: {}", i, virtio::to_string(q ? resumed.error() : q.error()));
      counters_.rejected.add();
      return;
    }
    queues[i] = std::move(*q);
  }
  backend_.set_rx_offloads(net::rx_offloads_for(acked_features_));
  net::EngineContext ctx{nullptr, &backend_, interceptor_, &net_counters_, this, acked_features_};
  pair_ = std::make_unique<net::NetQueuePair>(memory_, ctx, std::move(*queues[0]), std::move(*queues[1]), 0);
  counters_.ring_starts.add();
  log::info("vhost-user: queue pair 0 started (size {}/{})", rings_[0].num, rings_[1].num);
  // Work posted before the rings started would otherwise wait for a kick.
  work_pending_ = pair_->resume();
}

void NetSession::stop() {
  if (!pair_) return;
  rings_[0].base = pair_->rx().queue().next_avail().value();
  rings_[1].base = pair_->tx().queue().next_avail().value();
  pair_.reset();
  counters_.ring_stops.add();
}

void NetSession::reset_all() {
  stop();
  backend_.set_rx_offloads({});  // until the next frontend negotiates
  rings_ = {};
  memory_.reset();
  acked_features_ = 0;
  acked_protocol_features_ = 0;
  owner_ = false;
}

void NetSession::on_kick(std::uint16_t queue) {
  if (queue >= kNumQueues) return;
  if (rings_[queue].kick.valid()) {
    // Reset the eventfd counter; how many kicks there were does not matter.
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = ::read(rings_[queue].kick.get(), &count, sizeof count);
  }
  if (!pair_) return;
  const bool more = queue == 1 ? pair_->on_tx_kick() : pair_->on_rx_ready();
  work_pending_ = work_pending_ || more;
}

void NetSession::backend_ready() {
  if (pair_) work_pending_ = pair_->on_rx_ready() || work_pending_;
}

bool NetSession::poll() {
  if (!pair_) return false;
  const std::uint64_t before = net_counters_.tx_packets.get() + net_counters_.rx_packets.get();
  work_pending_ = pair_->poll() || work_pending_;
  return net_counters_.tx_packets.get() + net_counters_.rx_packets.get() != before;
}

void NetSession::resume() {
  work_pending_ = pair_ != nullptr && pair_->resume();
}

void NetSession::set_link_up(bool up) {
  if (link_up_ == up) return;
  link_up_ = up;
  config_changed();
}

void NetSession::queue_used(std::uint16_t queue) {
  if (queue >= kNumQueues) return;
  counters_.call_signals.add();
  signal(rings_[queue].call.get());
}

void NetSession::config_changed() {
  if (!backend_req_.valid()) return;
  // The frontend re-reads the config space (GET_CONFIG) and raises its own
  // config interrupt. No reply is requested: we never block on the frontend.
  (void)write_message(backend_req_.get(), Header{kBackendConfigChangeMsg, kVersion, 0}, {});
}

void NetSession::needs_reset() {
  // vhost-user has no NEEDS_RESET bit of its own; the error eventfd is how a
  // backend reports a broken ring (vhost-user.rst, SET_VRING_ERR).
  for (const Ring& r : rings_) signal(r.err.get());
}

}  // namespace vnk::vhost_user
