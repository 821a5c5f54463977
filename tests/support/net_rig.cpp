#include "net_rig.hpp"

#include <array>
#include <stdexcept>

#include "base/byte_order.hpp"

namespace vnk::test {

namespace {
using namespace virtio;

std::shared_ptr<const GuestMemory> make_memory() {
  const RegionSpec spec{kGuestBase, kGuestSize, 0};
  auto m = GuestMemory::create(std::span(&spec, 1));
  if (!m) throw std::runtime_error("cannot create guest memory");
  return std::make_shared<const GuestMemory>(std::move(*m));
}

constexpr std::uint64_t kTxSlotSize = 0x11000;  // 12 + 65557 rounded up, plus slack
constexpr std::uint64_t kIndirectTableSize = 0x1000;
}  // namespace

NetRig::NetRig(RigOptions opts)
    : memory(make_memory()),
      device(*net::normalize(opts.config), opts.backend ? *opts.backend : loopback, opts.interceptor),
      transport(device, memory, [this] { ++irqs; }),
      next_free_(kGuestBase.value) {}

std::uint32_t NetRig::read32(std::uint64_t offset) {
  std::array<std::byte, 4> raw{};
  transport.read(offset, raw);
  return load_le<std::uint32_t>(raw.data());
}

void NetRig::write32(std::uint64_t offset, std::uint32_t value) {
  std::array<std::byte, 4> raw{};
  store_le<std::uint32_t>(raw.data(), value);
  transport.write(offset, raw);
}

std::vector<std::byte> NetRig::read_config(std::uint64_t offset, std::size_t width) {
  std::vector<std::byte> out(width);
  transport.read(mmio::kConfig + offset, out);
  return out;
}

std::uint64_t NetRig::device_features() {
  write32(mmio::kDeviceFeaturesSel, 0);
  std::uint64_t f = read32(mmio::kDeviceFeatures);
  write32(mmio::kDeviceFeaturesSel, 1);
  f |= std::uint64_t{read32(mmio::kDeviceFeatures)} << 32;
  return f;
}

GuestAddress NetRig::alloc(std::uint64_t size, std::uint64_t align) {
  const std::uint64_t at = (next_free_ + align - 1) & ~(align - 1);
  if (at + size > kGuestBase.value + kGuestSize) throw std::runtime_error("test guest memory exhausted");
  next_free_ = at + size;
  return GuestAddress{at};
}

void NetRig::write_guest(GuestAddress at, std::span<const std::byte> bytes) {
  if (!memory->write(at, bytes)) throw std::runtime_error("write outside guest memory");
}

void NetRig::setup_queue(std::uint16_t index, std::uint16_t size) {
  const GuestAddress base = alloc(DriverQueue::footprint(size), 4096);
  std::optional<DriverQueue>& q = index == 0 ? rxq_ : txq_;
  q.emplace(*memory, base, size);
  write32(mmio::kQueueSel, index);
  write32(mmio::kQueueNum, size);
  write32(mmio::kQueueDescLow, static_cast<std::uint32_t>(q->desc().value));
  write32(mmio::kQueueDescHigh, static_cast<std::uint32_t>(q->desc().value >> 32));
  write32(mmio::kQueueAvailLow, static_cast<std::uint32_t>(q->avail().value));
  write32(mmio::kQueueAvailHigh, static_cast<std::uint32_t>(q->avail().value >> 32));
  write32(mmio::kQueueUsedLow, static_cast<std::uint32_t>(q->used().value));
  write32(mmio::kQueueUsedHigh, static_cast<std::uint32_t>(q->used().value >> 32));
  write32(mmio::kQueueReady, 1);
  if (index == 1) tx_slots_.assign(size, GuestAddress{0});
}

std::uint32_t NetRig::probe_until_queues(std::uint64_t features, std::uint16_t queue_size, bool force) {
  write32(mmio::kStatus, 0);
  write32(mmio::kStatus, status::kAcknowledge);
  write32(mmio::kStatus, status::kAcknowledge | status::kDriver);
  const std::uint64_t accept = force ? features : features & device_features();
  write32(mmio::kDriverFeaturesSel, 0);
  write32(mmio::kDriverFeatures, static_cast<std::uint32_t>(accept));
  write32(mmio::kDriverFeaturesSel, 1);
  write32(mmio::kDriverFeatures, static_cast<std::uint32_t>(accept >> 32));
  write32(mmio::kStatus, status::kAcknowledge | status::kDriver | status::kFeaturesOk);
  // virtio_features_ok(): FEATURES_OK must read back, or probe fails.
  if (!(read32(mmio::kStatus) & status::kFeaturesOk)) return read32(mmio::kStatus);
  setup_queue(0, queue_size);
  setup_queue(1, queue_size);
  return read32(mmio::kStatus);
}

std::uint32_t NetRig::probe(std::optional<std::uint64_t> features, std::uint16_t queue_size, bool force) {
  const std::uint32_t s = probe_until_queues(features.value_or(~0ull), queue_size, force);
  if (!(s & status::kFeaturesOk)) return s;
  write32(mmio::kStatus, status::kAcknowledge | status::kDriver | status::kFeaturesOk | status::kDriverOk);
  return read32(mmio::kStatus);
}

GuestAddress NetRig::tx_slot(std::uint16_t head) {
  if (tx_slots_.at(head).value == 0) tx_slots_[head] = alloc(kTxSlotSize + kIndirectTableSize, 4096);
  return tx_slots_[head];
}

std::optional<std::uint16_t> NetRig::queue_tx(std::span<const std::byte> frame, TxLayout layout,
                                              const net::NetHeader& header) {
  DriverQueue& q = txq();
  if (q.num_free() == 0) return std::nullopt;
  if (frame.size() + net::kNetHeaderSize > kTxSlotSize) throw std::runtime_error("frame too large for a TX slot");
  const GuestAddress slot = tx_slot(q.next_free_head());
  const auto hdr = header.serialize();
  write_guest(slot, hdr);
  write_guest(GuestAddress{slot.value + net::kNetHeaderSize}, frame);

  std::vector<Buffer> bufs;
  const std::uint32_t total = static_cast<std::uint32_t>(net::kNetHeaderSize + frame.size());
  std::uint32_t pos = 0;
  if (layout.split_header_at > 0 && layout.split_header_at < net::kNetHeaderSize) {
    bufs.push_back({slot, layout.split_header_at, false});
    bufs.push_back({GuestAddress{slot.value + layout.split_header_at},
                    static_cast<std::uint32_t>(net::kNetHeaderSize - layout.split_header_at), false});
    pos = net::kNetHeaderSize;
  } else if (layout.header_separate) {
    bufs.push_back({slot, static_cast<std::uint32_t>(net::kNetHeaderSize), false});
    pos = net::kNetHeaderSize;
  }
  while (pos < total) {
    const std::uint32_t n = layout.chunk ? std::min(layout.chunk, total - pos) : total - pos;
    bufs.push_back({GuestAddress{slot.value + pos}, n, false});
    pos += n;
  }
  if (bufs.size() > q.num_free() && !layout.indirect) return std::nullopt;
  std::optional<GuestAddress> table;
  if (layout.indirect) table = GuestAddress{slot.value + kTxSlotSize};
  return q.add(bufs, table);
}

std::optional<std::uint16_t> NetRig::send(std::span<const std::byte> frame, TxLayout layout) {
  auto head = queue_tx(frame, layout);
  kick_tx();
  return head;
}

std::size_t NetRig::reap_tx() {
  std::size_t n = 0;
  while (txq().pop_used()) ++n;
  return n;
}

void NetRig::post_rx(std::size_t count, std::uint32_t size) {
  for (std::size_t i = 0; i < count; ++i) {
    const GuestAddress buf = alloc(size, 64);
    const Buffer b{buf, size, true};
    auto head = rxq().add(std::span(&b, 1));
    if (!head) throw std::runtime_error("RX queue full");
    rx_buffers_[*head] = {buf, size};
  }
}

std::vector<RxFrame> NetRig::take_rx() {
  std::vector<RxFrame> out;
  while (auto e = rxq().pop_used()) {
    RxFrame f;
    f.used_len = e->len;
    auto it = rx_buffers_.find(static_cast<std::uint16_t>(e->id));
    if (it != rx_buffers_.end() && e->len >= net::kNetHeaderSize && e->len <= it->second.second) {
      std::array<std::byte, net::kNetHeaderSize> raw{};
      (void)memory->read(it->second.first, raw);
      f.header = net::NetHeader::parse(raw);
      f.data.resize(e->len - net::kNetHeaderSize);
      (void)memory->read(GuestAddress{it->second.first.value + net::kNetHeaderSize}, f.data);
      // The rest of a merged frame, from the start of each further buffer.
      for (; f.buffers < f.header.num_buffers; ++f.buffers) {
        auto more = rxq().pop_used();
        if (!more) break;
        auto m = rx_buffers_.find(static_cast<std::uint16_t>(more->id));
        if (m == rx_buffers_.end() || more->len > m->second.second) break;
        std::vector<std::byte> part(more->len);
        (void)memory->read(m->second.first, part);
        f.data.insert(f.data.end(), part.begin(), part.end());
        f.used_len += more->len;
      }
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::vector<std::byte> make_frame(std::size_t len, std::uint8_t seed) {
  std::vector<std::byte> f(len);
  for (std::size_t i = 0; i < len; ++i) f[i] = std::byte(static_cast<std::uint8_t>(seed + i * 7));
  if (len >= 14) {
    for (int i = 0; i < 6; ++i) f[static_cast<std::size_t>(i)] = std::byte{0xff};
    for (int i = 0; i < 6; ++i) f[6 + static_cast<std::size_t>(i)] = std::byte{net::kDefaultMac.octets[static_cast<std::size_t>(i)]};
    f[12] = std::byte{0x88};
    f[13] = std::byte{0xb5};
  }
  return f;
}

}  // namespace vnk::test
