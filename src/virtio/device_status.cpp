#include "virtio/device_status.hpp"

#include <array>

#include "virtio/features.hpp"

namespace vnk::virtio {
namespace {

using namespace status;

struct Transition {
  std::uint32_t from;  // exact current status (driver-owned bits)
  std::uint32_t add;   // the one bit this step adds
  StatusStep step;
};

// Each phase requires exactly the previous phases.
constexpr std::array<Transition, 4> kTransitions{{
    {0, kAcknowledge, StatusStep::acknowledge},
    {kAcknowledge, kDriver, StatusStep::driver},
    {kAcknowledge | kDriver, kFeaturesOk, StatusStep::features_ok},
    {kAcknowledge | kDriver | kFeaturesOk, kDriverOk, StatusStep::driver_ok},
}};

}  // namespace

StatusStep classify_status_write(std::uint32_t current, std::uint32_t written) noexcept {
  if (written == 0) return StatusStep::reset;
  current &= ~kNeedsReset;
  written &= ~kNeedsReset;
  if ((written & current) != current) return StatusStep::rejected_clear;
  const std::uint32_t added = written & ~current;
  if (added == 0) return StatusStep::unchanged;
  if (added == kFailed) return StatusStep::failed;
  if (current & kFailed) return StatusStep::rejected_order;
  for (const Transition& t : kTransitions)
    if (t.from == current && t.add == added) return t.step;
  return StatusStep::rejected_order;
}

std::string_view to_string(StatusStep s) noexcept {
  switch (s) {
    case StatusStep::reset: return "reset";
    case StatusStep::unchanged: return "unchanged";
    case StatusStep::acknowledge: return "acknowledge";
    case StatusStep::driver: return "driver";
    case StatusStep::features_ok: return "features_ok";
    case StatusStep::driver_ok: return "driver_ok";
    case StatusStep::failed: return "failed";
    case StatusStep::rejected_clear: return "rejected_clear";
    case StatusStep::rejected_order: return "rejected_order";
  }
  return "unknown";
}

}  // namespace vnk::virtio
