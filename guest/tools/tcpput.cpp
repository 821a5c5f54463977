// tcpput: uploads a file over TCP from the test guest with large writes (the
// busybox tools write 1 KiB at a time or stop at NUL bytes), then copies the
// peer's answer to stdout.
//
//   tcpput HOST PORT FILE [--http PATH]
//
// With --http the bytes go as the body of "POST PATH HTTP/1.0" with a
// Content-Length. The sending side is shut after the file (half-close), and
// the answer is read until the peer closes. Exit status 0 on success.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && !(argc == 6 && std::strcmp(argv[4], "--http") == 0)) {
    std::fprintf(stderr, "usage: tcpput HOST PORT FILE [--http PATH]\n");
    return 2;
  }
  const int file = ::open(argv[3], O_RDONLY);
  struct stat st {};
  if (file < 0 || ::fstat(file, &st) != 0) {
    std::perror(argv[3]);
    return 1;
  }
  // HOST is an IPv4 or IPv6 address (no names: the guest may have no DNS).
  sockaddr_in sa4{};
  sockaddr_in6 sa6{};
  const auto port = htons(static_cast<uint16_t>(std::atoi(argv[2])));
  sockaddr* sa = nullptr;
  socklen_t sa_len = 0;
  if (::inet_pton(AF_INET, argv[1], &sa4.sin_addr) == 1) {
    sa4.sin_family = AF_INET;
    sa4.sin_port = port;
    sa = reinterpret_cast<sockaddr*>(&sa4);
    sa_len = sizeof sa4;
  } else if (::inet_pton(AF_INET6, argv[1], &sa6.sin6_addr) == 1) {
    sa6.sin6_family = AF_INET6;
    sa6.sin6_port = port;
    sa = reinterpret_cast<sockaddr*>(&sa6);
    sa_len = sizeof sa6;
  } else {
    std::fprintf(stderr, "tcpput: %s is not an IP address\n", argv[1]);
    return 2;
  }
  const int s = ::socket(sa->sa_family, SOCK_STREAM, 0);
  if (::connect(s, sa, sa_len) != 0) {
    std::perror("tcpput: connect");
    return 1;
  }
  if (argc == 6) {
    const std::string head = std::string("POST ") + argv[5] + " HTTP/1.0\r\nContent-Length: " +
                             std::to_string(st.st_size) + "\r\n\r\n";
    if (!write_all(s, head.data(), head.size())) return 1;
  }
  std::vector<char> buf(256 * 1024);
  for (;;) {
    const ssize_t n = ::read(file, buf.data(), buf.size());
    if (n < 0) return 1;
    if (n == 0) break;
    if (!write_all(s, buf.data(), static_cast<size_t>(n))) {
      std::perror("tcpput: write");
      return 1;
    }
  }
  ::shutdown(s, SHUT_WR);
  for (;;) {
    const ssize_t n = ::read(s, buf.data(), buf.size());
    if (n < 0) return 1;
    if (n == 0) break;
    if (!write_all(1, buf.data(), static_cast<size_t>(n))) return 1;
  }
  return 0;
}
