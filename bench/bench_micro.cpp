// Micro-benchmarks of the daemon's per-spectrum hot path, one stage at a time, on one thread:
//   decode      protocol::decode_spectrum of a single-spectrum message (bin f4, or msgpack arrays)
//   preprocess  preprocess_into of one spectrum, on the library grid or on a random-step grid
//   project     Model::project_into: the spectrum's coordinates in the estimation embedding
//   estimate    Model::estimate_into: projection, neighbour search and parameter estimates
// over the library size N, the landmarks k and the grid points D. Every iteration is one spectrum
// (items_per_second counts spectra); the queries are noisy synthetic spectra
// (synthetic_library.hpp, SNR 100), cycled: 1024 for decode and preprocess, 16384 for project and
// estimate, so that the library rows an estimate reads are rarely still cached (at N = 600,000,
// 1024 cycled queries made the estimate about 20% faster; 65536 measured the same as 16384).
//
// A "library grid" query is sampled on the model's grid (the full window, the fast path); a
// "random grid" query is sampled as `xasmap feed` samples one, with its own step (0.8-1.25 times
// the library's) over a sub-range that leaves 0.5-2 eV and 0.5-3 eV of the library's range
// uncovered at its ends, so that it is resampled and estimated on a partial window.
//
// Models are built lazily, once per (N, k, D, distance), and kept for the whole run: the largest
// (N = 600,000, D = 500) holds 1.2 GB and takes about 10 s to build and fit. Skip it with
// --benchmark_filter=-N:600000. The estimate benchmarks report `charge_ok`, the fraction of the
// first 1024 queries whose charge is estimated right: a check that the model being timed works.

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "synthetic_library.hpp"
#include "xasmap/core/model.hpp"
#include "xasmap/protocol/messages.hpp"

