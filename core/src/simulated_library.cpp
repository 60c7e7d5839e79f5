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
  // Groups of jobs that share one set of sticks: a job and the run of jobs after it marked
  // same_sticks_as_previous. Each worker takes whole groups.
  std::vector<std::size_t> group_start;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (i == 0 || !jobs[i].same_sticks_as_previous) group_start.push_back(i);
  }
  const int groups = static_cast<int>(group_start.size());
  group_start.push_back(jobs.size());
  int workers = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  workers = std::clamp(workers, 1, std::max(1, groups));

  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first_error;
  std::mutex mutex;  // guards first_error, done and progress calls
  int done = 0;

  const auto work = [&] {
    while (!failed.load()) {
      const int g = next.fetch_add(1);
      if (g >= groups) break;
      try {
        const std::size_t first = group_start[static_cast<std::size_t>(g)];
        const std::size_t last = group_start[static_cast<std::size_t>(g) + 1];
        const StickSpectrum sticks = compute_sticks(jobs[first].parameters);
        for (std::size_t i = first; i < last; ++i) {
          const SimulationJob& job = jobs[i];
          SimulatedSpectrum& s = out[i];
          s.label = job.label;
          s.labels = job.labels;
          s.intensity = broaden(sticks, job.broadening.value_or(broadening), energy_ev, job.energy_offset_ev);
          s.diagnostics = sticks.diagnostics;
          std::lock_guard lock(mutex);
          ++done;
          if (progress) progress(done, total);
        }
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
