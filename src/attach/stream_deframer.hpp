// QEMU's stream framing, as `-netdev stream` and `-netdev socket` speak it
// (and passt, and gvproxy's "qemu" mode): every Ethernet frame follows its
// length as a 4-byte big-endian number, on a byte stream.
//
// The deframer owns one buffer. The caller reads the socket into space(),
// says how much arrived (commit), then takes whole frames with next() until
// it returns nothing; a frame split across reads waits for its rest. A length
// of 0 or over kMaxFrame is a protocol error from which the stream cannot
// recover (there is no way to find the next frame): error() turns true for
// good and next() returns nothing more. Nothing is allocated after
// construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace vnk::attach {

class StreamDeframer {
 public:
  // An Ethernet header and the largest IP packet.
  static constexpr std::size_t kMaxFrame = 14 + 65535;
  static constexpr std::size_t kLengthSize = 4;

  StreamDeframer();

  // Where the next read goes; empty only after an error.
  [[nodiscard]] std::span<std::byte> space() noexcept;
  // `n` bytes were read into space().
  void commit(std::size_t n) noexcept;
  // The next whole frame, valid until the next space()/commit(); nullopt
  // when none is complete (or after an error).
  std::optional<std::span<const std::byte>> next() noexcept;
  [[nodiscard]] bool error() const noexcept { return error_; }
  // The length field that caused the error.
  [[nodiscard]] std::uint32_t bad_length() const noexcept { return bad_length_; }
  // Bytes held of a frame not yet whole.
  [[nodiscard]] std::size_t buffered() const noexcept { return end_ - begin_; }

 private:
  std::vector<std::byte> buf_;
  std::size_t begin_ = 0, end_ = 0;  // unconsumed bytes: [begin_, end_)
  bool error_ = false;
  std::uint32_t bad_length_ = 0;
};

// Writes the 4-byte length in front of a frame of `length` bytes.
void store_stream_length(std::span<std::byte, StreamDeframer::kLengthSize> out, std::size_t length) noexcept;

}  // namespace vnk::attach
