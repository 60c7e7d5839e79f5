// Scale benchmark of the spectral core: fit and per-spectrum estimation on a synthetic library of
// up to 600,000 spectra.
//
// The library: the 78 simulated Mn spectra (Mn2+/3+/4+, Oh, 10Dq 0-2.5 eV) on D points over
// 635-660 eV, interpolated linearly in 10Dq to a uniformly drawn value and perturbed by an energy
// shift of up to +-0.1 eV, an amplitude of 0.8-1.2 and a linear background. Queries are more of
// the same with Gaussian noise (SNR 100). Everything is seeded, so runs are reproducible.
//
// Usage: bench_scale [--n N] [--k LANDMARKS] [--points D] [--dims DIMS] [--distance KIND]
//                    [--queries Q] [--threads T] [--selection maxmin|random]
// Prints one line of key=value pairs (times in seconds, memory in MiB, latencies in microseconds).

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/model.hpp"
#include "xasmap/core/simulated_library.hpp"

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
  const EnergyGrid grid = EnergyGrid::from_range(635.0, 660.0, 25.0 / (a.points - 1));
  // Base spectra on a grid 1 eV wider, for the shifts.
  const AtomicTable table = AtomicTable::load(std::string(XASMAP_SOURCE_DIR) + "/data/atomic");
  const std::map<std::string, double> offsets{{"Mn2+", 645.05}, {"Mn3+", 646.55}, {"Mn4+", 647.25}};
  std::vector<SimulationJob> jobs;
  for (const char* ion : {"Mn2+", "Mn3+", "Mn4+"}) {
    const Ion i = parse_ion(ion);
    for (int t = 0; t <= 25; ++t) {
      SimulationJob job;
      job.parameters = make_parameters(i, table.lookup(i), ParameterScaling{});
      job.parameters.tendq = 0.1 * t;
      job.energy_offset_ev = offsets.at(ion);
      jobs.push_back(job);
    }
  }
  const double fine_step = 0.01;
  const Eigen::VectorXd fine = Eigen::VectorXd::LinSpaced(2701, 634.0, 661.0);
  const auto base = simulate_library(jobs, {0.4, 0.8, 0.3}, fine, a.threads);

  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u01;
  std::normal_distribution<double> n01;
  // Writes one synthetic spectrum (charge index c, 10Dq x) into `out` on the grid.
  const auto synthesize = [&](int c, double x, float* out, double noise) {
    const int lo = std::min(24, static_cast<int>(x / 0.1));
    const double f = x / 0.1 - lo;
    const auto& a0 = base[static_cast<std::size_t>(c * 26 + lo)].intensity;
    const auto& a1 = base[static_cast<std::size_t>(c * 26 + lo + 1)].intensity;
    const double shift = 0.2 * (u01(rng) - 0.5), amp = 0.8 + 0.4 * u01(rng);
    const double slope = 0.002 * (u01(rng) - 0.5);
    for (int i = 0; i < grid.size; ++i) {
      const double pos = (grid.at(i) - shift - 634.0) / fine_step;
      const auto j = static_cast<Eigen::Index>(pos);
      const double t = pos - static_cast<double>(j);
      const double v0 = (1 - t) * a0[j] + t * a0[j + 1];
      const double v1 = (1 - t) * a1[j] + t * a1[j + 1];
      out[i] = static_cast<float>(amp * ((1 - f) * v0 + f * v1) + slope * (grid.at(i) - 645.0) +
                                  noise * n01(rng));
    }
  };

  const double rss_before = rss_mib();
  FeatureMatrix rows(a.n, grid.size);
  std::vector<std::string> labels(static_cast<std::size_t>(a.n));
  std::vector<std::vector<double>> values(static_cast<std::size_t>(a.n));
  for (long r = 0; r < a.n; ++r) {
    const int c = static_cast<int>(u01(rng) * 3);
    const double x = 2.5 * u01(rng);
    synthesize(c, x, rows.row(r).data(), 0.0);
    values[static_cast<std::size_t>(r)] = {static_cast<double>(c + 2), x};
    labels[static_cast<std::size_t>(r)] = std::to_string(r);
  }
  const double library_mib = static_cast<double>(rows.size()) * sizeof(float) / (1024.0 * 1024.0);
  const double rss_library = rss_mib();

  ModelOptions o;
  o.preprocess.grid = grid;
  o.distance = a.distance;
  o.landmarks = a.k;
  o.landmark_choice = a.selection;
  o.estimate_dims = a.dims;
  o.threads = a.threads;
  FitReport report;
  const auto t0 = std::chrono::steady_clock::now();
  const Model model = Model::fit(std::move(rows),
                                 {{"charge", true, {}}, {"tendq", false, {}}}, std::move(labels),
                                 std::move(values), o, &report);
  const double fit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double peak = peak_rss_mib();

  // Per-spectrum latency, one thread, spectra already in memory.
  std::vector<Spectrum> queries(static_cast<std::size_t>(std::min(a.queries, 2000)));
  std::vector<float> buffer(static_cast<std::size_t>(grid.size));
  std::vector<int> truth;
  for (auto& q : queries) {
    const int c = static_cast<int>(u01(rng) * 3);
    synthesize(c, 2.5 * u01(rng), buffer.data(), 0.005);
    truth.push_back(c + 2);
    q.energy_ev.resize(grid.size);
    q.intensity.resize(grid.size);
    for (int i = 0; i < grid.size; ++i) {
      q.energy_ev[i] = grid.at(i);
      q.intensity[i] = buffer[static_cast<std::size_t>(i)];
    }
  }
  // Timed separately: preprocessing (resample, background, normalisation, noise estimate) and
  // projection + estimation of the preprocessed spectrum.
  std::vector<double> us, pre_us;
  int correct = 0;
  for (int i = 0; i < a.queries; ++i) {
    const Spectrum& q = queries[static_cast<std::size_t>(i) % queries.size()];
    const auto s0 = std::chrono::steady_clock::now();
    const Prepared p = preprocess(q, model.options().preprocess);
    const auto s1 = std::chrono::steady_clock::now();
    const Estimate e = model.estimate(p);
    const auto s2 = std::chrono::steady_clock::now();
    pre_us.push_back(std::chrono::duration<double, std::micro>(s1 - s0).count());
    us.push_back(std::chrono::duration<double, std::micro>(s2 - s1).count());
    correct += e.values[0] == truth[static_cast<std::size_t>(i) % queries.size()];
  }
  std::sort(us.begin(), us.end());
  std::sort(pre_us.begin(), pre_us.end());
  const auto at = [&](double p) { return us[static_cast<std::size_t>(p * static_cast<double>(us.size() - 1))]; };
  const double pre_p50 = pre_us[pre_us.size() / 2];
  std::printf(
      "n=%ld points=%d k=%d dims=%d distance=%s selection=%s threads=%d library_mib=%.1f "
      "preprocess_s=%.3f landmarks_s=%.3f embed_s=%.3f index_s=%.3f lmds_s=%.3f fit_s=%.3f "
      "rss_before_mib=%.1f rss_library_mib=%.1f peak_mib=%.1f peak_over_library=%.2f "
      "preprocess_us_p50=%.2f estimate_us_p50=%.2f estimate_us_p90=%.2f estimate_us_p99=%.2f "
      "charge_correct=%.4f\n",
      a.n, grid.size, a.k, a.dims, to_string(a.distance),
      a.selection == LandmarkChoice::kRandom ? "random" : "maxmin", a.threads, library_mib,
      report.preprocess_s, report.landmarks_s, report.embed_s, report.index_s,
      report.landmarks_s + report.embed_s, fit_s, rss_before, rss_library, peak,
      (peak - rss_before) / library_mib, pre_p50, at(0.5), at(0.9), at(0.99),
      static_cast<double>(correct) / a.queries);
  return 0;
}
