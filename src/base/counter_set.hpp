// Declaring a named set of Counters once, so the field list and the name
// table used for export can never drift apart:
//
//   #define MY_COUNTERS(X) X(frames) X(drops)
//   struct MyCounters { MY_COUNTERS(VNK_COUNTER_FIELD) VNK_COUNTER_FOR_EACH(MY_COUNTERS) };
//
// for_each(f) calls f(std::string_view name, std::uint64_t value) per counter.
// kCounterList names the list ("MY_COUNTERS"): the metrics exporter finds
// each counter's help text under it, taken at build time from the comment
// after X(name) (scripts/counter_help.py).
#pragma once

#include <cstdint>
#include <string_view>

#include "base/counter.hpp"

#define VNK_COUNTER_FIELD(name) ::vnk::Counter name;
#define VNK_COUNTER_VISIT_(name) f(std::string_view{#name}, name.get());
#define VNK_COUNTER_FOR_EACH(LIST)                         \
  static constexpr std::string_view kCounterList = #LIST; \
  template <typename F>                                    \
  void for_each(F&& f) const {                             \
    LIST(VNK_COUNTER_VISIT_)                               \
  }
