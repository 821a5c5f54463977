// The metrics texts: the request head a --metrics-listen client sends
// (classify_request), the files and pages `vnetkit stats` reads
// (parse_metrics), and the round trip of render_prometheus with a label
// and values taken from the input: whatever the device name holds, the page
// must parse back to the same values.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "cli/metrics_endpoint.hpp"
#include "cli/metrics_reader.hpp"
#include "cli/metrics_text.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0: {
      const auto r = vnk::cli::classify_request(rest);
      if (r.head_only && r.kind == vnk::cli::MetricsRequest::Kind::malformed) __builtin_trap();
      break;
    }
    case 1: (void)vnk::cli::parse_metrics(rest); break;
    case 2: {
      // Up to 8 values from the front, the rest is the device label.
      std::uint64_t values[8] = {};
      const std::size_t n = std::min<std::size_t>(rest.size() / 8, 8);
      std::memcpy(values, rest.data(), n * 8);
      const std::string device(rest.substr(n * 8));
      vnk::cli::MetricsGroup g{"net",
                               [&](const auto& emit) {
                                 for (std::size_t i = 0; i < n; ++i) emit("c" + std::to_string(i), values[i] >> 12);
                               },
                               {},
                               {}};
      const auto sample = vnk::cli::parse_metrics(vnk::cli::render_prometheus({g}, device));
      if (!sample) __builtin_trap();
      for (std::size_t i = 0; i < n; ++i) {
        const auto it = sample->find("net.c" + std::to_string(i));
        // Values below 2^52 survive the text's double.
        if (it == sample->end() || it->second != values[i] >> 12) __builtin_trap();
      }
      break;
    }
  }
  return 0;
}
