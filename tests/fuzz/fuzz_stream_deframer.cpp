// libFuzzer target: QEMU stream framing from a hostile peer. The input is
// fed to StreamDeframer in reads whose sizes the input's first bytes pick
// (so frames and lengths split across reads are exercised); every frame it
// yields must lie inside what was fed and match its length field, and once
// it reports an error it must yield nothing more.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "attach/stream_deframer.hpp"

using vnk::attach::StreamDeframer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static StreamDeframer* d = nullptr;
  delete d;
  d = new StreamDeframer();
  if (size < 2) return 0;
  const std::size_t chunk = 1 + (std::size_t{data[0]} << 8 | data[1]);  // 1..65536 bytes per read
  data += 2;
  size -= 2;
  while (size > 0) {
    const auto space = d->space();
    if (space.empty()) {
      if (!d->error()) std::abort();  // space runs out only after an error
      break;
    }
    const std::size_t n = std::min({chunk, size, space.size()});
    std::memcpy(space.data(), data, n);
    d->commit(n);
    data += n;
    size -= n;
    while (auto frame = d->next()) {
      if (frame->empty() || frame->size() > StreamDeframer::kMaxFrame) std::abort();
      const std::byte* len_at = frame->data() - StreamDeframer::kLengthSize;
      const std::uint32_t len = std::uint32_t{static_cast<std::uint8_t>(len_at[0])} << 24 |
                                std::uint32_t{static_cast<std::uint8_t>(len_at[1])} << 16 |
                                std::uint32_t{static_cast<std::uint8_t>(len_at[2])} << 8 |
                                static_cast<std::uint8_t>(len_at[3]);
      if (len != frame->size()) std::abort();
    }
    if (d->error() && d->next()) std::abort();
  }
  return 0;
}
