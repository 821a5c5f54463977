// The device status state machine (virtio 1.2 §2.1, §3.1.1) as a table.
//
// The driver walks ACKNOWLEDGE -> DRIVER -> FEATURES_OK -> DRIVER_OK, adding
// one bit per write; it may add FAILED at any time (it gave up); it may not
// clear a bit except by writing 0, which resets the device. NEEDS_RESET is the
// device's bit: the driver echoes it back (Linux's virtio_add_status does a
// read-modify-write) and it is ignored in writes.
//
// The FEATURES_OK check (offered ⊇ accepted, VERSION_1 accepted) needs the
// feature sets, so the transport applies it after the table says the step is
// legal.
#pragma once

#include <cstdint>
#include <string_view>

namespace vnk::virtio {

enum class StatusStep : std::uint8_t {
  reset,             // written 0
  unchanged,         // same value again
  acknowledge,       // + ACKNOWLEDGE
  driver,            // + DRIVER
  features_ok,       // + FEATURES_OK (transport still checks the features)
  driver_ok,         // + DRIVER_OK (transport activates the device)
  failed,            // + FAILED from any state
  rejected_clear,    // tried to clear a bit without a reset
  rejected_order,    // a step out of order, or several at once
};

[[nodiscard]] StatusStep classify_status_write(std::uint32_t current, std::uint32_t written) noexcept;
[[nodiscard]] std::string_view to_string(StatusStep s) noexcept;

}  // namespace vnk::virtio
