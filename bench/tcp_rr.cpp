// tcp_rr: request/response latency over one TCP connection, netperf TCP_RR
// style: the client sends SIZE bytes, the server echoes them, repeat.
//
//   tcp_rr server ADDRESS PORT          serve (one connection at a time)
//   tcp_rr client ADDRESS PORT [N] [SIZE]
//   tcp_rr connect ADDRESS PORT [N] [SIZE]
//
// The client prints one JSON object: transactions, transactions per second,
// and the round-trip mean, median and 99th percentile in microseconds.
// `connect` is netperf's TCP_CRR: a new connection per transaction (connect,
// SIZE bytes each way, close); it prints connections and connections per
// second.
// TCP_NODELAY is set on both ends. The first 10% of round trips warm up and
// are not counted.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: tcp_rr server ADDRESS PORT | tcp_rr client|connect ADDRESS PORT [N=20000] [SIZE=1]\n");
  return 2;
}

// ADDRESS is IPv4 or IPv6 text.
struct Address {
  sockaddr_storage ss{};
  socklen_t len = 0;
  [[nodiscard]] int family() const { return ss.ss_family; }
  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&ss); }
};

Address address_of(const char* ip, const char* port) {
  Address a;
  const auto p = htons(static_cast<std::uint16_t>(std::atoi(port)));
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (::inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = p;
    a.len = sizeof *v4;
  } else if (::inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = p;
    a.len = sizeof *v6;
  } else {
    std::fprintf(stderr, "tcp_rr: '%s' is not an IP address\n", ip);
    std::exit(2);
  }
  return a;
}

bool exactly(int fd, char* buf, std::size_t len, bool send) {
  for (std::size_t done = 0; done < len;) {
    const ssize_t n = send ? ::send(fd, buf + done, len - done, MSG_NOSIGNAL) : ::recv(fd, buf + done, len - done, 0);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

void nodelay(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int serve(const Address& sa) {
  const int l = ::socket(sa.family(), SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(l, sa.get(), sa.len) != 0 || ::listen(l, 8) != 0) {
    std::perror("tcp_rr: bind/listen");
    return 1;
  }
  std::printf("listening\n");
  std::fflush(stdout);
  std::vector<char> buf(1 << 16);
  for (;;) {
    const int c = ::accept(l, nullptr, nullptr);
    if (c < 0) continue;
    nodelay(c);
    for (;;) {
      const ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
      if (n <= 0 || !exactly(c, buf.data(), static_cast<std::size_t>(n), true)) break;
    }
    ::close(c);
  }
}

int client(const Address& sa, long n, std::size_t size) {
  const int s = ::socket(sa.family(), SOCK_STREAM, 0);
  if (::connect(s, sa.get(), sa.len) != 0) {
    std::perror("tcp_rr: connect");
    return 1;
  }
  nodelay(s);
  std::vector<char> buf(size, 'r');
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(n));
  const long warmup = n / 10;
  using clock = std::chrono::steady_clock;
  const auto begin = clock::now();
  auto counted_from = begin;
  for (long i = 0; i < n + warmup; ++i) {
    if (i == warmup) counted_from = clock::now();
    const auto t0 = clock::now();
    if (!exactly(s, buf.data(), size, true) || !exactly(s, buf.data(), size, false)) {
      std::fprintf(stderr, "tcp_rr: connection lost after %ld round trips\n", i);
      return 1;
    }
    if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
  }
  const double seconds = std::chrono::duration<double>(clock::now() - counted_from).count();
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  std::printf(
      "{\"transactions\": %zu, \"per_second\": %.0f, \"mean_us\": %.2f, \"p50_us\": %.2f, \"p99_us\": %.2f}\n",
      us.size(), static_cast<double>(us.size()) / seconds, sum / static_cast<double>(us.size()), us[us.size() / 2],
      us[us.size() * 99 / 100]);
  ::close(s);
  return 0;
}

int connect_rr(const Address& sa, long n, std::size_t size) {
  std::vector<char> buf(size, 'c');
  const long warmup = n / 10;
  using clock = std::chrono::steady_clock;
  auto counted_from = clock::now();
  for (long i = 0; i < n + warmup; ++i) {
    if (i == warmup) counted_from = clock::now();
    const int s = ::socket(sa.family(), SOCK_STREAM, 0);
    if (::connect(s, sa.get(), sa.len) != 0) {
      std::fprintf(stderr, "tcp_rr: connection %ld: connect: %s\n", i, std::strerror(errno));
      return 1;
    }
    nodelay(s);
    if (!exactly(s, buf.data(), size, true) || !exactly(s, buf.data(), size, false)) {
      std::fprintf(stderr, "tcp_rr: connection %ld lost\n", i);
      return 1;
    }
    ::close(s);
  }
  const double seconds = std::chrono::duration<double>(clock::now() - counted_from).count();
  std::printf("{\"connections\": %ld, \"per_second\": %.0f}\n", n, static_cast<double>(n) / seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  const std::string mode = argv[1];
  const Address sa = address_of(argv[2], argv[3]);
  if (mode == "server") return serve(sa);
  if (mode == "client") {
    const long n = argc > 4 ? std::atol(argv[4]) : 20000;
    const std::size_t size = argc > 5 ? static_cast<std::size_t>(std::atol(argv[5])) : 1;
    if (n <= 0 || size == 0 || size > (1 << 16)) return usage();
    return client(sa, n, size);
  }
  if (mode == "connect") {
    const long n = argc > 4 ? std::atol(argv[4]) : 20000;
    const std::size_t size = argc > 5 ? static_cast<std::size_t>(std::atol(argv[5])) : 1;
    if (n <= 0 || size == 0 || size > (1 << 16)) return usage();
    return connect_rr(sa, n, size);
  }
  return usage();
}
