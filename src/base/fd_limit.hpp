// Open files: the process's limit and how much of it flows may take.
//
// Desktops start programs with a soft RLIMIT_NOFILE of 1024 and a far
// higher hard limit; every guest connection or ping flow holds one host
// socket. vnetkit raises the soft limit to the hard one at start-up, and
// keeps a reserve the guest's flows can never use -- the metrics file, the
// next vhost-user frontend and its eventfds, connections accepted on
// forwarded ports, pcap -- so a guest that opens thousands of connections
// is refused new ones instead of starving the process of its own.
#pragma once

#include <cstddef>
#include <utility>

namespace vnk {

// Raises the soft RLIMIT_NOFILE to the hard limit (said at debug level);
// returns the soft limit now in force.
std::size_t raise_fd_limit() noexcept;

// How many sockets flows may hold at once: the soft limit less the fds open
// now less kFdReserve (at least kMinFlowFds).
class FdBudget {
 public:
  static constexpr std::size_t kFdReserve = 64;
  static constexpr std::size_t kMinFlowFds = 16;

  FdBudget();  // from the limit in force and /proc/self/fd
  explicit FdBudget(std::size_t limit) noexcept : limit_(limit) {}

  // One fd taken from the budget for a flow being opened: given back when
  // the lease ends, unless keep() hands it to the flow (whose close gives it
  // back). Empty (false) when the budget is used up.
  class Lease {
   public:
    Lease(Lease&& o) noexcept : budget_(std::exchange(o.budget_, nullptr)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (budget_ != nullptr) budget_->give();
    }
    explicit operator bool() const noexcept { return budget_ != nullptr; }
    void keep() noexcept { budget_ = nullptr; }

   private:
    friend class FdBudget;
    explicit Lease(FdBudget* budget) noexcept : budget_(budget) {}
    FdBudget* budget_;
  };
  [[nodiscard]] Lease lease() noexcept {
    if (used_ >= limit_) return Lease(nullptr);
    ++used_;
    return Lease(this);
  }
  // A kept lease's fd comes back (its flow closed).
  void give() noexcept {
    if (used_ > 0) --used_;
  }
  [[nodiscard]] std::size_t used() const noexcept { return used_; }
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }

 private:
  std::size_t limit_;
  std::size_t used_ = 0;
};

}  // namespace vnk
