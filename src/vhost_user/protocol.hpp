// The vhost-user wire protocol (QEMU docs/interop/vhost-user.rst): request
// codes, header flags, protocol feature bits, and the payloads vnetkit reads,
// each decoded through an explicit length check and little-endian loads.
//
// Every message is a 12-byte header {u32 request, u32 flags, u32 size}
// followed by `size` payload bytes; file descriptors ride along as
// SCM_RIGHTS ancillary data on the same sendmsg.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <span>
#include <string_view>

namespace vnk::vhost_user {

enum class Request : std::uint32_t {
  get_features = 1,
  set_features = 2,
  set_owner = 3,
  reset_owner = 4,
  set_mem_table = 5,
  set_log_base = 6,
  set_log_fd = 7,
  set_vring_num = 8,
  set_vring_addr = 9,
  set_vring_base = 10,
  get_vring_base = 11,
  set_vring_kick = 12,
  set_vring_call = 13,
  set_vring_err = 14,
  get_protocol_features = 15,
  set_protocol_features = 16,
  get_queue_num = 17,
  set_vring_enable = 18,
  send_rarp = 19,
  net_set_mtu = 20,
  set_backend_req_fd = 21,
  iotlb_msg = 22,
  set_vring_endian = 23,
  get_config = 24,
  set_config = 25,
  get_max_mem_slots = 36,
  add_mem_reg = 37,
  rem_mem_reg = 38,
  set_status = 39,
  get_status = 40,
};

[[nodiscard]] std::string_view to_string(Request r) noexcept;

constexpr std::uint32_t kVersion = 0x1;           // flags bits 0-1
constexpr std::uint32_t kFlagReply = 1u << 2;     // this is a reply
constexpr std::uint32_t kFlagNeedReply = 1u << 3; // REPLY_ACK requested
constexpr std::uint32_t kVersionMask = 0x3;

constexpr std::size_t kHeaderSize = 12;
// Largest payload we accept: GET/SET_CONFIG carry at most 256 bytes of config
// after 12 bytes of offset/size/flags; a memory table 8 + 8 * 32 bytes.
constexpr std::size_t kMaxPayload = 512;
constexpr std::size_t kMaxFds = 8;           // VHOST_MEMORY_BASELINE_NREGIONS
constexpr std::size_t kMaxMemRegions = 8;
constexpr std::size_t kMaxConfigSize = 256;

// VHOST_USER_F_PROTOCOL_FEATURES, in the virtio feature word.
constexpr unsigned kFeatureProtocolFeatures = 30;

namespace protocol_feature {
constexpr unsigned kMq = 0;
constexpr unsigned kLogShmfd = 1;
constexpr unsigned kRarp = 2;
constexpr unsigned kReplyAck = 3;
constexpr unsigned kNetMtu = 4;
constexpr unsigned kBackendReq = 5;  // formerly SLAVE_REQ; Linux virtio_uml needs it
constexpr unsigned kConfig = 9;
}  // namespace protocol_feature

// Low 8 bits of a kick/call/err payload: the vring index; bit 8: no fd.
constexpr std::uint64_t kVringIndexMask = 0xff;
constexpr std::uint64_t kVringNoFd = 1u << 8;

enum class ProtocolError : std::uint8_t {
  bad_version,     // header flags do not carry version 1
  bad_size,        // payload size wrong for the request
  bad_index,       // vring index beyond the device's queues
  bad_fd_count,    // missing fd, or fds where none belong
  bad_region,      // memory region empty, overflowing, or too many
  unknown_request, // a request this server does not implement
  bad_state,       // a request that makes no sense now (e.g. ring running)
  io,              // the socket failed or closed
};

[[nodiscard]] std::string_view to_string(ProtocolError e) noexcept;

struct Header {
  std::uint32_t request = 0;
  std::uint32_t flags = 0;
  std::uint32_t size = 0;
};

struct VringState {
  std::uint32_t index = 0;
  std::uint32_t num = 0;
};

struct VringAddr {
  std::uint32_t index = 0;
  std::uint32_t flags = 0;
  std::uint64_t desc = 0;   // frontend virtual addresses
  std::uint64_t used = 0;
  std::uint64_t avail = 0;
  std::uint64_t log = 0;
};

struct MemRegion {
  std::uint64_t guest_phys_addr = 0;
  std::uint64_t memory_size = 0;
  std::uint64_t userspace_addr = 0;
  std::uint64_t mmap_offset = 0;
};

struct MemTable {
  std::uint32_t count = 0;
  std::array<MemRegion, kMaxMemRegions> regions{};
};

struct ConfigRequest {
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
  std::uint32_t flags = 0;
  std::span<const std::byte> data;  // SET_CONFIG payload (points into the message)
};

// Decoders check the exact payload size for the request before reading.
std::expected<std::uint64_t, ProtocolError> decode_u64(std::span<const std::byte> p);
std::expected<VringState, ProtocolError> decode_vring_state(std::span<const std::byte> p);
std::expected<VringAddr, ProtocolError> decode_vring_addr(std::span<const std::byte> p);
std::expected<MemTable, ProtocolError> decode_mem_table(std::span<const std::byte> p);
std::expected<ConfigRequest, ProtocolError> decode_config(std::span<const std::byte> p);

}  // namespace vnk::vhost_user