namespace {

using namespace xasmap;
using bench::SpectrumSynthesizer;

constexpr long kFixedN = 100000;  // library rows for the k and D sweeps
constexpr int kFixedK = 256;      // landmarks for the N and D sweeps
constexpr int kFixedD = 500;      // grid points for the N and k sweeps
// Distinct queries: the raw spectra the decode and preprocess benchmarks cycle through (they read
// nothing else), and the preprocessed ones of project and estimate, which are many so that the
// library rows one estimate reads are rarely still cached from an earlier one, as in the daemon.
constexpr std::size_t kRawQueries = 1024;
constexpr std::size_t kPreparedQueries = 16384;
constexpr std::uint64_t kQuerySeed = 7;  // queries are drawn apart from any library's rows
constexpr int kFitThreads = 2;

enum class QueryGrid { kLibrary, kRandom };

const std::vector<SimulatedSpectrum>& base_spectra() {
  static const std::vector<SimulatedSpectrum> base = bench::simulate_mn_base(kFitThreads);
  return base;
}

// A grid as `xasmap feed` draws one (service/src/feed_sources.cpp), scaled to the library's step.
Eigen::VectorXd random_grid(const EnergyGrid& grid, SpectrumSynthesizer& synth) {
  const double step = grid.step_ev * (0.8 + 0.45 * synth.uniform());
  const double start = grid.emin_ev + 0.5 + 1.5 * synth.uniform();
  const double stop = grid.emax_ev() - 0.5 - 2.5 * synth.uniform();
  const auto n = static_cast<Eigen::Index>((stop - start) / step) + 1;
  return Eigen::VectorXd::LinSpaced(n, start, start + step * static_cast<double>(n - 1));
}

// The queries of one grid size and kind: the first kRawQueries raw, all of them preprocessed with
// the benchmark's options.
struct QuerySet {
  PreprocessOptions options;
  std::vector<Spectrum> spectra;
  std::vector<Prepared> prepared;
  std::vector<int> charge;  // 2, 3, 4, of each prepared query
};

const QuerySet& queries(int points, QueryGrid kind) {
  static std::map<std::pair<int, QueryGrid>, QuerySet> cache;
  const auto key = std::make_pair(points, kind);
  if (const auto it = cache.find(key); it != cache.end()) return it->second;
  QuerySet q;
  q.options.grid = bench::bench_grid(points);
  SpectrumSynthesizer synth(base_spectra(), kQuerySeed);
  const Eigen::VectorXd library_energy = bench::grid_energies(q.options.grid);
  for (std::size_t i = 0; i < kPreparedQueries; ++i) {
    const Eigen::VectorXd energy =
        kind == QueryGrid::kLibrary ? library_energy : random_grid(q.options.grid, synth);
    int c = 0;
    Spectrum s = bench::noisy_query(synth, energy, bench::kQueryNoise, c);
    q.charge.push_back(c + 2);
    q.prepared.push_back(preprocess(s, q.options));
    if (i < kRawQueries) q.spectra.push_back(std::move(s));
  }
  return cache.emplace(key, std::move(q)).first->second;
}

struct ModelKey {
  long rows = 0;
  int landmarks = 0;
  int points = 0;
  DistanceKind distance = DistanceKind::kCorrelation;
  auto operator<=>(const ModelKey&) const = default;
};

// The model of a synthetic library with bench_scale's options (MaxMin landmarks, 12 estimation
// dimensions, no shifted copies), built on first use and kept. Logs each build to stderr.
const Model& model(const ModelKey& key) {
  static std::map<ModelKey, Model> cache;
  if (const auto it = cache.find(key); it != cache.end()) return it->second;
  const std::vector<SimulatedSpectrum>& base = base_spectra();  // simulated once, not timed here
  const auto t0 = std::chrono::steady_clock::now();
  ModelOptions o;
  o.preprocess.grid = bench::bench_grid(key.points);
  o.distance = key.distance;
  o.landmarks = key.landmarks;
  o.landmark_choice = LandmarkChoice::kMaxMin;
  o.estimate_dims = 12;
  o.max_shift_ev = 0;  // no shifted copies
  o.threads = kFitThreads;
  SpectrumSynthesizer synth(base, bench::kLibrarySeed);
  bench::SyntheticLibrary lib = bench::make_library(synth, o.preprocess.grid, key.rows);
  Model m = Model::fit(std::move(lib.rows), bench::mn_parameters(), std::move(lib.labels),
                       std::move(lib.values), o);
  std::fprintf(stderr, "bench_micro: model N=%ld k=%d D=%d %s built and fitted in %.1f s\n",
               key.rows, key.landmarks, key.points, to_string(key.distance),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return cache.emplace(key, std::move(m)).first->second;
}

const char* grid_text(QueryGrid kind) {
  return kind == QueryGrid::kLibrary ? "library grid" : "random grid";
}

// Arguments D of the decode and preprocess benchmarks.
void points_sweep(benchmark::internal::Benchmark* b) {
  b->ArgName("D")->Arg(250)->Arg(500)->Arg(1000)->Unit(benchmark::kMicrosecond);
}

// ---- decode ----

// state.range(0): points. `raw_dtype` as protocol::encode takes it ("f4"; "" for arrays).
void BM_Decode(benchmark::State& state, const char* raw_dtype) {
  const auto points = static_cast<int>(state.range(0));
  const Spectrum& s = queries(points, QueryGrid::kLibrary).spectra.front();
  // As `xasmap bench` sends them: an id, the arrays, the acquisition time.
  protocol::SpectrumMessage m;
  m.id = "bench-0000000001";
  m.energy.assign(s.energy_ev.begin(), s.energy_ev.end());
  m.intensity.assign(s.intensity.begin(), s.intensity.end());
  m.time = 1795000000.125;
  const std::vector<std::uint8_t> bytes = protocol::encode(m, raw_dtype);
  for (auto _ : state) {
    protocol::SpectrumMessage decoded = protocol::decode_spectrum(bytes.data(), bytes.size());
    benchmark::DoNotOptimize(decoded);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes.size()));
  state.SetLabel(std::to_string(bytes.size()) + " B message");
}
BENCHMARK_CAPTURE(BM_Decode, f4, "f4")->Apply(points_sweep);
BENCHMARK_CAPTURE(BM_Decode, arrays, "")->Apply(points_sweep);

// ---- preprocess ----

// state.range(0): library grid points.
void BM_Preprocess(benchmark::State& state, QueryGrid kind) {
  const QuerySet& q = queries(static_cast<int>(state.range(0)), kind);
  Prepared out;
  std::size_t i = 0;
  for (auto _ : state) {
    const Spectrum& s = q.spectra[i];
    preprocess_into(s.energy_ev, s.intensity, q.options, out);
    benchmark::DoNotOptimize(out);
    i = (i + 1) % q.spectra.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(grid_text(kind));
}
BENCHMARK_CAPTURE(BM_Preprocess, library_grid, QueryGrid::kLibrary)->Apply(points_sweep);
BENCHMARK_CAPTURE(BM_Preprocess, random_grid, QueryGrid::kRandom)->Apply(points_sweep);

// ---- project and estimate ----

// Arguments (N, k, D) of the sweeps through (kFixedN, kFixedK, kFixedD).
void k_and_d_sweep(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "k", "D"});
  for (const int k : {64, 128, kFixedK}) b->Args({kFixedN, k, kFixedD});
  for (const int d : {250, 1000}) b->Args({kFixedN, kFixedK, d});
  b->Unit(benchmark::kMicrosecond);
}

