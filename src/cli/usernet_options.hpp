// The user-mode network's command-line options, shared by `serve --net user`
// and `netns`, and their translation into a UsernetConfig.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <expected>
#include <string>
#include <vector>

#include <memory>

#include "usernet/usernet.hpp"
#include "usernet/usernet_config.hpp"

namespace vnk::cli {

struct UsernetArgs {
  std::string network = "10.0.2.0/24";
  std::string gateway = "10.0.2.2";
  std::string dns = "10.0.2.3";
  std::string guest = "10.0.2.15";
  std::uint16_t user_mtu = 65520;
  std::string hostname;
  std::string domain;
  std::vector<std::string> dns_upstreams;
  std::string resolv_conf = "/etc/resolv.conf";
  bool no_map_gw = false;
  std::vector<std::string> forwards;
  std::string pcap;
  bool host_only = false;
  bool allow_link_local = false;
  bool ipv6 = true;
  std::string ipv6_prefix = "fd00::/64";
  bool dhcpv6_address = false;
  unsigned guests = 1;  // serve --guests: the DHCP pool's size
};

// Adds the options to `group`; `peer` names the other end in the help text
// ("guest", "namespace"); `mtu_option` is "--user-mtu" or "--mtu".
void add_usernet_options(CLI::App& group, UsernetArgs& args, const std::string& peer, const std::string& mtu_option);

// Parses and validates; the error is a sentence for the user.
std::expected<usernet::UsernetConfig, std::string> to_usernet_config(const UsernetArgs& a);

// Starts the user-mode network and says in one line what the host kernel
// lacks and what is used instead; the error is a sentence for the user.
std::expected<std::unique_ptr<usernet::UserNet>, std::string> start_usernet(const usernet::UsernetConfig& cfg);

}  // namespace vnk::cli
