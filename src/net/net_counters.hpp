// The virtio-net device's counters, 1:1 with events.
//
// Every chain the device pops ends in exactly one outcome counter:
//   TX: tx_packets (handed to the backend), tx_intercepted, or one tx_drop_*;
//   RX: rx_packets (frame delivered, possibly truncated), or one rx_drop_*.
// add_used failures, interrupts and poison events are counted beside that.
// Counters survive device resets; read them from any thread.
#pragma once

#include "base/counter_set.hpp"

namespace vnk::net {

#define VNK_NET_COUNTERS(X)                                                                        \
  X(tx_packets)              /* frames handed to the backend */                                   \
  X(tx_bytes)                /* their bytes, header excluded */                                    \
  X(tx_intercepted)          /* frames consumed by the FrameInterceptor */                         \
  X(tx_drop_short_header)    /* chain shorter than the 12-byte header */                          \
  X(tx_drop_runt)            /* frame shorter than an Ethernet header */                           \
  X(tx_drop_oversize)        /* frame over 65557 bytes: dropped, never truncated */               \
  X(tx_drop_wrong_direction) /* a device-writable descriptor in a TX chain */                     \
  X(tx_drop_unmapped)        /* a descriptor outside guest memory */                              \
  X(tx_drop_malformed_chain) /* loop, bad next index, bad/nested indirect, length overflow */     \
  X(tx_drop_bad_header)      /* header asks for an offload that was not negotiated */              \
  X(tx_drop_bad_csum_offload) /* NEEDS_CSUM with csum_start/csum_offset outside the frame */       \
  X(tx_drop_bad_gso)         /* GSO fields inconsistent with the frame or the features */          \
  X(tx_drop_backend)         /* the backend could not take the frame */                           \
  X(tx_add_used_failures)    /* used ring unwritable when completing a TX chain */                \
  X(tx_poisoned)             /* TX queue poisoned (structural ring error) */                      \
  X(tx_interrupts)           /* used-ring interrupts raised for TX */                             \
  X(rx_packets)              /* frames written into guest buffers */                              \
  X(rx_bytes)                /* their bytes as delivered, header excluded */                      \
  X(rx_truncated)            /* of rx_packets: buffer smaller than the frame */                   \
  X(rx_merged_buffers)       /* buffers beyond a frame's first (MRG_RXBUF) */                     \
  X(rx_drop_short_buffer)    /* buffer smaller than the 12-byte header */                         \
  X(rx_drop_wrong_direction) /* a device-readable descriptor in an RX chain */                    \
  X(rx_drop_unmapped)        /* a descriptor outside guest memory */                              \
  X(rx_drop_malformed_chain) /* loop, bad next index, bad/nested indirect, length overflow */     \
  X(rx_drop_backend_error)   /* the backend failed while filling a buffer */                      \
  X(rx_no_buffer)            /* a frame was waiting but the guest had posted no buffer */         \
  X(rx_add_used_failures)    /* used ring unwritable when completing an RX chain */               \
  X(rx_poisoned)             /* RX queue poisoned (structural ring error) */                      \
  X(rx_interrupts)           /* used-ring interrupts raised for RX */                             \
  X(notify_bad_queue)        /* notify for a queue index the device does not have */              \
  X(config_writes_ignored)   /* driver writes to the read-only config space */                    \
  X(rings_overlap)           /* activations refused: two rings shared guest memory */

struct NetCounters {
  VNK_NET_COUNTERS(VNK_COUNTER_FIELD)
  VNK_COUNTER_FOR_EACH(VNK_NET_COUNTERS)
};

}  // namespace vnk::net
