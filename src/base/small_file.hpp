// Writing a short text to a file in one write(2): /proc and /sys knobs
// (uid_map, setgroups, sysctls), where a partial write means failure.
#pragma once

#include <string_view>

namespace vnk {

// Returns false with errno set when the file cannot be opened or the write
// is refused or short.
[[nodiscard]] bool write_small_file(const char* path, std::string_view text);

}  // namespace vnk
