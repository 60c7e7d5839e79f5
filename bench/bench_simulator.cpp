// Speed of the multiplet simulator: one spectrum per Mn ion (with the 2Jz-blocked solver and,
// as the in-run baseline, the whole-matrix solver), broadening, and the seed's 78-spectrum library
// on one and on two threads; a temperature sweep from one diagonalisation against two.

#include <benchmark/benchmark.h>

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

}  // namespace

BENCHMARK_MAIN();
