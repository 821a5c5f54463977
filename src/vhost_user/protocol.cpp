#include "vhost_user/protocol.hpp"

#include "base/byte_order.hpp"

namespace vnk::vhost_user {

std::string_view to_string(Request r) noexcept {
  switch (r) {
    case Request::get_features: return "GET_FEATURES";
    case Request::set_features: return "SET_FEATURES";
    case Request::set_owner: return "SET_OWNER";
    case Request::reset_owner: return "RESET_OWNER";
    case Request::set_mem_table: return "SET_MEM_TABLE";
    case Request::set_log_base: return "SET_LOG_BASE";
    case Request::set_log_fd: return "SET_LOG_FD";
    case Request::set_vring_num: return "SET_VRING_NUM";
    case Request::set_vring_addr: return "SET_VRING_ADDR";
    case Request::set_vring_base: return "SET_VRING_BASE";
    case Request::get_vring_base: return "GET_VRING_BASE";
    case Request::set_vring_kick: return "SET_VRING_KICK";
    case Request::set_vring_call: return "SET_VRING_CALL";
    case Request::set_vring_err: return "SET_VRING_ERR";
    case Request::get_protocol_features: return "GET_PROTOCOL_FEATURES";
    case Request::set_protocol_features: return "SET_PROTOCOL_FEATURES";
    case Request::get_queue_num: return "GET_QUEUE_NUM";
    case Request::set_vring_enable: return "SET_VRING_ENABLE";
    case Request::send_rarp: return "SEND_RARP";
    case Request::net_set_mtu: return "NET_SET_MTU";
    case Request::set_backend_req_fd: return "SET_BACKEND_REQ_FD";
    case Request::iotlb_msg: return "IOTLB_MSG";
    case Request::set_vring_endian: return "SET_VRING_ENDIAN";
    case Request::get_config: return "GET_CONFIG";
    case Request::set_config: return "SET_CONFIG";
    case Request::get_max_mem_slots: return "GET_MAX_MEM_SLOTS";
    case Request::add_mem_reg: return "ADD_MEM_REG";
    case Request::rem_mem_reg: return "REM_MEM_REG";
    case Request::set_status: return "SET_STATUS";
    case Request::get_status: return "GET_STATUS";
  }
  return "UNKNOWN";
}

std::string_view to_string(ProtocolError e) noexcept {
  switch (e) {
    case ProtocolError::bad_version: return "bad_version";
    case ProtocolError::bad_size: return "bad_size";
    case ProtocolError::bad_index: return "bad_index";
    case ProtocolError::bad_fd_count: return "bad_fd_count";
    case ProtocolError::bad_region: return "bad_region";
    case ProtocolError::unknown_request: return "unknown_request";
    case ProtocolError::bad_state: return "bad_state";
    case ProtocolError::io: return "io";
  }
  return "unknown";
}

std::expected<std::uint64_t, ProtocolError> decode_u64(std::span<const std::byte> p) {
  if (p.size() != 8) return std::unexpected(ProtocolError::bad_size);
  return load_le<std::uint64_t>(p.data());
}

std::expected<VringState, ProtocolError> decode_vring_state(std::span<const std::byte> p) {
  if (p.size() != 8) return std::unexpected(ProtocolError::bad_size);
  return VringState{load_le<std::uint32_t>(p.data()), load_le<std::uint32_t>(p.data() + 4)};
}

std::expected<VringAddr, ProtocolError> decode_vring_addr(std::span<const std::byte> p) {
  if (p.size() != 40) return std::unexpected(ProtocolError::bad_size);
  VringAddr a;
  a.index = load_le<std::uint32_t>(p.data());
  a.flags = load_le<std::uint32_t>(p.data() + 4);
  a.desc = load_le<std::uint64_t>(p.data() + 8);
  a.used = load_le<std::uint64_t>(p.data() + 16);
  a.avail = load_le<std::uint64_t>(p.data() + 24);
  a.log = load_le<std::uint64_t>(p.data() + 32);
  return a;
}

std::expected<MemTable, ProtocolError> decode_mem_table(std::span<const std::byte> p) {
  // u32 nregions, u32 padding, then nregions * 32 bytes. QEMU sends the
  // table sized to the regions it uses; accept any size that holds them.
  if (p.size() < 8) return std::unexpected(ProtocolError::bad_size);
  MemTable t;
  t.count = load_le<std::uint32_t>(p.data());
  if (t.count == 0 || t.count > kMaxMemRegions) return std::unexpected(ProtocolError::bad_region);
  if (p.size() < 8 + 32 * std::size_t{t.count}) return std::unexpected(ProtocolError::bad_size);
  for (std::uint32_t i = 0; i < t.count; ++i) {
    const std::byte* r = p.data() + 8 + 32 * std::size_t{i};
    t.regions[i] = MemRegion{load_le<std::uint64_t>(r), load_le<std::uint64_t>(r + 8), load_le<std::uint64_t>(r + 16),
                             load_le<std::uint64_t>(r + 24)};
  }
  return t;
}

std::expected<ConfigRequest, ProtocolError> decode_config(std::span<const std::byte> p) {
  if (p.size() < 12) return std::unexpected(ProtocolError::bad_size);
  ConfigRequest c;
  c.offset = load_le<std::uint32_t>(p.data());
  c.size = load_le<std::uint32_t>(p.data() + 4);
  c.flags = load_le<std::uint32_t>(p.data() + 8);
  if (c.size > kMaxConfigSize || p.size() != 12 + std::size_t{c.size}) return std::unexpected(ProtocolError::bad_size);
  c.data = p.subspan(12);
  return c;
}

}  // namespace vnk::vhost_user