void n_k_and_d_sweep(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "k", "D"});
  for (const long n : {10000L, 100000L, 300000L, 600000L}) b->Args({n, kFixedK, kFixedD});
  for (const int k : {64, 128}) b->Args({kFixedN, k, kFixedD});
  for (const int d : {250, 1000}) b->Args({kFixedN, kFixedK, d});
  b->Unit(benchmark::kMicrosecond);
}

void center_only(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "k", "D"})->Args({kFixedN, kFixedK, kFixedD})->Unit(benchmark::kMicrosecond);
}

ModelKey key_of(const benchmark::State& state, DistanceKind distance) {
  return {state.range(0), static_cast<int>(state.range(1)), static_cast<int>(state.range(2)),
          distance};
}

// The model and queries of a benchmark; null (and the benchmark skipped) when the queries were
// preprocessed differently from the model.
std::pair<const Model*, const QuerySet*> inputs(benchmark::State& state, DistanceKind distance, QueryGrid kind) {
  const ModelKey key = key_of(state, distance);
  const Model& m = model(key);
  const QuerySet& q = queries(key.points, kind);
  if (!(m.options().preprocess == q.options)) {
    state.SkipWithError("the queries were preprocessed with other options than the model's");
    return {nullptr, nullptr};
  }
  return {&m, &q};
}

void BM_Project(benchmark::State& state, DistanceKind distance, QueryGrid kind) {
  const auto [model_ptr, queries_ptr] = inputs(state, distance, kind);
  if (!model_ptr) return;
  const Model& m = *model_ptr;
  const QuerySet& q = *queries_ptr;
  Eigen::VectorXd coordinates;
  std::size_t i = 0;
  for (auto _ : state) {
    m.project_into(q.prepared[i], coordinates);
    benchmark::DoNotOptimize(coordinates.data());
    benchmark::ClobberMemory();
    i = (i + 1) % q.prepared.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(to_string(distance)) + ", " + grid_text(kind));
}

void BM_Estimate(benchmark::State& state, DistanceKind distance, QueryGrid kind) {
  const auto [model_ptr, queries_ptr] = inputs(state, distance, kind);
  if (!model_ptr) return;
  const Model& m = *model_ptr;
  const QuerySet& q = *queries_ptr;
  // The accuracy on the first kRawQueries queries (this also warms the scratch).
  Estimate e;
  int correct = 0;
  for (std::size_t i = 0; i < kRawQueries; ++i) {
    m.estimate_into(q.prepared[i], e);
    correct += e.values[0] == q.charge[i];
  }
  std::size_t i = 0;
  for (auto _ : state) {
    m.estimate_into(q.prepared[i], e);
    benchmark::DoNotOptimize(e);
    benchmark::ClobberMemory();
    i = (i + 1) % q.prepared.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["charge_ok"] = static_cast<double>(correct) / static_cast<double>(kRawQueries);
  state.SetLabel(std::string(to_string(distance)) + ", " + grid_text(kind));
}

BENCHMARK_CAPTURE(BM_Project, correlation_library_grid, DistanceKind::kCorrelation,
                  QueryGrid::kLibrary)
    ->Apply(k_and_d_sweep);
BENCHMARK_CAPTURE(BM_Project, correlation_random_grid, DistanceKind::kCorrelation,
                  QueryGrid::kRandom)
    ->Apply(k_and_d_sweep);
BENCHMARK_CAPTURE(BM_Project, euclidean_library_grid, DistanceKind::kEuclidean, QueryGrid::kLibrary)
    ->Apply(k_and_d_sweep);
BENCHMARK_CAPTURE(BM_Project, euclidean_random_grid, DistanceKind::kEuclidean, QueryGrid::kRandom)
    ->Apply(k_and_d_sweep);

BENCHMARK_CAPTURE(BM_Estimate, correlation_library_grid, DistanceKind::kCorrelation,
                  QueryGrid::kLibrary)
    ->Apply(n_k_and_d_sweep);
BENCHMARK_CAPTURE(BM_Estimate, correlation_random_grid, DistanceKind::kCorrelation,
                  QueryGrid::kRandom)
    ->Apply(n_k_and_d_sweep);
BENCHMARK_CAPTURE(BM_Estimate, euclidean_library_grid, DistanceKind::kEuclidean,
                  QueryGrid::kLibrary)
    ->Apply(center_only);
BENCHMARK_CAPTURE(BM_Estimate, euclidean_random_grid, DistanceKind::kEuclidean, QueryGrid::kRandom)
    ->Apply(center_only);

}  // namespace

BENCHMARK_MAIN();
