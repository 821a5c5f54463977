// libFuzzer target: the descriptor-chain walker and the chain-to-iovec
// gatherer over fuzzed descriptor tables.
//
// Input: u8 queue-size exponent, u8 flags (bit 0 indirect negotiated), u16
// head, then bytes copied over a 64 KiB guest region whose start holds the
// descriptor table (indirect tables and buffers live wherever the bytes say).
// Invariants: the walk ends, yields at most `queue size` descriptors, its
// total length equals the sum of what it yielded, and gathered iovecs cover
// exactly the bytes reported.
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>

#include "memory/iovec_ops.hpp"
#include "virtio/chain_iovecs.hpp"
#include "virtio/descriptor_chain.hpp"

namespace {
using namespace vnk;
constexpr GuestAddress kBase{0x10000};
constexpr std::uint64_t kSize = 0x10000;

const GuestMemory& memory() {
  static const GuestMemory mem = [] {
    const RegionSpec spec{kBase, kSize, 0};
    return *GuestMemory::create(std::span(&spec, 1));
  }();
  return mem;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const GuestMemory& mem = memory();
  const std::uint16_t qsize = static_cast<std::uint16_t>(1u << (data[0] % 16));  // up to 32768
  const bool indirect = data[1] & 1;
  std::uint16_t head = 0;
  std::memcpy(&head, data + 2, 2);
  head = static_cast<std::uint16_t>(head % qsize);
  (void)mem.fill(kBase, kSize, std::byte{0});
  (void)mem.write(kBase, std::as_bytes(std::span(data + 4, std::min<std::size_t>(size - 4, kSize))));
  // The table must be mapped, as Virtqueue::create guarantees.
  if (16ull * qsize > kSize) return 0;

  virtio::DescriptorChain walk(mem, kBase, qsize, head, indirect);
  std::uint64_t count = 0, sum = 0;
  for (;;) {
    auto d = walk.next();
    if (!d || !*d) break;
    ++count;
    sum += (*d)->len;
    if (count > qsize) __builtin_trap();  // TTL violated
  }
  if (sum != walk.total_len()) __builtin_trap();

  static std::array<iovec, 1024> iov;
  for (auto dir : {virtio::Direction::device_reads, virtio::Direction::device_writes}) {
    virtio::DescriptorChain again(mem, kBase, qsize, head, indirect);
    auto g = virtio::gather_chain(mem, again, dir, iov, 1 << 20);
    if (g && iov_length(g->iov) != g->bytes) __builtin_trap();
  }
  return 0;
}
