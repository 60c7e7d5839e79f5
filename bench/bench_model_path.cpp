// Per-spectrum cost of the daemon's hot path on a saved model, one thread: preprocess_into and
// estimate_into of spectra as `xasmap bench` offers them (noisy library spectra, over the whole
// library range or a random part of it). Prints the medians and p90, with and without the exact
// ranking of partial windows, and the charge accuracy and 10Dq error of each.
//
//   bench_model_path MODEL LIBRARY_DIR [full|partial] [COUNT]

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "feed_sources.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/model.hpp"

using namespace xasmap;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_model_path MODEL LIBRARY_DIR [full|partial] [COUNT]\n");
    return 64;
  }
  Model model = Model::load(argv[1]);
  const Library lib = load_library(argv[2]);
  const bool full = argc > 3 && std::string(argv[3]) == "full";
  const int count = argc > 4 ? std::stoi(argv[4]) : 20000;
  std::mt19937_64 rng(1);
  service::Perturbation perturb;
  perturb.full_range = full;
  std::vector<service::Source> sources;
  std::vector<std::size_t> truth;
  for (int i = 0; i < 256; ++i) {
    truth.push_back(static_cast<std::size_t>(rng() % lib.spectra.size()));
    sources.push_back(service::measured_like(lib.spectra[truth.back()], perturb, rng));
  }
  // Two ways of ranking a partial window, alternated three times in this run: every row exactly
  // (estimation.exact_partial_rows, the default for libraries up to 20,000 rows) and the
  // embedding's candidates alone (exact_partial_rows 0). On the whole grid both are the same.
  const long long exact_default = model.options().exact_partial_rows;
  const auto measure = [&](long long exact_rows) {
    Model& m = model;
    ModelOptions o = m.options();
    o.exact_partial_rows = exact_rows;
    m.set_estimation_options(o);
    Prepared prep;
    Estimate e;
    std::vector<double> pre, est;
    pre.reserve(static_cast<std::size_t>(count));
    est.reserve(static_cast<std::size_t>(count));
    int charge_ok = 0, novel = 0;
    double tendq_err = 0;
    for (int i = 0; i < count; ++i) {
      const std::size_t k = static_cast<std::size_t>(i) % sources.size();
      const auto& s = sources[k];
      const Eigen::Map<const Eigen::VectorXd> energy(s.energy.data(), static_cast<Eigen::Index>(s.energy.size()));
      const Eigen::Map<const Eigen::VectorXd> intensity(s.intensity.data(), static_cast<Eigen::Index>(s.intensity.size()));
      const auto t0 = std::chrono::steady_clock::now();
      preprocess_into(energy, intensity, m.options().preprocess, prep);
      const auto t1 = std::chrono::steady_clock::now();
      m.estimate_into(prep, e);
      const auto t2 = std::chrono::steady_clock::now();
      pre.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      est.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
      const auto& v = lib.values[truth[k]];
      charge_ok += e.values[0] == v[0];
      tendq_err += std::abs(e.values[1] - v[1]);
      novel += e.novelty > m.options().exact_partial_novelty;
    }
    std::sort(pre.begin(), pre.end());
    std::sort(est.begin(), est.end());
    const auto at = [](const std::vector<double>& v, double q) { return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))]; };
    // "novel": the estimates whose novelty exceeds exact_partial_novelty, i.e. (with
    // exact_partial_rows 0) the partial windows that the exact ranking would take.
    std::printf("%s range, exact_partial_rows %lld: preprocess p50 %.2f us, estimate p50 %.2f us, p90 %.2f us, "
                "p99 %.2f us (%d spectra; charge right %.1f %%, 10Dq MAE %.3f eV, novelty above %.1f: %.1f %%)\n",
                full ? "whole" : "part of the", exact_rows, at(pre, 0.5), at(est, 0.5), at(est, 0.9), at(est, 0.99),
                count, 100.0 * charge_ok / count, tendq_err / count, m.options().exact_partial_novelty,
                100.0 * novel / count);
  };
  for (int rep = 0; rep < 3; ++rep) {
    measure(exact_default);
    measure(0);
  }
  return 0;
}
