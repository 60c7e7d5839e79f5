#include "xasmap/core/simulated_library.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

namespace xasmap {

std::vector<SimulatedSpectrum> simulate_library(const std::vector<SimulationJob>& jobs,
                                                const Broadening& broadening,
                                                const Eigen::VectorXd& energy_ev, int threads,
                                                const ProgressCallback& progress) {
  std::vector<SimulatedSpectrum> out(jobs.size());
  const int total = static_cast<int>(jobs.size());
  int workers = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  workers = std::clamp(workers, 1, std::max(1, total));

  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex mutex;  // guards first_error, done and progress calls
  int done = 0;

  const auto work = [&] {
    while (!failed.load()) {
      const int i = next.fetch_add(1);
      if (i >= total) break;
      try {
        const SimulationJob& job = jobs[static_cast<std::size_t>(i)];
        const StickSpectrum sticks = compute_sticks(job.parameters);
        SimulatedSpectrum& s = out[static_cast<std::size_t>(i)];
        s.label = job.label;
        s.labels = job.labels;
        s.intensity = broaden(sticks, broadening, energy_ev, job.energy_offset_ev);
        s.diagnostics = sticks.diagnostics;
        std::lock_guard lock(mutex);
        ++done;
        if (progress) progress(done, total);
      } catch (...) {
        std::lock_guard lock(mutex);
        if (!first_error) first_error = std::current_exception();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < workers; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (first_error) std::rethrow_exception(first_error);
  return out;
}

}  // namespace xasmap
