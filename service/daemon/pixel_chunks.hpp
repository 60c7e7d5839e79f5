#pragma once
// The daemon's one compute pool is its worker threads. A worker that decodes a stack does not start
// threads of its own: it posts the stack's pixels here in chunks, and every worker takes chunks
// (before new input) until none is left, the posting worker among them. So W workers run at most
// W computations at once, single spectra and stack pixels alike, whatever arrives.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <list>
#include <mutex>

namespace xasmap::service {

class PixelChunks {
 public:
  using Body = std::function<void(std::size_t begin, std::size_t end)>;

  // Runs body over [0, n) in chunks of `chunk` on the calling thread and on every thread that
  // calls run_one(), and returns once all chunks are done. `wake` is called after posting, so that
  // idle workers look again. Rethrows the first exception a chunk threw (the rest still run).
  template <class Wake>
  void run(std::size_t n, std::size_t chunk, const Body& body, Wake wake) {
    if (n == 0) return;
    Work w(body, n, std::max<std::size_t>(1, chunk));
    {
      std::lock_guard lock(mutex_);
      open_.push_back(&w);
      ++pending_;
    }
    wake();
    while (run_chunk(w)) {
    }
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return w.finished == w.chunks(); });
    if (w.error) std::rethrow_exception(w.error);
  }

  // Runs one chunk of any posted stack; false when there is none.
  bool run_one() {
    Work* w = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (open_.empty()) return false;
      w = open_.front();
    }
    return run_chunk(*w);
  }

  // Whether some posted stack has chunks nobody has taken yet (a hint: may change at once).
  bool pending() const { return pending_.load() > 0; }

 private:
  struct Work {
    Work(const Body& b, std::size_t count, std::size_t per_chunk) : body(b), n(count), chunk(per_chunk) {}
    const Body& body;
    std::size_t n, chunk;
    std::size_t next = 0;      // guarded by mutex_: the next chunk to hand out
    std::size_t finished = 0;  // guarded by mutex_
    std::exception_ptr error;  // guarded by mutex_
    std::size_t chunks() const { return (n + chunk - 1) / chunk; }
  };

  // Claims and runs the next chunk of `w`; false when all of its chunks are taken.
  bool run_chunk(Work& w) {
    std::size_t i = 0;
    {
      std::lock_guard lock(mutex_);
      if (w.next == w.chunks()) return false;
      i = w.next++;
      if (w.next == w.chunks()) {  // fully handed out: nobody else needs to find it
        open_.remove(&w);
        --pending_;
      }
    }
    std::exception_ptr error;
    try {
      w.body(i * w.chunk, std::min(w.n, (i + 1) * w.chunk));
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      if (error && !w.error) w.error = error;
      ++w.finished;
    }
    done_.notify_all();
    return true;
  }

  std::mutex mutex_;
  std::condition_variable done_;
  std::list<Work*> open_;  // guarded by mutex_: stacks with chunks not yet handed out
  std::atomic<int> pending_{0};
};

}  // namespace xasmap::service
