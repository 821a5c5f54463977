// `--metrics-listen ADDR:PORT`: GET /metrics over HTTP/1.x, for a
// Prometheus scrape.
//
// A minimal handler rather than a library: prometheus-cpp is not packaged in
// Debian 12, and its civetweb server runs threads of its own, which the
// sandbox's seccomp allowlist (no clone) and the single-threaded event loops
// do not have. This one is an epoll set of its own (fd()) that the serving
// loop watches like any other fd and hands to on_ready(); it renders the
// page from the live counters on that same thread, so no locking.
//
// Bounds, since anyone who can reach the port is a client: at most
// kMaxClients connections (a new one closes the longest-waiting), 8 KiB of
// request head, one request per connection (Connection: close). Only GET and
// HEAD of /metrics (and / with a pointer to it) are served; anything else
// gets 404 or 405.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/counter_set.hpp"
#include "base/unique_fd.hpp"

namespace vnk::cli {

#define VNK_METRICS_HTTP_COUNTERS(X)                                                  \
  X(scrapes)        /* GET /metrics answered */                                       \
  X(not_found)      /* requests for another path (404) */                              \
  X(bad_requests)   /* malformed, oversized or non-GET requests (400, 405, 431) */     \
  X(evicted)        /* connections closed to make room for a new one */                \
  X(write_errors)   /* responses cut short by the client */

struct MetricsHttpCounters {
  VNK_METRICS_HTTP_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_METRICS_HTTP_COUNTERS)
};

// What a request head asks for: the part of the handler that reads the
// client's bytes (fuzz_metrics_text).
struct MetricsRequest {
  enum class Kind { metrics, index, not_found, bad_method, malformed };
  Kind kind = Kind::malformed;
  bool head_only = false;  // HEAD: the status and headers only
};
[[nodiscard]] MetricsRequest classify_request(std::string_view head);

class MetricsEndpoint {
 public:
  static constexpr std::size_t kMaxClients = 16;
  static constexpr std::size_t kMaxRequestHead = 8192;

  // `address`: PORT (on 127.0.0.1), IPV4:PORT or [IPV6]:PORT. `render` makes
  // the page (Prometheus text). The error is a sentence for the user.
  static std::expected<std::unique_ptr<MetricsEndpoint>, std::string> listen(std::string_view address,
                                                                             std::function<std::string()> render);

  // Readable when a client connects or sends or its socket takes more.
  [[nodiscard]] int fd() const noexcept { return epoll_.get(); }
  // Serves whatever is ready, without blocking.
  void on_ready();
  // "127.0.0.1:9464": where it listens (the port the kernel chose for :0).
  [[nodiscard]] const std::string& where() const noexcept { return where_; }
  [[nodiscard]] const MetricsHttpCounters& counters() const noexcept { return counters_; }

 private:
  struct Client {
    UniqueFd sock;
    std::string in;   // request head so far
    std::string out;  // response left to write
    std::size_t sent = 0;
    std::uint64_t serial = 0;  // accept order: the smallest is evicted first
  };
  MetricsEndpoint() = default;
  void accept_clients();
  void on_client(Client& c, std::uint32_t events);
  void answer(Client& c);
  void flush(Client& c);
  void close(Client& c);

  UniqueFd epoll_;
  UniqueFd listener_;
  std::function<std::string()> render_;
  std::vector<Client> clients_;  // kMaxClients slots; a slot is free when its sock is not valid
  std::uint64_t next_serial_ = 1;
  std::string where_;
  MetricsHttpCounters counters_;
};

}  // namespace vnk::cli
