// What usernet counts: frames by protocol and every reason a frame is dropped.
#pragma once

#include "base/counter_set.hpp"

namespace vnk::usernet {

#define VNK_USERNET_COUNTERS(X) \
  X(frames_from_guest)         /* frames the guest transmitted to usernet */ \
  X(frames_to_guest)           /* frames usernet delivered to the guest */ \
  X(arp_requests)              /* ARP requests for the gateway or DNS address */ \
  X(arp_replies_sent)          /* ARP replies queued for the guest */ \
  X(arp_ignored)               /* ARP for other addresses, or replies */ \
  X(ndp_router_solicitations)  /* Router Solicitations answered */ \
  X(ndp_neighbor_solicitations) /* Neighbor Solicitations for the gateway or DNS address answered */ \
  X(ndp_advertisements_sent)   /* Router and Neighbor Advertisements queued for the guest */ \
  X(ndp_ignored)               /* NDP for other addresses (the guest's own DAD), or not for a router */ \
  X(ndp_malformed)             /* NDP messages failing RFC 4861 validation (hop limit, options, DAD rules) */ \
  X(ip_fragments)              /* IPv4 and IPv6 fragments from the guest */ \
  X(ip_reassembled)            /* datagrams put together from them */ \
  X(ip_fragments_dropped)      /* datagrams given up: overlap, bad shape, too many, too large, evicted */ \
  X(ip_reassembly_timeouts)    /* datagrams whose fragments did not all arrive in 30 s */ \
  X(ip_fragments_to_guest)     /* IPv4 or IPv6 fragments sent for host datagrams larger than the guest's MTU */ \
  X(ipv6_disabled)             /* IPv6 frames while IPv6 is off */ \
  X(ipv6_packets)              /* IPv6 packets from the guest that passed the header checks */ \
  X(ipv6_flows_opened)         /* TCP, UDP and ICMPv6 echo flows the guest opened over IPv6 */ \
  X(ipv6_mld_ignored)          /* Multicast Listener Discovery reports and queries (nothing to route) */ \
  X(ipv6_malformed)            /* IPv6 headers, extension chains or ICMPv6 checksums that do not hold */ \
  X(ipv6_unsupported)          /* jumbograms, routing headers with segments left, discard-type options, other protocols */ \
  X(dhcp_discovers)            /* DHCPDISCOVER */ \
  X(dhcp_requests)             /* DHCPREQUEST */ \
  X(dhcp_releases)             /* DHCPRELEASE and DHCPDECLINE */ \
  X(dhcp_informs)              /* DHCPINFORM */ \
  X(dhcp_offers)               /* DHCPOFFER sent */ \
  X(dhcp_acks)                 /* DHCPACK sent */ \
  X(dhcp_naks)                 /* DHCPNAK sent */ \
  X(dhcp_ignored)              /* for another server, or of a type a server ignores */ \
  X(dhcp_pool_exhausted)       /* DISCOVERs and REQUESTs from a new MAC while every guest address is held (--guests) */ \
  X(dhcpv6_solicits)           /* DHCPv6 Solicit */ \
  X(dhcpv6_requests)           /* DHCPv6 Request, Renew, Rebind, Confirm, Release, Decline */ \
  X(dhcpv6_information_requests) /* DHCPv6 Information-Request (stateless) */ \
  X(dhcpv6_replies)            /* DHCPv6 Advertise and Reply sent */ \
  X(dhcpv6_addresses)          /* replies that gave the guest its address (stateful) */ \
  X(dhcpv6_ignored)            /* for another server, without a client, or of a type a server ignores */ \
  X(icmp_echo_requests)        /* echo requests sent through a ping socket */ \
  X(icmp_echo_replies)         /* echo replies delivered to the guest */ \
  X(icmp_flows_opened)         /* ping sockets opened */ \
  X(icmp_socket_errors)        /* a ping socket could not be opened */ \
  X(icmp_send_errors)          /* a ping socket refused a request */ \
  X(icmp_recv_errors)          /* errors read from ping sockets */ \
  X(icmp_unreachable_sent)     /* Destination Unreachable sent to the guest for a refused datagram flow */ \
  X(icmp_raw_ignored)          /* messages on the raw ICMP socket that matched no flow (others' pings, ...) */ \
  X(udp_datagrams_out)         /* UDP datagrams sent to host sockets (DNS included) */ \
  X(udp_datagrams_in)          /* UDP datagrams delivered to the guest */ \
  X(udp_flows_opened)          /* UDP host sockets opened */ \
  X(udp_socket_errors)         /* a UDP socket could not be opened */ \
  X(udp_send_errors)           /* a UDP socket refused a datagram */ \
  X(udp_recv_errors)           /* errors (ICMP unreachable, ...) read from UDP sockets */ \
  X(flows_expired)             /* UDP/ICMP flows closed after their idle timeout */ \
  X(flows_evicted)             /* UDP/ICMP flows closed to make room in a full table */ \
  X(tcp_segments_from_guest)   /* TCP segments from the guest */ \
  X(tcp_flows_opened)          /* guest SYNs that started a host connect() */ \
  X(tcp_flows_closed)          /* TCP flows ended (any way) */ \
  X(tcp_connect_refused)       /* host connects refused (RST to the guest) */ \
  X(tcp_connect_failed)        /* host connects that failed at once (RST to the guest) */ \
  X(tcp_connect_timeouts)      /* host connects that never completed (guest left to time out) */ \
  X(tcp_bytes_to_host)         /* guest payload written to host sockets */ \
  X(tcp_bytes_to_guest)        /* host payload sent to the guest (retransmissions included) */ \
  X(tcp_bytes_repeeked)        /* in-flight bytes peeked again and discarded (kernels without TCP SO_PEEK_OFF) */ \
  X(tcp_retransmits)           /* segments sent to the guest again (holes in recovery, and after a timeout) */ \
  X(tcp_fast_recoveries)       /* losses seen from duplicate ACKs or SACK blocks: only the holes are sent again */ \
  X(tcp_rto_expired)           /* retransmission timeouts: back to the first unacknowledged byte */ \
  X(tcp_sack_blocks_ignored)   /* guest SACK blocks outside the data in flight (ignored) */ \
  X(tcp_dsack_blocks)          /* guest D-SACK blocks: data that reached it twice (RFC 2883) */ \
  X(tcp_window_probes)         /* zero-window probes sent to the guest */ \
  X(tcp_fin_wait_timeouts)     /* flows closed after the guest stayed silent in FIN-WAIT-2 */ \
  X(tcp_socket_full)           /* guest data a full host socket could not take yet */ \
  X(tcp_out_of_order)          /* guest segments beyond the next expected byte (kept for reassembly if they fit) */ \
  X(tcp_ooo_bytes_held)        /* out-of-order guest bytes kept until the hole before them was filled */ \
  X(tcp_ooo_bytes_delivered)   /* kept bytes written to the host socket once in order */ \
  X(tcp_ooo_bytes_dropped)     /* out-of-order guest bytes not kept: beyond the window, or over the bounds */ \
  X(tcp_no_flow)               /* segments for no known connection (RST to the guest) */ \
  X(tcp_resets_to_guest)       /* RSTs sent to the guest */ \
  X(tcp_resets_from_guest)     /* RSTs from the guest (passed on to the host peer) */ \
  X(tcp_host_resets)           /* host sockets that failed (reset by the peer, ...) */ \
  X(tcp_timeouts)              /* flows abandoned: the guest stopped answering (both ends reset) */ \
  X(tcp_forwards_accepted)           /* host connections accepted on a forwarded port */ \
  X(tcp_forward_refused)             /* forwarded connections closed: no guest yet, or no room */ \
  X(flows_refused_fd_limit)    /* new flows refused: their share of open files (RLIMIT_NOFILE) is used up */ \
  X(tcp_table_full)            /* SYNs refused because the flow table is full */ \
  X(drop_malformed)            /* a header failed validation (length, checksum, ...) */ \
  X(drop_ethertype)            /* neither IPv4 nor ARP (IPv6, VLAN, ...) */ \
  X(drop_not_for_us)           /* unicast to a MAC that is not the gateway's */ \
  X(drop_unsupported)          /* a protocol or ICMP type usernet does not relay */ \
  X(drop_no_route)             /* no host destination (guest network, multicast, no resolver) */ \
  X(drop_link_local)           /* to link-local 169.254/16 (cloud metadata), refused: --allow-link-local */ \
  X(drop_icmp_not_permitted)   /* ICMP echo while ping sockets are not permitted */ \
  X(drop_queue_full)           /* no room to queue a reply for the guest */ \
  X(drop_too_big_for_guest)    /* a datagram larger than the guest's RX buffer */ \
  X(drop_oversize)             /* a frame larger than an IPv4 packet can be */

struct UsernetCounters {
  VNK_USERNET_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_USERNET_COUNTERS)
};

}  // namespace vnk::usernet
