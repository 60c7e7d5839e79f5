#pragma once
// Simulating a whole library: a parameter grid of multiplet spectra on one absolute energy grid,
// computed on several threads.

#include <Eigen/Core>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "xasmap/core/multiplet.hpp"

namespace xasmap {

// One spectrum to simulate: its parameters, where it goes on the absolute axis, and the named
// parameters it is labelled with (charge, tendq, and whatever else was swept).
struct SimulationJob {
  std::string label;                        // e.g. "Mn3+_tendq1.2"
  MultipletParameters parameters;
  double energy_offset_ev = 0.0;            // absolute = relative + offset
  std::map<std::string, double> labels;     // e.g. {"charge": 3, "tendq": 1.2}
  // Broadened with this instead of simulate_library()'s `broadening` (a nuisance width variant).
  std::optional<Broadening> broadening;
  // The index of an earlier job whose `parameters` equal this one's but for temperature_k: both
  // come from one diagonalisation (temperature and width variants of one spectrum). -1: none.
  int same_hamiltonian_as = -1;
};

struct SimulatedSpectrum {
  std::string label;
  // The job's labels; with charge transfer also the ground state's 3d count n_d = n + w2 + 2 w3
  // and covalency = 1 - w1 (w: its configuration weights).
  std::map<std::string, double> labels;
  Eigen::VectorXd intensity;                // on the grid given to simulate_library()
  MultipletDiagnostics diagnostics;
};

// Called after each finished spectrum with (done, total); from worker threads, one call at a time.
using ProgressCallback = std::function<void(int done, int total)>;

// Simulates every job, broadened and placed on `energy_ev`; a job and those naming it in
// same_hamiltonian_as share one diagonalisation. `threads` <= 0 uses every hardware
// thread. Results keep the order of `jobs`. Rethrows the first failure after all threads stop.
std::vector<SimulatedSpectrum> simulate_library(const std::vector<SimulationJob>& jobs,
                                                const Broadening& broadening,
                                                const Eigen::VectorXd& energy_ev, int threads = 0,
                                                const ProgressCallback& progress = {});

}  // namespace xasmap
