#include "netns/tap_device.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "net/net_header.hpp"

namespace vnk::netns {

namespace {

std::string why(const char* what, const std::string& name) {
  return fmt::format("{} {}: {}", what, name, std::strerror(errno));
}

ifreq request_for(const std::string& name) {
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), sizeof ifr.ifr_name - 1));
  return ifr;
}

sockaddr ipv4_sockaddr(std::uint32_t host_order) {
  sockaddr_in in{};
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(host_order);
  sockaddr out{};
  std::memcpy(&out, &in, sizeof in);
  return out;
}

std::expected<void, std::string> set_flags_up(int sock, const std::string& name) {
  ifreq ifr = request_for(name);
  if (::ioctl(sock, SIOCGIFFLAGS, &ifr) != 0) return std::unexpected(why("cannot read the flags of", name));
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(sock, SIOCSIFFLAGS, &ifr) != 0) return std::unexpected(why("cannot bring up", name));
  return {};
}

void disable_ipv6(const std::string& name) {
  const std::string path = "/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)!::write(fd, "1", 1);
  ::close(fd);
}

}  // namespace

std::expected<UniqueFd, std::string> create_tap(const std::string& name) {
  if (name.empty() || name.size() >= IFNAMSIZ)
    return std::unexpected(fmt::format("interface name '{}' must be 1..{} characters", name, IFNAMSIZ - 1));
  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
      return std::unexpected(fmt::format(
          "cannot open /dev/net/tun: {}. Load the tun module (modprobe tun) or, in a container, pass the device in "
          "(docker run --device /dev/net/tun)",
          std::strerror(errno)));
    return std::unexpected(fmt::format("cannot open /dev/net/tun: {}", std::strerror(errno)));
  }
  ifreq ifr = request_for(name);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
    if (errno == EPERM)
      return std::unexpected(fmt::format("cannot create TAP device {}: {} (CAP_NET_ADMIN in the namespace is needed)",
                                         name, std::strerror(errno)));
    return std::unexpected(why("cannot create TAP device", name));
  }
  int hdr = static_cast<int>(net::kNetHeaderSize);
  if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &hdr) != 0) return std::unexpected(why("TUNSETVNETHDRSZ failed on", name));
  return fd;
}

std::expected<void, std::string> configure_interface(const InterfaceSettings& s) {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return std::unexpected(fmt::format("socket: {}", std::strerror(errno)));
  const int fd = sock.get();

  ifreq ifr = request_for(s.name);
  ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
  std::memcpy(ifr.ifr_hwaddr.sa_data, s.mac.octets.data(), s.mac.octets.size());
  if (::ioctl(fd, SIOCSIFHWADDR, &ifr) != 0) return std::unexpected(why("cannot set the MAC address of", s.name));

  ifr = request_for(s.name);
  ifr.ifr_mtu = s.mtu;
  if (::ioctl(fd, SIOCSIFMTU, &ifr) != 0)
    return std::unexpected(fmt::format("cannot set MTU {} on {}: {}", s.mtu, s.name, std::strerror(errno)));

  if (!s.ipv6) disable_ipv6(s.name);

  ifr = request_for(s.name);
  ifr.ifr_addr = ipv4_sockaddr(s.address);
  if (::ioctl(fd, SIOCSIFADDR, &ifr) != 0) return std::unexpected(why("cannot set the address of", s.name));
  ifr = request_for(s.name);
  ifr.ifr_netmask = ipv4_sockaddr(s.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - s.prefix));
  if (::ioctl(fd, SIOCSIFNETMASK, &ifr) != 0) return std::unexpected(why("cannot set the netmask of", s.name));

  if (auto r = set_flags_up(fd, s.name); !r) return r;

  if (s.gateway) {
    rtentry rt{};
    rt.rt_dst = ipv4_sockaddr(0);
    rt.rt_genmask = ipv4_sockaddr(0);
    rt.rt_gateway = ipv4_sockaddr(*s.gateway);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    std::string dev = s.name;
    rt.rt_dev = dev.data();
    if (::ioctl(fd, SIOCADDRT, &rt) != 0) return std::unexpected(why("cannot add the default route via", s.name));
  }
  return {};
}

std::expected<void, std::string> bring_up_loopback() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return std::unexpected(fmt::format("socket: {}", std::strerror(errno)));
  return set_flags_up(sock.get(), "lo");
}

}  // namespace vnk::netns
