// The metadata service's content and sessions: a JSON document read from a
// file (re-read when it changes, so it can be edited at run time), 
// answered by path the way cloud metadata services do, and IMDSv2-style
// session tokens.
//
//   GET /latest/meta-data/a/b  -> a string or number as text; an object as
//                                 its keys, one per line ("key/" for objects);
//                                 an array as its indexes.
//   PUT /latest/api/token with X-metadata-token-ttl-seconds: 1..21600
//                              -> a token; later GETs carry it in
//                                 X-metadata-token when tokens are required.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/unique_fd.hpp"

namespace vnk::mmds {

struct HttpResponse {
  int status = 200;
  std::string body;
};

class MetadataStore {
 public:
  static constexpr std::size_t kMaxTokens = 1024;
  static constexpr unsigned kMaxTtlSeconds = 21600;

  // Reads `path` (a JSON document); the error is a sentence for the user.
  static std::expected<MetadataStore, std::string> open(std::string path, bool require_token);
  // A store over a document in memory (tests).
  MetadataStore(nlohmann::json doc, bool require_token);

  // Answers one request. `now_ms` is monotonic time; `ttl` and `token` are
  // the IMDSv2 headers' values ("" when absent).
  HttpResponse handle(std::string_view method, std::string_view path, std::string_view ttl, std::string_view token,
                      std::uint64_t now_ms);

  [[nodiscard]] std::size_t tokens() const noexcept { return tokens_.size(); }

  // From now on re-read only the file opened at start (edits in place),
  // never the path again: for the sandbox, whose root is empty. Without it a
  // file replaced by rename is followed too.
  void pin_file() noexcept { follow_path_ = false; }

 private:
  void reload_if_changed();
  HttpResponse lookup(std::string_view path) const;

  nlohmann::json doc_;
  bool require_token_;
  std::string path_;            // empty for in-memory documents
  std::shared_ptr<UniqueFd> file_;  // the document's file (shared: the store is copied into the interceptor)
  bool follow_path_ = true;
  std::int64_t stamp_ = 0;       // the file's mtime when last read
  std::map<std::string, std::uint64_t> tokens_;  // token -> expiry (ms)
};

}  // namespace vnk::mmds
