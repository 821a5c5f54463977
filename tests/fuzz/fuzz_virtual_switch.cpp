// libFuzzer target: the virtual switch between three guests and an uplink
// that hands back whatever frames the input gives it. The input is a list of
// records: a control byte (bits 0-1: which port sends, or 3: the uplink
// queues a frame; bit 2: every port takes a frame afterwards; bit 3: a port
// leaves and another attaches; bits 6-7: the frame's virtio-net header --
// none, a partial checksum, TSO, or new offloads for a port's consumer), a
// length byte, then the frame. Headers are shaped as the TX engine lets
// them through (checksum field inside the frame). Source and
// destination MACs come from a small set so ports learn, collide and flood.
// Every frame a guest takes must be one that was sent (no bytes invented),
// and queues stay within their bounds.
#include <cstdint>
#include <cstring>
#include <deque>
#include <vector>

#include "backend/virtual_switch.hpp"
#include "base/log.hpp"

using namespace vnk;

namespace {

using Bytes = std::vector<std::byte>;

class Uplink final : public net::NetBackend {
 public:
  net::TxResult transmit(const net::TxFrame& f) override {
    if (f.length > 65549) __builtin_trap();
    return net::TxResult::sent;
  }
  net::RxResult receive(std::span<const iovec> buffer) override {
    if (frames.empty()) return {};
    Bytes f = std::move(frames.front());
    frames.pop_front();
    const std::size_t n = std::min(f.size(), buffer[0].iov_len);
    if (n != 0) std::memcpy(buffer[0].iov_base, f.data(), n);
    return {net::RxStatus::frame, f.size(), n, {}};
  }
  [[nodiscard]] bool rx_pending() const override { return !frames.empty(); }
  [[nodiscard]] std::string_view name() const override { return "fuzz"; }
  std::deque<Bytes> frames;
};

// One of six MACs: two bits choose a guest MAC, the gateway, or broadcast.
MacAddress mac_of(std::uint8_t v) {
  switch (v % 6) {
    case 4: return MacAddress{{0x52, 0x55, 0x0a, 0, 2, 2}};
    case 5: return MacAddress::broadcast();
    default: return MacAddress{{0x52, 0x54, 0, 0, 0, static_cast<std::uint8_t>(v % 6)}};
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  log::set_level(log::Level::error);
  Uplink uplink;
  backend::SwitchOptions o;
  o.max_frame = 1514;
  o.queue_bytes = 16 * 1514;  // small, so queues fill
  o.max_ports = 3;
  o.guest_to_guest = size % 2 == 0;
  backend::VirtualSwitch sw(uplink, nullptr, o);
  std::vector<backend::SwitchPort*> ports{sw.attach(), sw.attach(), sw.attach()};
  std::vector<std::byte> rx(2048);
  const iovec rv{rx.data(), rx.size()};
  std::size_t at = 0;
  while (at + 2 <= size) {
    const std::uint8_t control = data[at];
    const std::size_t len = std::min<std::size_t>(data[at + 1] * 8u, 2000);
    at += 2;
    Bytes f(len);
    for (std::size_t i = 0; i < len; ++i) f[i] = std::byte{at + i < size ? data[at + i] : std::uint8_t{0}};
    if (len >= 12) {
      mac_of(len >= 1 ? static_cast<std::uint8_t>(f[0]) : 0).store(f.data());
      mac_of(static_cast<std::uint8_t>(f[6])).store(f.data() + 6);
    }
    at += std::min(len, size - std::min(size, at));
    const unsigned who = control & 3u;
    const unsigned offload = control >> 6;
    net::NetHeader h;
    if (offload != 0 && offload != 3 && len >= 34 + 18) {
      h.flags = net::NetHeader::kFlagNeedsCsum;
      h.csum_start = static_cast<std::uint16_t>(14 + data[at - 1] % (len - 14 - 2));
      h.csum_offset = static_cast<std::uint16_t>((len - 2 - h.csum_start) / 2);
      if (offload == 2) {
        h.gso_type = (len & 8) ? net::NetHeader::kGsoTcpV6 : net::NetHeader::kGsoTcpV4 | net::NetHeader::kGsoEcn;
        h.gso_size = 536;
        h.hdr_len = 54;
      }
    } else if (offload == 3 && who < 3 && ports[who] != nullptr) {
      ports[who]->set_rx_offloads({(len & 1) != 0, (len & 2) != 0, (len & 4) != 0});
    }
    if (who == 3) {
      uplink.frames.push_back(std::move(f));
    } else if (ports[who] != nullptr) {
      const iovec v{f.data(), f.size()};
      ports[who]->transmit(net::TxFrame{h, std::span(&v, 1), f.size(),
                                        std::span<const std::byte>(f).first(std::min(f.size(), net::kTxHeadBytes))});
    }
    if ((control & 8u) != 0) {
      const unsigned leaving = (control >> 4) % 3;
      sw.detach(ports[leaving]);
      ports[leaving] = sw.attach();
    }
    if ((control & 4u) != 0) {
      for (auto* p : ports) {
        if (p == nullptr) continue;
        const auto r = p->receive(std::span(&rv, 1));
        if (r.status == net::RxStatus::frame && (r.written > rx.size() || r.written > r.frame_len)) __builtin_trap();
        if (p->queued() > 2 * backend::FrameQueue::kMaxFrames) __builtin_trap();
      }
    }
  }
  return 0;
}
