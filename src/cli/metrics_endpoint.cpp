#include "cli/metrics_endpoint.hpp"

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fmt/format.h>

#include "base/epoll_ops.hpp"
#include "usernet/socket_address.hpp"
#include "usernet/usernet_config.hpp"

namespace vnk::cli {

namespace {

constexpr std::uint64_t kTagListener = ~std::uint64_t{0};

std::string response(std::string_view status, std::string_view type, std::string_view body, bool head_only) {
  return fmt::format("HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", status,
                     type, body.size(), head_only ? std::string_view{} : body);
}

// PORT, IPV4:PORT or [IPV6]:PORT; the port is required.
std::optional<usernet::SocketAddress> parse_listen_address(std::string_view text) {
  std::uint16_t port = 0;
  auto parse_port = [&port](std::string_view digits) {
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    return ec == std::errc{} && end == digits.data() + digits.size() && !digits.empty();
  };
  if (parse_port(text)) return usernet::SocketAddress(*packet::IpAddress::parse("127.0.0.1"), port);
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos || !parse_port(text.substr(colon + 1))) return std::nullopt;
  auto host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto ip = packet::IpAddress::parse(host);
  if (!ip) return std::nullopt;
  return usernet::SocketAddress(*ip, port);
}

}  // namespace

std::expected<std::unique_ptr<MetricsEndpoint>, std::string> MetricsEndpoint::listen(
    std::string_view address, std::function<std::string()> render) {
  const auto fail = [address](std::string_view what) {
    return std::unexpected(fmt::format("--metrics-listen {}: {}", address, what));
  };
  auto where = parse_listen_address(address);
  if (!where) return fail("expected PORT, IPV4:PORT or [IPV6]:PORT, like 127.0.0.1:9464");
  std::unique_ptr<MetricsEndpoint> owner(new MetricsEndpoint());
  MetricsEndpoint& e = *owner;
  e.render_ = std::move(render);
  e.listener_.reset(::socket(where->family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!e.listener_.valid()) return fail(std::strerror(errno));
  const int one = 1;
  ::setsockopt(e.listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(e.listener_.get(), where->get(), where->length()) != 0 || ::listen(e.listener_.get(), 16) != 0)
    return fail(std::strerror(errno));
  usernet::SocketAddress bound;
  socklen_t len = usernet::SocketAddress::capacity();
  if (::getsockname(e.listener_.get(), bound.buffer(), &len) == 0) where = bound;
  e.where_ = where->to_string();
  e.epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!e.epoll_.valid() || !epoll_add(e.epoll_.get(), e.listener_.get(), EPOLLIN, kTagListener))
    return fail(std::strerror(errno));
  e.clients_.resize(kMaxClients);
  return owner;
}

void MetricsEndpoint::on_ready() {
  std::array<epoll_event, kMaxClients + 1> events{};
  const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 0);
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == kTagListener) {
      accept_clients();
      continue;
    }
    const std::size_t slot = events[i].data.u64;
    if (slot < clients_.size() && clients_[slot].sock.valid()) on_client(clients_[slot], events[i].events);
  }
}

void MetricsEndpoint::accept_clients() {
  for (;;) {
    UniqueFd s(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!s.valid()) return;  // EAGAIN, or a client that left already
    auto slot = std::ranges::find_if(clients_, [](const Client& c) { return !c.sock.valid(); });
    if (slot == clients_.end()) {
      // Full: the longest-waiting client gives its place (a slow or idle
      // one cannot keep scrapes out).
      slot = std::ranges::min_element(clients_, {}, &Client::serial);
      close(*slot);
      counters_.evicted.add();
    }
    const auto index = static_cast<std::uint64_t>(slot - clients_.begin());
    if (!epoll_add(epoll_.get(), s.get(), EPOLLIN, index)) continue;
    *slot = Client{std::move(s), {}, {}, 0, next_serial_++};
  }
}

void MetricsEndpoint::on_client(Client& c, std::uint32_t events) {
  if (!c.out.empty()) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) flush(c);
    return;
  }
  char buf[2048];
  for (;;) {
    const ssize_t n = ::recv(c.sock.get(), buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      close(c);  // gone before asking
      return;
    }
    if (n < 0) return;  // EAGAIN: the rest of the head comes later
    c.in.append(buf, static_cast<std::size_t>(n));
    if (c.in.find("\r\n\r\n") != std::string::npos || c.in.find("\n\n") != std::string::npos) {
      answer(c);
      return;
    }
    if (c.in.size() > kMaxRequestHead) {
      counters_.bad_requests.add();
      c.out = response("431 Request Header Fields Too Large", "text/plain", "request head too large\n", false);
      flush(c);
      return;
    }
  }
}

MetricsRequest classify_request(std::string_view head) {
  using Kind = MetricsRequest::Kind;
  // Request line: METHOD SP TARGET SP HTTP/x.y
  const std::string_view line = head.substr(0, head.find_first_of("\r\n"));
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/1.")) return {Kind::malformed, false};
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));
  const bool head_only = method == "HEAD";
  if (method != "GET" && !head_only) return {Kind::bad_method, false};
  if (target == "/metrics") return {Kind::metrics, head_only};
  if (target == "/") return {Kind::index, head_only};
  return {Kind::not_found, head_only};
}

void MetricsEndpoint::answer(Client& c) {
  using Kind = MetricsRequest::Kind;
  const MetricsRequest r = classify_request(c.in);
  switch (r.kind) {
    case Kind::malformed:
      counters_.bad_requests.add();
      c.out = response("400 Bad Request", "text/plain", "malformed request\n", false);
      break;
    case Kind::bad_method:
      counters_.bad_requests.add();
      c.out = response("405 Method Not Allowed\r\nAllow: GET, HEAD", "text/plain", "only GET and HEAD\n", false);
      break;
    case Kind::metrics:
      counters_.scrapes.add();
      c.out = response("200 OK", "text/plain; version=0.0.4; charset=utf-8", render_(), r.head_only);
      break;
    case Kind::index:
      c.out = response("200 OK", "text/plain; charset=utf-8", "vnetkit: metrics at /metrics\n", r.head_only);
      break;
    case Kind::not_found:
      counters_.not_found.add();
      c.out = response("404 Not Found", "text/plain", "not found: try /metrics\n", r.head_only);
      break;
  }
  c.in.clear();
  flush(c);
}

void MetricsEndpoint::flush(Client& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n = ::send(c.sock.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      epoll_mod(epoll_.get(), c.sock.get(), EPOLLOUT, static_cast<std::uint64_t>(&c - clients_.data()));
      return;
    }
    if (n <= 0) {
      counters_.write_errors.add();
      break;
    }
    c.sent += static_cast<std::size_t>(n);
  }
  ::shutdown(c.sock.get(), SHUT_WR);
  close(c);
}

void MetricsEndpoint::close(Client& c) {
  if (c.sock.valid()) epoll_del(epoll_.get(), c.sock.get());
  c = Client{};
}

}  // namespace vnk::cli
