#pragma once
// One byte budget (input.memory_budget_bytes) over everything the daemon holds for messages: the
// input queue, stacks being decoded and computed, results in the outbox, and results inside
// ZeroMQ's send queue until ZeroMQ frees them. Only the receiver waits on it or is refused by it
// (that is where input.overflow decides); charges made after a message was accepted (a decoded
// stack, a result) are always granted, so the budget can be exceeded by what is already in flight.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <utility>

namespace xasmap::service {

class MemoryBudget {
 public:
  explicit MemoryBudget(std::size_t limit_bytes) : limit_(limit_bytes) {}

  // Takes `bytes` if they fit under the limit; false (and nothing taken) otherwise.
  bool try_acquire(std::size_t bytes) {
    std::lock_guard lock(mutex_);
    if (used_ + bytes > limit_) return false;
    used_ += bytes;
    return true;
  }

  // Takes `bytes` once they fit, waiting while `keep_waiting()` holds (checked every 50 ms); when
  // it turns false, takes them anyway and returns false.
  template <class Pred>
  bool acquire_waiting(std::size_t bytes, Pred keep_waiting) {
    std::unique_lock lock(mutex_);
    while (used_ + bytes > limit_) {
      if (!keep_waiting()) {
        used_ += bytes;
        return false;
      }
      released_.wait_for(lock, std::chrono::milliseconds(50));
    }
    used_ += bytes;
    return true;
  }

  // Takes `bytes` whatever the limit: for memory of a message already accepted.
  void force_acquire(std::size_t bytes) {
    std::lock_guard lock(mutex_);
    used_ += bytes;
  }

  // Gives `bytes` back; called by any thread, ZeroMQ's I/O thread included.
  void release(std::size_t bytes) {
    {
      std::lock_guard lock(mutex_);
      used_ = bytes > used_ ? 0 : used_ - bytes;
    }
    released_.notify_all();
  }

  std::size_t used() const {
    std::lock_guard lock(mutex_);
    return used_;
  }
  std::size_t limit() const { return limit_; }

 private:
  const std::size_t limit_;
  mutable std::mutex mutex_;
  std::condition_variable released_;
  std::size_t used_ = 0;
};

// Bytes held against a MemoryBudget, given back when the charge is destroyed or reset.
class BudgetCharge {
 public:
  BudgetCharge() = default;
  // Adopts `bytes` already taken from `budget`.
  BudgetCharge(MemoryBudget* budget, std::size_t bytes) : budget_(budget), bytes_(bytes) {}
  BudgetCharge(BudgetCharge&& o) noexcept
      : budget_(std::exchange(o.budget_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  BudgetCharge& operator=(BudgetCharge&& o) noexcept {
    if (this != &o) {
      reset();
      budget_ = std::exchange(o.budget_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  BudgetCharge(const BudgetCharge&) = delete;
  BudgetCharge& operator=(const BudgetCharge&) = delete;
  ~BudgetCharge() { reset(); }

  void reset() {
    if (budget_ && bytes_ > 0) budget_->release(bytes_);
    budget_ = nullptr;
    bytes_ = 0;
  }
  std::size_t bytes() const { return bytes_; }

 private:
  MemoryBudget* budget_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace xasmap::service
