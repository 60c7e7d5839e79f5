// Per-spectrum cost of the daemon's hot path on a saved model, one thread: preprocess_into and
// estimate_into of spectra as `xasmap bench` offers them (noisy library spectra, over the whole
// library range or a random part of it). Prints the medians and p90, with and without the exact
// ranking of partial windows, and the charge accuracy and 10Dq error of each. With `search`, the
// same spectra estimated as one is while the session offset is not known (estimate_over_offsets
// within +-1 eV), alternated with the plain estimate in the same run. With `edge`, the estimate
// with the edge-step continuum fit (estimation.edge_step_fit) alternated with it off; with
// `edge-step` the same on spectra given a continuum of 0.1-0.3 of their L3 maximum (two
// arctangents of half width 0.5 eV at their L3 and L2 maxima), where the fit removes it and
// estimates again.
//
//   bench_model_path MODEL LIBRARY_DIR [full|partial] [COUNT] [search|edge|edge-step]

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "feed_sources.hpp"
#include "xasmap/core/heldout.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/model.hpp"
#include "xasmap/core/session_offset.hpp"

using namespace xasmap;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_model_path MODEL LIBRARY_DIR [full|partial] [COUNT] [search|edge|edge-step]\n");
    return 64;
  }
  Model model = Model::load(argv[1]);
  const Library lib = load_library(argv[2]);
  const bool full = argc > 3 && std::string(argv[3]) == "full";
  const int count = argc > 4 ? std::stoi(argv[4]) : 20000;
  const std::string mode = argc > 5 ? argv[5] : "";
  const bool compare_search = mode == "search";
  const bool compare_edge = mode == "edge" || mode == "edge-step";
  std::mt19937_64 rng(1);
  service::Perturbation perturb;
  perturb.full_range = full;
  std::vector<service::Source> sources;
  std::vector<std::size_t> truth;
  for (int i = 0; i < 256; ++i) {
    truth.push_back(static_cast<std::size_t>(rng() % lib.spectra.size()));
    sources.push_back(service::measured_like(lib.spectra[truth.back()], perturb, rng));
    if (mode == "edge-step") {
      service::Source& src = sources.back();
      const auto points = static_cast<Eigen::Index>(src.energy.size());
      const WhiteLines lines = white_lines(Eigen::Map<const Eigen::VectorXd>(src.energy.data(), points),
                                           Eigen::Map<const Eigen::VectorXd>(src.intensity.data(), points), 8.0, 14.0);
      const double height = (0.1 + 0.2 * static_cast<double>(rng() % 1000) / 1000.0) * lines.peak;
      for (std::size_t k = 0; k < src.energy.size(); ++k) {
        src.intensity[k] += height * edge_continuum(src.energy[k], lines.l3_ev, lines.l2_ev, 0.5);
      }
    }
  }
  // Two ways of ranking a partial window, alternated three times in this run: every row exactly
  // (estimation.exact_partial_rows, the default for libraries up to 20,000 rows) and the
  // embedding's candidates alone (exact_partial_rows 0). On the whole grid both are the same.
  const long long exact_default = model.options().exact_partial_rows;
  const auto measure = [&](long long exact_rows, double search_ev, bool edge_fit = true) {
    Model& m = model;
    ModelOptions o = m.options();
    o.exact_partial_rows = exact_rows;
    o.edge_step_fit = edge_fit;
    m.set_estimation_options(o);
    Prepared prep;
    Estimate e;
    OffsetSearchScratch scratch;
    std::vector<double> pre, est;
    pre.reserve(static_cast<std::size_t>(count));
    est.reserve(static_cast<std::size_t>(count));
    int charge_ok = 0, novel = 0, stepped = 0;
    double tendq_err = 0;
    for (int i = 0; i < count; ++i) {
      const std::size_t k = static_cast<std::size_t>(i) % sources.size();
      const auto& s = sources[k];
      const Eigen::Map<const Eigen::VectorXd> energy(s.energy.data(), static_cast<Eigen::Index>(s.energy.size()));
      const Eigen::Map<const Eigen::VectorXd> intensity(s.intensity.data(), static_cast<Eigen::Index>(s.intensity.size()));
      const auto t0 = std::chrono::steady_clock::now();
      if (search_ev > 0.0) {
        // Preprocessing is part of each offset's estimate: all of it counts as the estimate.
        estimate_over_offsets(m, energy, intensity, 0.0, search_ev, scratch, e);
      } else {
        preprocess_into(energy, intensity, m.options().preprocess, prep);
      }
      const auto t1 = std::chrono::steady_clock::now();
      if (search_ev <= 0.0) m.estimate_into(prep, e);
      const auto t2 = std::chrono::steady_clock::now();
      // Searched, preprocessing happens once per offset inside the estimate: all of it counts there.
      const auto split = search_ev > 0.0 ? t0 : t1;
      pre.push_back(std::chrono::duration<double, std::micro>(split - t0).count());
      est.push_back(std::chrono::duration<double, std::micro>(t2 - split).count());
      const auto& v = lib.values[truth[k]];
      charge_ok += e.values[0] == v[0];
      tendq_err += std::abs(e.values[1] - v[1]);
      novel += e.novelty > m.options().exact_partial_novelty;
      stepped += e.edge_step > 0;
    }
    std::sort(pre.begin(), pre.end());
    std::sort(est.begin(), est.end());
    const auto at = [](const std::vector<double>& v, double q) { return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))]; };
    // "novel": the estimates whose novelty exceeds exact_partial_novelty, i.e. (with
    // exact_partial_rows 0) the partial windows that the exact ranking would take.
    if (search_ev > 0.0) std::printf("searched +-%.1f eV (preprocessing inside the estimate): ", search_ev);
    if (compare_edge) std::printf("edge-step fit %s: ", edge_fit ? "on" : "off");
    std::printf("%s range, exact_partial_rows %lld: preprocess p50 %.2f us, estimate p50 %.2f us, p90 %.2f us, "
                "p99 %.2f us (%d spectra; charge right %.1f %%, 10Dq MAE %.3f eV, novelty above %.1f: %.1f %%, "
                "continuum removed: %.1f %%)\n",
                full ? "whole" : "part of the", exact_rows, at(pre, 0.5), at(est, 0.5), at(est, 0.9), at(est, 0.99),
                count, 100.0 * charge_ok / count, tendq_err / count, m.options().exact_partial_novelty,
                100.0 * novel / count, 100.0 * stepped / count);
  };
  for (int rep = 0; rep < 3; ++rep) {
    measure(exact_default, 0.0);
    if (compare_search) {
      measure(exact_default, 1.0);
    } else if (compare_edge) {
      measure(exact_default, 0.0, false);
    } else {
      measure(0, 0.0);
    }
  }
  return 0;
}
