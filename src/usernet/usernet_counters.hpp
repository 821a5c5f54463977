// What usernet counts: frames by protocol and every reason a frame is dropped.
#pragma once

#include "base/counter_set.hpp"

namespace vnk::usernet {

#define VNK_USERNET_COUNTERS(X)                                                          \
  X(frames_from_guest)       /* frames the guest transmitted to usernet */                \
  X(frames_to_guest)         /* frames usernet delivered to the guest */                  \
  X(arp_requests)            /* ARP requests for the gateway or DNS address */            \
  X(arp_replies_sent)        /* ARP replies queued for the guest */                       \
  X(arp_ignored)             /* ARP for other addresses, or replies */                    \
  X(dhcp_discovers)          /* DHCPDISCOVER */                                           \
  X(dhcp_requests)           /* DHCPREQUEST */                                            \
  X(dhcp_releases)           /* DHCPRELEASE and DHCPDECLINE */                            \
  X(dhcp_informs)            /* DHCPINFORM */                                             \
  X(dhcp_offers)             /* DHCPOFFER sent */                                         \
  X(dhcp_acks)               /* DHCPACK sent */                                           \
  X(dhcp_naks)               /* DHCPNAK sent */                                           \
  X(dhcp_ignored)            /* for another server, or of a type a server ignores */      \
  X(drop_malformed)          /* a header failed validation (length, checksum, ...) */     \
  X(drop_ethertype)          /* neither IPv4 nor ARP (IPv6, VLAN, ...) */                 \
  X(drop_not_for_us)         /* unicast to a MAC that is not the gateway's */             \
  X(drop_unsupported)        /* a protocol or port usernet does not serve yet */          \
  X(drop_queue_full)         /* no room to queue a reply for the guest */                 \
  X(drop_oversize)           /* a frame larger than usernet's working buffer */

struct UsernetCounters {
  VNK_USERNET_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_USERNET_COUNTERS)
};

}  // namespace vnk::usernet
