// Speed of the multiplet simulator: one spectrum per Mn ion (with the 2Jz-blocked solver and,
// as the in-run baseline, the whole-matrix solver), broadening, and the seed's 78-spectrum library
// on one and on two threads; a temperature sweep from one diagonalisation against two.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/multiplet.hpp"
#include "xasmap/core/simulated_library.hpp"

namespace {

using namespace xasmap;

const AtomicTable& table() {
  static const AtomicTable t = AtomicTable::load(std::string(XASMAP_SOURCE_DIR) + "/data/atomic");
  return t;
}

MultipletParameters params(const char* ion, double tendq) {
  const Ion i = parse_ion(ion);
  MultipletParameters p = make_parameters(i, table().lookup(i), ParameterScaling{});
  p.tendq = tendq;
  return p;
}

const char* const kIons[] = {"Mn2+", "Mn3+", "Mn4+"};

void BM_Spectrum(benchmark::State& state) {
  const MultipletParameters p = params(kIons[state.range(0)], 1.2);
  SolverOptions options;
  options.use_symmetry_blocks = state.range(1) != 0;
  // The whole-matrix baseline diagonalises it whole (a block of 1,512 would otherwise go to Lanczos).
  options.krylov_min_dimension = std::numeric_limits<int>::max();
  for (auto _ : state) benchmark::DoNotOptimize(compute_sticks(p, options));
  state.SetLabel(std::string(kIons[state.range(0)]) +
                 (options.use_symmetry_blocks ? " blocked" : " whole matrix"));
}
BENCHMARK(BM_Spectrum)
    ->ArgsProduct({{0, 1, 2}, {1}})
    ->Args({1, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// A nuisance library's temperature sweep: Mn3+ at 20 and 300 K, as two calculations (the in-run
// baseline) or from one diagonalisation (what simulate_library does for same_hamiltonian_as).
void BM_Temperatures(benchmark::State& state) {
  MultipletParameters p = params("Mn3+", 1.2);
  const bool shared = state.range(0) != 0;
  for (auto _ : state) {
    if (shared) {
      benchmark::DoNotOptimize(compute_sticks(p, {20.0, 300.0}));
    } else {
      p.temperature_k = 20.0;
      benchmark::DoNotOptimize(compute_sticks(p));
      p.temperature_k = 300.0;
      benchmark::DoNotOptimize(compute_sticks(p));
    }
  }
  state.SetLabel(shared ? "Mn3+ at 20 and 300 K, one diagonalisation" : "Mn3+ at 20 and 300 K, two calculations");
}
BENCHMARK(BM_Temperatures)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Broaden(benchmark::State& state) {
  const StickSpectrum s = compute_sticks(params("Mn3+", 1.2));
  const Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(251, -10.0, 15.0);
  for (auto _ : state) benchmark::DoNotOptimize(broaden(s, {0.4, 0.8, 0.3}, grid, 0.0));
  state.SetLabel(std::to_string(s.sticks.size()) + " sticks onto 251 points");
}
BENCHMARK(BM_Broaden)->Unit(benchmark::kMicrosecond);

void BM_Library78(benchmark::State& state) {
  std::vector<SimulationJob> jobs;
  for (const char* ion : kIons) {
    for (int k = 0; k <= 25; ++k) {
      SimulationJob job;
      job.parameters = params(ion, 0.1 * k);
      job.energy_offset_ev = 645.0;
      jobs.push_back(job);
    }
  }
  const Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(251, 635.0, 660.0);
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    benchmark::DoNotOptimize(simulate_library(jobs, {0.4, 0.8, 0.3}, grid, threads));
  }
  state.SetLabel("78 Mn spectra, " + std::to_string(threads) + " thread(s)");
}
BENCHMARK(BM_Library78)->Arg(1)->Arg(2)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1);

// Charge transfer (issue #14): one spectrum at 300 K with Delta 3, Udd 6, Upd 7.5, V(e_g) 2,
// V(t2g) 1, 10Dq 1.2 eV. Default solver (Lanczos for final blocks of 1,000 states or more) for
// Mn2+, Mn3+, Mn4+ and Ni2+; the in-run baseline diagonalises every Mn2+ block whole (one run:
// about 50 s).
const char* const kCtIons[] = {"Mn2+", "Mn3+", "Mn4+", "Ni2+"};

MultipletParameters charge_transfer(const char* ion) {
  MultipletParameters p = params(ion, 1.2);
  p.temperature_k = 300.0;
  ChargeTransferParameters& ct = p.charge_transfer;
  ct.configurations = 2;
  ct.delta = 3.0;
  ct.udd = 6.0;
  ct.upd = 7.5;
  ct.v_eg = 2.0;
  ct.v_t2g = 1.0;
  ct.transferred = transferred_terms_of(parse_ion(ion), table(), ParameterScaling{});  // Mn2+: its own
  return p;
}

void BM_ChargeTransfer(benchmark::State& state) {
  const char* ion = kCtIons[state.range(0)];
  const MultipletParameters p = charge_transfer(ion);
  SolverOptions options;
  if (state.range(1) != 0) options.krylov_min_dimension = std::numeric_limits<int>::max();
  MultipletDiagnostics d;
  for (auto _ : state) {
    const StickSpectrum s = compute_sticks(p, options);
    d = s.diagnostics;
    benchmark::DoNotOptimize(s.sticks.data());
  }
  int steps = 0;
  for (const int k : d.lanczos_steps) steps = std::max(steps, k);
  state.SetLabel(std::string(ion) + (state.range(1) != 0 ? " whole blocks" : " Lanczos") + ", dimensions " +
                 std::to_string(d.initial_dimension) + " / " + std::to_string(d.final_dimension) +
                 ", final blocks of " + std::to_string(d.final_block_sizes.front()) + ", " +
                 std::to_string(d.weighted_initial_states) + " weighted initial states, up to " +
                 std::to_string(steps) + " Lanczos steps");
}
BENCHMARK(BM_ChargeTransfer)->ArgsProduct({{0, 1, 2, 3}, {0}})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ChargeTransfer)->Args({0, 1})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1)->Repetitions(1);

// The seed's 78-spectrum grid (Mn2+, Mn3+, Mn4+ x 10Dq 0-2.5 eV) with charge transfer, 2 threads.
void BM_LibraryChargeTransfer78(benchmark::State& state) {
  std::vector<SimulationJob> jobs;
  for (const char* ion : kIons) {
    for (int k = 0; k <= 25; ++k) {
      SimulationJob job;
      job.parameters = charge_transfer(ion);
      job.parameters.tendq = 0.1 * k;
      job.energy_offset_ev = 645.0;
      jobs.push_back(job);
    }
  }
  const Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(251, 635.0, 660.0);
  for (auto _ : state) benchmark::DoNotOptimize(simulate_library(jobs, {0.4, 0.8, 0.3}, grid, 2));
  state.SetLabel("78 Mn spectra with charge transfer, 2 threads");
}
BENCHMARK(BM_LibraryChargeTransfer78)->Unit(benchmark::kSecond)->UseRealTime()->Iterations(1)->Repetitions(1);

}  // namespace

BENCHMARK_MAIN();
