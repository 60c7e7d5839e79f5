// Scale benchmark of the spectral core: fit and per-spectrum estimation on a synthetic library of
// up to 600,000 spectra.
//
// The library: the 78 simulated Mn spectra (Mn2+/3+/4+, Oh, 10Dq 0-2.5 eV) on D points over
// 635-660 eV, interpolated linearly in 10Dq to a uniformly drawn value and perturbed by an energy
// shift of up to +-0.1 eV, an amplitude of 0.8-1.2 and a linear background (synthetic_library.hpp,
// shared with bench_micro). Queries are more of the same with Gaussian noise (SNR 100).
// Everything is seeded, so runs are reproducible.
//
// Usage: bench_scale [--n N] [--k LANDMARKS] [--points D] [--dims DIMS] [--distance KIND]
//                    [--queries Q] [--threads T] [--selection maxmin|random]
// Prints one line of key=value pairs (times in seconds, memory in MiB, latencies in microseconds).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "synthetic_library.hpp"
#include "xasmap/core/model.hpp"

using namespace xasmap;

namespace {

double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

double rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

struct Args {
  long n = 100000;
  int k = 256;
  int points = 500;
  int dims = 12;
  int queries = 20000;
  int threads = 2;
  DistanceKind distance = DistanceKind::kCorrelation;
  LandmarkChoice selection = LandmarkChoice::kMaxMin;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const std::string v = argv[i + 1];
    if (k == "--n") a.n = std::stol(v);
    else if (k == "--k") a.k = std::stoi(v);
    else if (k == "--points") a.points = std::stoi(v);
    else if (k == "--dims") a.dims = std::stoi(v);
    else if (k == "--queries") a.queries = std::stoi(v);
    else if (k == "--threads") a.threads = std::stoi(v);
    else if (k == "--selection") a.selection = v == "random" ? LandmarkChoice::kRandom : LandmarkChoice::kMaxMin;
    else if (k == "--distance") {
      a.distance = v == "euclidean" ? DistanceKind::kEuclidean
                   : v == "derivative" ? DistanceKind::kDerivative
                   : v == "wasserstein" ? DistanceKind::kWasserstein
                                        : DistanceKind::kCorrelation;
    } else {
      std::fprintf(stderr, "bench_scale: unknown option %s\n", k.c_str());
      std::exit(64);
    }
  }
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const EnergyGrid grid = bench::bench_grid(a.points);
  const auto base = bench::simulate_mn_base(a.threads);
  bench::SpectrumSynthesizer synth(base, bench::kLibrarySeed);

  const double rss_before = rss_mib();
  bench::SyntheticLibrary lib = bench::make_library(synth, grid, a.n);
  const double library_mib =
      static_cast<double>(lib.rows.size()) * sizeof(float) / (1024.0 * 1024.0);
  const double rss_library = rss_mib();

  ModelOptions o;
  o.preprocess.grid = grid;
  o.distance = a.distance;
  o.landmarks = a.k;
  o.landmark_choice = a.selection;
  o.estimate_dims = a.dims;
  o.max_shift_ev = 0;  // no shifted copies
  o.threads = a.threads;
  FitReport report;
  const auto t0 = std::chrono::steady_clock::now();
  const Model model = Model::fit(std::move(lib.rows), bench::mn_parameters(), std::move(lib.labels),
                                 std::move(lib.values), o, &report);
  const double fit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double peak = peak_rss_mib();

  // Per-spectrum latency, one thread, spectra already in memory.
  std::vector<Spectrum> queries;
  std::vector<int> truth;
  std::vector<double> truth_tendq;
  const Eigen::VectorXd energy = bench::grid_energies(grid);
  for (int i = 0; i < std::min(a.queries, 2000); ++i) {
    int c = 0;
    double x = 0;
    queries.push_back(bench::noisy_query(synth, energy, bench::kQueryNoise, c, &x));
    truth.push_back(c + 2);
    truth_tendq.push_back(x);
  }
  // Timed separately: preprocessing (resample, background, normalisation, noise estimate) and
  // projection + estimation of the preprocessed spectrum, both through the daemon's hot path
  // (preprocess_into, estimate_into: storage reused, no allocation once warm).
  std::vector<double> us, pre_us;
  us.reserve(static_cast<std::size_t>(a.queries));
  pre_us.reserve(static_cast<std::size_t>(a.queries));
  int correct = 0;
  double tendq_abs_error = 0;
  Prepared p;
  Estimate e;
  for (int i = 0; i < a.queries; ++i) {
    const Spectrum& q = queries[static_cast<std::size_t>(i) % queries.size()];
    const auto s0 = std::chrono::steady_clock::now();
    preprocess_into(q.energy_ev, q.intensity, model.options().preprocess, p);
    const auto s1 = std::chrono::steady_clock::now();
    model.estimate_into(p, e);
    const auto s2 = std::chrono::steady_clock::now();
    pre_us.push_back(std::chrono::duration<double, std::micro>(s1 - s0).count());
    us.push_back(std::chrono::duration<double, std::micro>(s2 - s1).count());
    correct += e.values[0] == truth[static_cast<std::size_t>(i) % queries.size()];
    tendq_abs_error += std::abs(e.values[1] - truth_tendq[static_cast<std::size_t>(i) % queries.size()]);
  }
  std::sort(us.begin(), us.end());
  std::sort(pre_us.begin(), pre_us.end());
  const auto at = [&](double q) { return us[static_cast<std::size_t>(q * static_cast<double>(us.size() - 1))]; };
  const double pre_p50 = pre_us[pre_us.size() / 2];
  std::printf(
      "n=%ld points=%d k=%d dims=%d distance=%s selection=%s threads=%d library_mib=%.1f "
      "preprocess_s=%.3f landmarks_s=%.3f embed_s=%.3f index_s=%.3f lmds_s=%.3f fit_s=%.3f "
      "rss_before_mib=%.1f rss_library_mib=%.1f peak_mib=%.1f peak_over_library=%.2f "
      "preprocess_us_p50=%.2f estimate_us_p50=%.2f estimate_us_p90=%.2f estimate_us_p99=%.2f "
      "charge_correct=%.4f tendq_mae_ev=%.4f\n",
      a.n, grid.size, a.k, a.dims, to_string(a.distance),
      a.selection == LandmarkChoice::kRandom ? "random" : "maxmin", a.threads, library_mib,
      report.preprocess_s, report.landmarks_s, report.embed_s, report.index_s,
      report.landmarks_s + report.embed_s, fit_s, rss_before, rss_library, peak,
      (peak - rss_before) / library_mib, pre_p50, at(0.5), at(0.9), at(0.99),
      static_cast<double>(correct) / a.queries, tendq_abs_error / a.queries);
  return 0;
}
