// `--mmds FILE [--mmds-require-token]`, shared by `serve` and `netns`: the
// metadata service in front of the backend.
#pragma once

#include <CLI/CLI.hpp>
#include <expected>
#include <memory>
#include <string>

#include "mmds/mmds_interceptor.hpp"

namespace vnk::cli {

struct MmdsArgs {
  std::string path;
  bool require_token = false;
};

void add_mmds_options(CLI::App& cmd, MmdsArgs& args);

// Null when --mmds was not given; the error is a sentence for the user.
std::expected<std::unique_ptr<mmds::MmdsInterceptor>, std::string> open_mmds(const MmdsArgs& args);

}  // namespace vnk::cli
