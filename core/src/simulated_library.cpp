#include "xasmap/core/simulated_library.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "xasmap/core/error.hpp"

namespace xasmap {

std::vector<SimulatedSpectrum> simulate_library(const std::vector<SimulationJob>& jobs,
                                                const Broadening& broadening,
                                                const Eigen::VectorXd& energy_ev, int threads,
                                                const ProgressCallback& progress) {
  std::vector<SimulatedSpectrum> out(jobs.size());
  const int total = static_cast<int>(jobs.size());
  // Groups of jobs that share one diagonalisation: a job and every later job naming it in
  // same_hamiltonian_as. Each worker takes whole groups.
  std::vector<std::vector<std::size_t>> group;
  std::vector<int> group_of(jobs.size(), -1);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const int root = jobs[i].same_hamiltonian_as;
    if (root < 0) {
      group_of[i] = static_cast<int>(group.size());
      group.push_back({i});
      continue;
    }
    if (static_cast<std::size_t>(root) >= i || jobs[static_cast<std::size_t>(root)].same_hamiltonian_as >= 0) {
      throw Error("simulate_library: job " + std::to_string(i) + " (" + jobs[i].label +
                  ") shares the Hamiltonian of job " + std::to_string(root) +
                  ", which is not an earlier job with its own");
    }
    group_of[i] = group_of[static_cast<std::size_t>(root)];
    group[static_cast<std::size_t>(group_of[i])].push_back(i);
  }
  const int groups = static_cast<int>(group.size());
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
        const std::vector<std::size_t>& members = group[static_cast<std::size_t>(g)];
        // One diagonalisation for every temperature the group asks for.
        std::vector<double> temperatures;
        for (const std::size_t i : members) {
          const double t = jobs[i].parameters.temperature_k;
          if (std::find(temperatures.begin(), temperatures.end(), t) == temperatures.end()) temperatures.push_back(t);
        }
        const std::vector<StickSpectrum> sticks_at = compute_sticks(jobs[members.front()].parameters, temperatures);
        for (const std::size_t i : members) {
          const StickSpectrum& sticks = sticks_at[static_cast<std::size_t>(
              std::find(temperatures.begin(), temperatures.end(), jobs[i].parameters.temperature_k) -
              temperatures.begin())];
          const SimulationJob& job = jobs[i];
          SimulatedSpectrum& s = out[i];
          s.label = job.label;
          s.labels = job.labels;
          if (job.parameters.charge_transfer.configurations > 1) {
            // The ground state's 3d count and covalency, parameters like the job's own labels.
            const std::vector<double>& w = sticks.diagnostics.ground_weights;
            double n_d = job.parameters.n3d;
            for (std::size_t k = 1; k < w.size(); ++k) n_d += static_cast<double>(k) * w[k];
            s.labels["n_d"] = n_d;
            s.labels["covalency"] = w.empty() ? 0.0 : 1.0 - w.front();
          }
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
