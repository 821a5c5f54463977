#include "attach/stream_deframer.hpp"

#include <cstring>

#include "base/byte_order.hpp"

namespace vnk::attach {

// Room for two largest frames with their lengths: a read always has space
// once a partial frame is moved to the front.
StreamDeframer::StreamDeframer() : buf_(2 * (kLengthSize + kMaxFrame)) {}

std::span<std::byte> StreamDeframer::space() noexcept {
  if (error_) return {};
  // Keep the partial frame at the front so the rest of it always fits.
  if (begin_ != 0 && buf_.size() - end_ < kLengthSize + kMaxFrame) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  return std::span(buf_).subspan(end_);
}

void StreamDeframer::commit(std::size_t n) noexcept { end_ += std::min(n, buf_.size() - end_); }

std::optional<std::span<const std::byte>> StreamDeframer::next() noexcept {
  if (error_ || end_ - begin_ < kLengthSize) return std::nullopt;
  const std::uint32_t len = load_be<std::uint32_t>(buf_.data() + begin_);
  if (len == 0 || len > kMaxFrame) {
    error_ = true;
    bad_length_ = len;
    return std::nullopt;
  }
  if (end_ - begin_ < kLengthSize + len) return std::nullopt;
  const auto frame = std::span<const std::byte>(buf_).subspan(begin_ + kLengthSize, len);
  begin_ += kLengthSize + len;
  if (begin_ == end_) begin_ = end_ = 0;
  return frame;
}

void store_stream_length(std::span<std::byte, StreamDeframer::kLengthSize> out, std::size_t length) noexcept {
  store_be<std::uint32_t>(out.data(), static_cast<std::uint32_t>(length));
}

}  // namespace vnk::attach
