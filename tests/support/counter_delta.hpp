// Asserting exactly which counters an action moved, and by how much; every
// counter not named must stay where it was.
//
//   CounterDelta d(rig.counters());
//   rig.send(frame);
//   EXPECT_TRUE(d.moved(rig.counters(), {{"tx_packets", 1}, {"tx_bytes", 60}}));
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <sstream>
#include <string>

namespace vnk::test {

using CounterMap = std::map<std::string, std::uint64_t>;

template <typename Counters>
CounterMap snapshot(const Counters& c) {
  CounterMap m;
  c.for_each([&](std::string_view name, std::uint64_t v) { m[std::string(name)] = v; });
  return m;
}

class CounterDelta {
 public:
  template <typename Counters>
  explicit CounterDelta(const Counters& c) : before_(snapshot(c)) {}

  template <typename Counters>
  ::testing::AssertionResult moved(const Counters& c, const CounterMap& expected) const {
    const CounterMap after = snapshot(c);
    std::ostringstream bad;
    for (const auto& [name, v] : after) {
      const std::uint64_t delta = v - before_.at(name);
      auto it = expected.find(name);
      const std::uint64_t want = it == expected.end() ? 0 : it->second;
      if (delta != want) bad << "  " << name << ": moved by " << delta << ", expected " << want << "\n";
    }
    for (const auto& [name, v] : expected)
      if (!after.contains(name)) bad << "  no counter named " << name << "\n";
    if (bad.str().empty()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "\n" << bad.str();
  }

 private:
  CounterMap before_;
};

}  // namespace vnk::test
