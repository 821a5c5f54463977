#include "memory/guest_memory.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "memory/iovec_ops.hpp"

namespace vnk {
namespace {

GuestMemory two_regions() {
  // Two adjacent regions and one far away, as a VMM with a PCI hole has.
  const std::array specs{RegionSpec{GuestAddress{0x1000}, 0x1000, 0x7f0000000000},
                         RegionSpec{GuestAddress{0x2000}, 0x1000, 0x7f0000100000},
                         RegionSpec{GuestAddress{0xffff'ffff'ffff'f000}, 0x1000, 0x7f0000200000}};
  return *GuestMemory::create(specs);
}

TEST(GuestMemory, ReadWriteObjectsRoundTrip) {
  GuestMemory m = two_regions();
  ASSERT_TRUE(m.write_obj<std::uint64_t>(GuestAddress{0x1008}, 0x1122334455667788));
  auto v = m.read_obj<std::uint64_t>(GuestAddress{0x1008});
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 0x1122334455667788u);
}

TEST(GuestMemory, AccessSpanningAdjacentRegionsWorks) {
  GuestMemory m = two_regions();
  std::array<std::byte, 16> in{};
  for (std::size_t i = 0; i < in.size(); ++i) in[i] = std::byte(i + 1);
  ASSERT_TRUE(m.write(GuestAddress{0x1ff8}, in));
  std::array<std::byte, 16> out{};
  ASSERT_TRUE(m.read(GuestAddress{0x1ff8}, out));
  EXPECT_EQ(in, out);
  std::array<iovec, 4> iov{};
  auto n = m.translate(GuestAddress{0x1ff8}, 16, iov);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(iov[0].iov_len, 8u);
  EXPECT_EQ(iov[1].iov_len, 8u);
}

TEST(GuestMemory, UnmappedAndPartiallyMappedRangesAreRefused) {
  GuestMemory m = two_regions();
  std::array<std::byte, 8> buf{};
  EXPECT_EQ(m.read(GuestAddress{0x0}, buf).error(), MemoryError::unmapped);
  EXPECT_EQ(m.read(GuestAddress{0x2ffc}, buf).error(), MemoryError::unmapped);  // runs off the end
  EXPECT_EQ(m.write(GuestAddress{0x3000}, buf).error(), MemoryError::unmapped);
  EXPECT_FALSE(m.is_mapped(GuestAddress{0x2fff}, 2));
  EXPECT_TRUE(m.is_mapped(GuestAddress{0x2fff}, 1));
}

TEST(GuestMemory, AddressNearTwoToTheSixtyFourNeverWraps) {
  GuestMemory m = two_regions();
  std::array<std::byte, 8> buf{};
  // Last 8 bytes of the address space are mapped and readable...
  EXPECT_TRUE(m.read(GuestAddress{0xffff'ffff'ffff'fff8}, buf));
  // ...one byte further would wrap to 0: refused as overflow, not read at 0.
  EXPECT_EQ(m.read(GuestAddress{0xffff'ffff'ffff'fff9}, buf).error(), MemoryError::overflow);
  std::array<iovec, 4> iov{};
  EXPECT_EQ(m.translate(GuestAddress{0xffff'ffff'ffff'ffff}, 2, iov).error(), MemoryError::overflow);
  EXPECT_EQ(GuestAddress{0xffff'ffff'ffff'ffff}.checked_add(1), std::nullopt);
}

TEST(GuestMemory, TranslateRefusesWhenOutputArrayIsTooSmall) {
  GuestMemory m = two_regions();
  std::array<iovec, 1> iov{};
  EXPECT_EQ(m.translate(GuestAddress{0x1ff8}, 16, iov).error(), MemoryError::too_many_spans);
}

TEST(GuestMemory, RingIndexAtomicsCheckAlignmentAndBounds) {
  GuestMemory m = two_regions();
  ASSERT_TRUE(m.store_release_u16(GuestAddress{0x1002}, 0xbeef));
  EXPECT_EQ(*m.load_acquire_u16(GuestAddress{0x1002}), 0xbeef);
  EXPECT_EQ(m.load_acquire_u16(GuestAddress{0x1003}).error(), MemoryError::misaligned);
  EXPECT_EQ(m.load_acquire_u16(GuestAddress{0x4000}).error(), MemoryError::unmapped);
}

TEST(GuestMemory, RingIndexAtomicsRefuseAnAlignedAddressThatIsMisalignedInHostMemory) {
  // A region starting at an odd guest address: 0x1002 lies one byte into
  // the (page-aligned) host mapping. Found by fuzz_vhost_user.
  const std::array specs{RegionSpec{GuestAddress{0x1001}, 0x1000, 0}};
  GuestMemory m = *GuestMemory::create(specs);
  EXPECT_EQ(m.load_acquire_u16(GuestAddress{0x1002}).error(), MemoryError::misaligned);
  EXPECT_EQ(m.store_release_u16(GuestAddress{0x1002}, 1).error(), MemoryError::misaligned);
}

TEST(GuestMemory, FrontendVirtualAddressesTranslateToGuestPhysical) {
  GuestMemory m = two_regions();
  EXPECT_EQ(m.user_to_guest(0x7f0000100010, 16)->value, 0x2010u);
  EXPECT_EQ(m.user_to_guest(0x7f0000100ff8, 16).error(), MemoryError::unmapped);  // crosses the region end
  EXPECT_EQ(m.user_to_guest(0xffff'ffff'ffff'fff0, 32).error(), MemoryError::overflow);
}

TEST(GuestMemory, OverlappingOrEmptyLayoutsAreRejected) {
  const std::array overlap{RegionSpec{GuestAddress{0x1000}, 0x2000, 0}, RegionSpec{GuestAddress{0x2000}, 0x1000, 0}};
  EXPECT_EQ(GuestMemory::create(overlap).error(), MemoryError::bad_layout);
  const std::array empty{RegionSpec{GuestAddress{0x1000}, 0, 0}};
  EXPECT_FALSE(GuestMemory::create(empty));
  const std::array wraps{RegionSpec{GuestAddress{0xffff'ffff'ffff'f000}, 0x2000, 0}};
  EXPECT_EQ(GuestMemory::create(wraps).error(), MemoryError::bad_layout);
}

TEST(GuestMemory, RegionsFromFdsShareBytesWithTheFrontend) {
  // What vhost-user SET_MEM_TABLE does: the frontend's memfd, an mmap offset.
  const int fd = ::memfd_create("frontend", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 0x3000), 0);
  auto* front = static_cast<std::byte*>(::mmap(nullptr, 0x3000, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(front, MAP_FAILED);
  const FdRegionSpec spec{fd, GuestAddress{0x10000}, 0x2000, 0x5000'0000, 0x1000};
  auto m = GuestMemory::from_fds(std::span(&spec, 1));
  ::close(fd);  // the mapping keeps the memory alive
  ASSERT_TRUE(m);
  std::memcpy(front + 0x1000 + 0x10, "hello", 5);
  std::array<std::byte, 5> out{};
  ASSERT_TRUE(m->read(GuestAddress{0x10010}, out));
  EXPECT_EQ(std::memcmp(out.data(), "hello", 5), 0);
  ::munmap(front, 0x3000);
}

TEST(GuestMemory, FdShorterThanTheRegionIsRefusedNotMapped) {
  // Mapping past the end of a file would SIGBUS on first touch.
  const int fd = ::memfd_create("short", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, 0x1000), 0);
  const FdRegionSpec spec{fd, GuestAddress{0x10000}, 0x2000, 0, 0};
  EXPECT_EQ(GuestMemory::from_fds(std::span(&spec, 1)).error(), MemoryError::bad_layout);
  const FdRegionSpec offset_past{fd, GuestAddress{0x10000}, 0x1000, 0, 0x1000};
  EXPECT_EQ(GuestMemory::from_fds(std::span(&offset_past, 1)).error(), MemoryError::bad_layout);
  ::close(fd);
}

TEST(IovecOps, CopyReadWriteAndTailAcrossPieces) {
  std::array<std::byte, 4> a{}, b{}, c{};
  std::array<iovec, 3> iov{iovec{a.data(), 4}, iovec{b.data(), 4}, iovec{c.data(), 4}};
  std::array<std::byte, 6> in{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}, std::byte{5}, std::byte{6}};
  EXPECT_EQ(iov_write(iov, 3, in), 6u);
  EXPECT_EQ(a[3], std::byte{1});
  EXPECT_EQ(c[0], std::byte{6});
  std::array<std::byte, 20> out{};
  EXPECT_EQ(iov_read(iov, 10, out), 2u);
  std::array<iovec, 3> tail{};
  const std::size_t n = iov_tail(iov, 5, tail);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(iov_length(std::span(tail.data(), n)), 7u);
  EXPECT_EQ(iov_write(iov, 11, in), 1u);  // only one byte of room left
}

}  // namespace
}  // namespace vnk
