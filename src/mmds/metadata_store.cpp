#include "mmds/metadata_store.hpp"

#include <sys/random.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "base/log.hpp"

namespace vnk::mmds {

namespace {

// Documents larger than this are refused: the whole file is held in memory.
constexpr std::size_t kMaxDocumentBytes = 16u << 20;

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Reads the whole file from offset 0 (pread: the fd is kept and re-read).
std::expected<nlohmann::json, std::string> read_json(int fd, const std::string& path) {
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(text.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return std::unexpected("--mmds " + path + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > kMaxDocumentBytes) return std::unexpected("--mmds " + path + ": larger than 16 MiB");
  }
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return std::unexpected("--mmds " + path + ": not valid JSON");
  return doc;
}

std::string new_token() {
  unsigned char raw[24];
  if (::getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) return {};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string t;
  for (unsigned char c : raw) {
    t += kHex[c >> 4];
    t += kHex[c & 15];
  }
  return t;
}

}  // namespace

std::expected<MetadataStore, std::string> MetadataStore::open(std::string path, bool require_token) {
  auto file = std::make_shared<UniqueFd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file->valid()) return std::unexpected("--mmds " + path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(file->get(), &st) != 0) return std::unexpected("--mmds " + path + ": " + std::strerror(errno));
  auto doc = read_json(file->get(), path);
  if (!doc) return std::unexpected(doc.error());
  MetadataStore s(std::move(*doc), require_token);
  s.stamp_ = mtime_ns(st);
  s.path_ = std::move(path);
  s.file_ = std::move(file);
  return s;
}

MetadataStore::MetadataStore(nlohmann::json doc, bool require_token)
    : doc_(std::move(doc)), require_token_(require_token) {}

void MetadataStore::reload_if_changed() {
  if (!file_) return;
  struct stat st {};
  if (follow_path_) {
    // Replaced by rename (as editors and config tools do): take the new file.
    struct stat now {};
    if (::stat(path_.c_str(), &now) == 0 && ::fstat(file_->get(), &st) == 0 &&
        (now.st_ino != st.st_ino || now.st_dev != st.st_dev)) {
      UniqueFd fresh(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
      if (fresh.valid()) {
        *file_ = std::move(fresh);
        stamp_ = -1;  // a new file is read whatever its time
      }
    }
  }
  if (::fstat(file_->get(), &st) != 0) return;
  const std::int64_t m = mtime_ns(st);
  if (m == stamp_) return;
  stamp_ = m;  // a broken file is not re-read on every request
  auto doc = read_json(file_->get(), path_);
  if (!doc) {
    log::warn("mmds: {}; keeping the previous document", doc.error());
    return;
  }
  doc_ = std::move(*doc);
  log::info("mmds: reloaded {}", path_);
}

HttpResponse MetadataStore::handle(std::string_view method, std::string_view path, std::string_view ttl,
                                   std::string_view token, std::uint64_t now_ms) {
  std::erase_if(tokens_, [now_ms](const auto& kv) { return kv.second <= now_ms; });
  if (method == "PUT" && path == "/latest/api/token") {
    unsigned secs = 0;
    const auto [end, ec] = std::from_chars(ttl.data(), ttl.data() + ttl.size(), secs);
    if (ttl.empty() || ec != std::errc{} || end != ttl.data() + ttl.size() || secs == 0 || secs > kMaxTtlSeconds)
      return {400, "X-metadata-token-ttl-seconds must be 1..21600\n"};
    if (tokens_.size() >= kMaxTokens) return {503, "too many sessions\n"};
    std::string t = new_token();
    if (t.empty()) return {500, "no randomness\n"};
    tokens_.emplace(t, now_ms + std::uint64_t{secs} * 1000);
    return {200, t};
  }
  if (method != "GET") return {405, "method not allowed\n"};
  if (require_token_ || !token.empty()) {
    if (token.empty()) return {401, "a session token is required (PUT /latest/api/token)\n"};
    if (!tokens_.contains(std::string(token))) return {401, "invalid or expired token\n"};
  }
  reload_if_changed();
  return lookup(path);
}

HttpResponse MetadataStore::lookup(std::string_view path) const {
  const nlohmann::json* node = &doc_;
  // Paths are /a/b/c; empty segments (a trailing slash) are skipped.
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    const std::size_t j = path.find('/', i);
    const std::string_view seg = path.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
    if (seg.empty()) break;
    if (node->is_object()) {
      auto it = node->find(std::string(seg));
      if (it == node->end()) return {404, "not found\n"};
      node = &*it;
    } else if (node->is_array()) {
      std::size_t idx = 0;
      const auto [end, ec] = std::from_chars(seg.data(), seg.data() + seg.size(), idx);
      if (ec != std::errc{} || end != seg.data() + seg.size() || idx >= node->size()) return {404, "not found\n"};
      node = &(*node)[idx];
    } else {
      return {404, "not found\n"};
    }
    i = j == std::string_view::npos ? path.size() : j;
  }
  std::string body;
  if (node->is_object()) {
    for (auto it = node->begin(); it != node->end(); ++it) {
      if (!body.empty()) body += '\n';
      body += it.key();
      if (it->is_object() || it->is_array()) body += '/';
    }
  } else if (node->is_array()) {
    for (std::size_t k = 0; k < node->size(); ++k) {
      if (k) body += '\n';
      body += std::to_string(k);
    }
  } else if (node->is_string()) {
    body = node->get<std::string>();
  } else {
    body = node->dump();
  }
  return {200, body};
}

}  // namespace vnk::mmds
