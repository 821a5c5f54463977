#include "cli/mmds_options.hpp"

#include "base/log.hpp"
#include "usernet/usernet_config.hpp"

namespace vnk::cli {

void add_mmds_options(CLI::App& cmd, MmdsArgs& args) {
  cmd.add_option("--mmds", args.path, "Answer HTTP at 169.254.169.254:80 from this JSON document (re-read when it changes)");
  cmd.add_flag("--mmds-require-token", args.require_token, "MMDS GETs need an IMDSv2 session token (PUT /latest/api/token)");
}

std::expected<std::unique_ptr<mmds::MmdsInterceptor>, std::string> open_mmds(const MmdsArgs& args) {
  if (args.path.empty()) return nullptr;
  auto store = mmds::MetadataStore::open(args.path, args.require_token);
  if (!store) return std::unexpected(store.error());
  log::info("mmds: serving {} at 169.254.169.254:80{}", args.path, args.require_token ? " (session tokens required)" : "");
  return std::make_unique<mmds::MmdsInterceptor>(std::move(*store), usernet::UsernetConfig{}.gateway_mac);
}

}  // namespace vnk::cli
