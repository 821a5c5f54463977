// Reading and writing vhost-user messages on a Unix stream socket.
//
// A message's fds arrive as SCM_RIGHTS with its first bytes. Every received
// fd is owned by a UniqueFd from the moment recvmsg returns, so a message
// that is rejected for any reason closes its fds: a frontend cannot make us
// leak descriptors. Truncated ancillary data (more fds than kMaxFds) is
// refused, and payloads larger than kMaxPayload are refused before reading.
#pragma once

#include <array>
#include <cstddef>
#include <expected>
#include <span>

#include "base/unique_fd.hpp"
#include "vhost_user/protocol.hpp"

namespace vnk::vhost_user {

struct Message {
  Header header;
  std::array<std::byte, kMaxPayload> storage{};
  std::array<UniqueFd, kMaxFds> fds;
  std::size_t fd_count = 0;

  [[nodiscard]] std::span<const std::byte> payload() const noexcept { return {storage.data(), header.size}; }
  [[nodiscard]] Request request() const noexcept { return static_cast<Request>(header.request); }
  [[nodiscard]] bool needs_reply_ack() const noexcept { return (header.flags & kFlagNeedReply) != 0; }
  // Takes the first fd out of the message (-1 when there is none).
  UniqueFd take_fd(std::size_t i = 0) noexcept { return i < fd_count ? std::move(fds[i]) : UniqueFd{}; }
};

// Reads one message. ProtocolError::io on EOF or a socket error; other
// errors mean the frontend sent something malformed (disconnect it).
std::expected<void, ProtocolError> read_message(int sock, Message& out);

// Sends a message (header + payload + optional fds) in one sendmsg.
std::expected<void, ProtocolError> write_message(int sock, const Header& header, std::span<const std::byte> payload,
                                                 std::span<const int> fds = {});

// A reply to `request`: version 1 with the REPLY flag.
std::expected<void, ProtocolError> write_reply(int sock, std::uint32_t request, std::span<const std::byte> payload);

}  // namespace vnk::vhost_user
