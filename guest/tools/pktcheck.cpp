// pktcheck: a guest-side probe for the virtio-net device, built static and
// put in the test initramfs. It speaks raw Ethernet on an AF_PACKET socket so
// the frames cross the real virtio_net driver and nothing else:
//
//   pktcheck echo IFACE COUNT SIZE...  send COUNT frames cycling through the
//       sizes (Ethernet frame lengths, 60..65535), expect each back
//       byte-for-byte (the loopback backend), report mismatches and losses.
//   pktcheck blast IFACE SECONDS SIZE  send as fast as the driver takes
//       frames for SECONDS, counting what comes back; report frames/s, Gb/s.
//
// Output is "key=value" lines prefixed with "pktcheck:" for the host harness.
// Exit status: 0 when every echoed frame matched, 1 otherwise, 2 on usage.
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr std::uint16_t kEtherType = 0x88b5;  // IEEE 802 local experimental
constexpr std::size_t kMinFrame = 60;
constexpr std::size_t kMaxFrame = 65535;

double now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Link {
  int fd = -1;
  int ifindex = 0;
  unsigned char mac[6]{};
};

bool open_link(const char* ifname, Link& link) {
  link.fd = socket(AF_PACKET, SOCK_RAW, htons(kEtherType));
  if (link.fd < 0) {
    std::perror("pktcheck: socket(AF_PACKET)");
    return false;
  }
  ifreq ifr{};
  std::snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  if (ioctl(link.fd, SIOCGIFINDEX, &ifr) != 0) {
    std::perror("pktcheck: SIOCGIFINDEX");
    return false;
  }
  link.ifindex = ifr.ifr_ifindex;
  if (ioctl(link.fd, SIOCGIFHWADDR, &ifr) != 0) {
    std::perror("pktcheck: SIOCGIFHWADDR");
    return false;
  }
  std::memcpy(link.mac, ifr.ifr_hwaddr.sa_data, 6);
  // Our own transmissions are not echoes.
  int one = 1;
  setsockopt(link.fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  // Room for a whole batch of the largest frames: the guest's rmem_max
  // (208 KiB) would drop echoes of 9 KiB frames before we read them. The
  // FORCE variants need CAP_NET_ADMIN, which init has; fall back otherwise.
  int big = 16 << 20;
  if (setsockopt(link.fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) != 0)
    setsockopt(link.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (setsockopt(link.fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) != 0)
    setsockopt(link.fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(kEtherType);
  sll.sll_ifindex = link.ifindex;
  if (bind(link.fd, reinterpret_cast<sockaddr*>(&sll), sizeof sll) != 0) {
    std::perror("pktcheck: bind");
    return false;
  }
  return true;
}

// dst = src = our MAC, ethertype, "VNKT", seq (big-endian), then a pattern
// that depends on seq so a frame delivered twice or swapped is caught.
void fill_frame(const Link& link, std::uint32_t seq, std::vector<unsigned char>& f) {
  std::memcpy(f.data(), link.mac, 6);
  std::memcpy(f.data() + 6, link.mac, 6);
  f[12] = kEtherType >> 8;
  f[13] = kEtherType & 0xff;
  std::memcpy(f.data() + 14, "VNKT", 4);
  const std::uint32_t be = htonl(seq);
  std::memcpy(f.data() + 18, &be, 4);
  std::uint32_t x = seq * 2654435761u + static_cast<std::uint32_t>(f.size());
  for (std::size_t i = 22; i < f.size(); ++i) {
    x = x * 1103515245u + 12345u;
    f[i] = static_cast<unsigned char>(x >> 16);
  }
}

bool send_frame(const Link& link, const std::vector<unsigned char>& f) {
  for (int tries = 0; tries < 100000; ++tries) {
    if (send(link.fd, f.data(), f.size(), 0) == static_cast<ssize_t>(f.size())) return true;
    if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
      std::perror("pktcheck: send");
      return false;
    }
    usleep(50);
  }
  return false;
}

int echo(const Link& link, long count, const std::vector<std::size_t>& sizes) {
  std::vector<unsigned char> out, in(kMaxFrame + 1);
  long matched = 0, mismatched = 0, lost = 0;
  unsigned long long bytes = 0;
  const double t0 = now();
  for (long i = 0; i < count; ++i) {
    const std::size_t size = sizes[static_cast<std::size_t>(i) % sizes.size()];
    out.assign(size, 0);
    fill_frame(link, static_cast<std::uint32_t>(i), out);
    if (!send_frame(link, out)) return 1;
    bool got = false;
    while (!got) {
      pollfd p{link.fd, POLLIN, 0};
      if (poll(&p, 1, 2000) <= 0) break;
      const ssize_t n = recv(link.fd, in.data(), in.size(), MSG_TRUNC);
      if (n < 22 || std::memcmp(in.data() + 14, "VNKT", 4) != 0) continue;
      std::uint32_t seq_be;
      std::memcpy(&seq_be, in.data() + 18, 4);
      if (ntohl(seq_be) != static_cast<std::uint32_t>(i)) continue;  // a late echo of an earlier frame
      got = true;
      if (static_cast<std::size_t>(n) == size && std::memcmp(in.data(), out.data(), size) == 0) {
        ++matched;
        bytes += size;
      } else {
        ++mismatched;
        std::printf("pktcheck: mismatch seq=%ld sent=%zu got=%zd\n", i, size, n);
      }
    }
    if (!got) ++lost;
  }
  const double dt = now() - t0;
  std::printf("pktcheck: mode=echo sent=%ld matched=%ld mismatched=%ld lost=%ld bytes=%llu seconds=%.3f\n", count,
              matched, mismatched, lost, bytes, dt);
  return (matched == count) ? 0 : 1;
}

// Frames go out 64 per sendmmsg() and come back 64 per recvmmsg(): in
// User-Mode Linux every guest syscall is a ptrace round trip, so batching is
// what lets the blaster measure the device rather than the syscall cost.
int blast(const Link& link, double seconds, std::size_t size) {
  constexpr unsigned kBatch = 64;
  std::vector<unsigned char> out(size);
  fill_frame(link, 0, out);
  std::vector<unsigned char> in(kBatch * (kMaxFrame + 1));
  std::vector<iovec> tx_iov(kBatch), rx_iov(kBatch);
  std::vector<mmsghdr> tx(kBatch), rx(kBatch);
  for (unsigned i = 0; i < kBatch; ++i) {
    tx_iov[i] = {out.data(), size};
    tx[i].msg_hdr.msg_iov = &tx_iov[i];
    tx[i].msg_hdr.msg_iovlen = 1;
    rx_iov[i] = {in.data() + i * (kMaxFrame + 1), kMaxFrame + 1};
    rx[i].msg_hdr.msg_iov = &rx_iov[i];
    rx[i].msg_hdr.msg_iovlen = 1;
  }
  unsigned long long sent = 0, received = 0, busy = 0;
  auto drain = [&] {
    for (;;) {
      const int n = recvmmsg(link.fd, rx.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) break;
      received += static_cast<unsigned>(n);
    }
  };
  const double t0 = now();
  double t = t0;
  while (t - t0 < seconds) {
    const int n = sendmmsg(link.fd, tx.data(), kBatch, 0);
    if (n > 0) {
      sent += static_cast<unsigned>(n);
    } else if (errno == ENOBUFS || errno == EAGAIN) {
      ++busy;
    } else {
      std::perror("pktcheck: sendmmsg");
      return 1;
    }
    drain();
    t = now();
  }
  const double dt = t - t0;
  usleep(200000);  // let the last echoes land
  drain();
  std::printf(
      "pktcheck: mode=blast size=%zu seconds=%.3f sent=%llu received=%llu send_busy=%llu tx_fps=%.0f rx_fps=%.0f "
      "tx_gbps=%.3f\n",
      size, dt, sent, received, busy, static_cast<double>(sent) / dt, static_cast<double>(received) / dt,
      static_cast<double>(sent) * static_cast<double>(size) * 8 / dt / 1e9);
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: pktcheck echo IFACE COUNT SIZE...\n"
               "       pktcheck blast IFACE SECONDS SIZE\n"
               "SIZE is an Ethernet frame length, %zu..%zu\n",
               kMinFrame, kMaxFrame);
  return 2;
}

bool parse_size(const char* s, std::size_t& out) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(s, &end, 10);
  if (*end != '\0' || v < kMinFrame || v > kMaxFrame) return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) return usage();
  const std::string mode = argv[1];
  Link link;
  if (mode == "echo") {
    const long count = std::strtol(argv[3], nullptr, 10);
    std::vector<std::size_t> sizes;
    for (int i = 4; i < argc; ++i) {
      std::size_t s = 0;
      if (!parse_size(argv[i], s)) return usage();
      sizes.push_back(s);
    }
    if (count <= 0) return usage();
    if (!open_link(argv[2], link)) return 1;
    return echo(link, count, sizes);
  }
  if (mode == "blast" && argc == 5) {
    const double seconds = std::strtod(argv[3], nullptr);
    std::size_t size = 0;
    if (seconds <= 0 || !parse_size(argv[4], size)) return usage();
    if (!open_link(argv[2], link)) return 1;
    return blast(link, seconds, size);
  }
  return usage();
}
