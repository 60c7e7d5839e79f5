#pragma once
// A bounded multi-producer, multi-consumer queue with the daemon's overflow policies. The items
// live in a ring that grows (doubling, up to the capacity) and never shrinks, so a queue in steady
// use does not allocate.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace xasmap::service {

enum class OverflowPolicy { kDropOldest, kDropNewest, kBlock };

template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity ? capacity : 1) {}

  // What push() did: the item was queued (and perhaps displaced `dropped`, the oldest), or it
  // was refused (the queue is full under drop_newest, or closed) and comes back in `dropped`.
  struct PushResult {
    bool queued = false;
    std::optional<T> dropped;
  };

  // Under kBlock, waits for room while `keep_waiting()` holds, checking it every 50 ms.
  // Pass a capacity of SIZE_MAX / 2 with kBlock for an unbounded queue.
  template <class Pred>
  PushResult push(T item, OverflowPolicy policy, Pred keep_waiting) {
    std::unique_lock lock(mutex_);
    PushResult r;
    if (policy == OverflowPolicy::kBlock) {
      while (!closed_ && count_ >= capacity_) {
        if (!keep_waiting()) break;
        not_full_.wait_for(lock, std::chrono::milliseconds(50));
      }
    }
    // Under kBlock an item still waiting when keep_waiting() turns false (the daemon is stopping)
    // is queued over capacity: it was accepted, so it is answered.
    if (closed_ || (count_ >= capacity_ && policy == OverflowPolicy::kDropNewest)) {
      r.dropped = std::move(item);
      return r;
    }
    if (count_ >= capacity_ && policy == OverflowPolicy::kDropOldest) r.dropped = take_front();
    push_back(std::move(item));
    r.queued = true;
    lock.unlock();
    not_empty_.notify_one();
    return r;
  }

  // The next item; nullopt once the queue is closed and empty, or after `timeout` without one.
  std::optional<T> pop(std::chrono::milliseconds timeout) {
    return pop(timeout, [] { return false; });
  }

  // The same, but also returns nullopt (at once) while `interrupted()` holds: a consumer that has
  // other work besides this queue waits for either. Whoever makes `interrupted()` true calls
  // wake() afterwards, so that no waiting consumer misses it.
  template <class Pred>
  std::optional<T> pop(std::chrono::milliseconds timeout, Pred interrupted) {
    std::unique_lock lock(mutex_);
    if (!not_empty_.wait_for(lock, timeout, [&] { return closed_ || count_ > 0 || interrupted(); })) {
      return std::nullopt;
    }
    if (count_ == 0) return std::nullopt;
    T item = take_front();
    lock.unlock();
    not_full_.notify_one();
    return item;
  }

  // Moves every queued item into `out` (appending); waits up to `timeout` for the first.
  void pop_all(std::vector<T>& out, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    not_empty_.wait_for(lock, timeout, [&] { return closed_ || count_ > 0; });
    while (count_ > 0) out.push_back(take_front());
    lock.unlock();
    not_full_.notify_all();
  }

  // After close(), push() refuses and pop() drains what is left, then returns nullopt.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    not_empty_.notify_all();
    not_full_.notify_all();
  }
  // Wakes every consumer waiting in pop() to look at its `interrupted` predicate again. Taking the
  // mutex first orders this after any consumer's check of the predicate.
  void wake() {
    { std::lock_guard lock(mutex_); }
    not_empty_.notify_all();
  }
  bool closed_and_empty() const {
    std::lock_guard lock(mutex_);
    return closed_ && count_ == 0;
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return count_;
  }
  std::size_t capacity() const { return capacity_; }

 private:
  // Ring operations; the caller holds the mutex.
  T take_front() {
    T item = std::move(*ring_[head_]);
    ring_[head_].reset();
    head_ = (head_ + 1) % ring_.size();
    --count_;
    return item;
  }
  void push_back(T item) {
    if (count_ == ring_.size()) {
      // Grow: unwrap into a ring twice the size (at most the capacity, plus one for kBlock's
      // over-capacity item at shutdown).
      std::vector<std::optional<T>> bigger(std::max<std::size_t>(16, 2 * ring_.size()));
      for (std::size_t i = 0; i < count_; ++i) bigger[i] = std::move(ring_[(head_ + i) % ring_.size()]);
      ring_.swap(bigger);
      head_ = 0;
    }
    ring_[(head_ + count_) % ring_.size()] = std::move(item);
    ++count_;
  }

  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable not_empty_, not_full_;
  std::vector<std::optional<T>> ring_;
  std::size_t head_ = 0, count_ = 0;
  bool closed_ = false;
};

}  // namespace xasmap::service
