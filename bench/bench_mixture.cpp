// Per-spectrum cost of mixed valence (Model::mixture) on a saved model, one thread, beside the
// estimate it follows in the same run: two-component mixtures (2+/3+, 3+/4+, 2+/4+, random atom
// fractions) of held-out Mn spectra (10Dq midway between the default grid's points, Slater 0.8,
// 300 K), measured as the held-out sets are (noise SNR 30-100, offsets, backgrounds, random
// grids) over the whole grid or a part of it. Prints the first call (which builds the library's
// basis and the window's rows), then medians and p90 of preprocess_into, estimate_into and
// mixture, and the mean-valence error.
//
//   bench_mixture MODEL [full|partial] [COUNT]
//
// XASMAP_BENCH_SHIFT_SEARCH=EV sets MixtureOptions::shift_search_ev (default 0.5): what searching
// the components' common shift costs, and what it is worth in mean-valence error.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/heldout.hpp"
#include "xasmap/core/mixture.hpp"
#include "xasmap/core/model.hpp"

using namespace xasmap;
using Clock = std::chrono::steady_clock;

namespace {

double micros(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::micro>(b - a).count();
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_mixture MODEL [full|partial] [COUNT]\n");
    return 64;
  }
  const Clock::time_point t_load = Clock::now();
  const Model model = Model::load(argv[1]);
  const bool full = !(argc > 2 && std::string(argv[2]) == "partial");
  const int count = argc > 3 ? std::stoi(argv[3]) : 600;
  const double load_ms = micros(t_load, Clock::now()) / 1000.0;

  HeldOutPhysics physics;
  for (int k = 0; k < 25; k += 3) physics.tendq_ev.push_back(0.05 + 0.1 * k);
  physics.energy_offset_ev = {{"Mn2+", 645.05}, {"Mn3+", 646.35}, {"Mn4+", 647.1}};  // deploy/xasmapd.yaml
  const AtomicTable table = AtomicTable::load(std::string(XASMAP_SOURCE_DIR) + "/data/atomic");
  const HeldOutClean clean = simulate_heldout(physics, table);
  std::mt19937_64 rng(7);
  HeldOutClean mixed;
  mixed.energy_ev = clean.energy_ev;
  std::vector<double> valence;
  const int pairs[3][2] = {{2, 3}, {3, 4}, {2, 4}};
  std::vector<std::vector<std::size_t>> of_charge(5);
  for (std::size_t i = 0; i < clean.entries.size(); ++i) of_charge[static_cast<std::size_t>(clean.entries[i].charge)].push_back(i);
  const int distinct = std::max(1, count / 4);
  for (int i = 0; i < distinct; ++i) {
    const auto& pair = pairs[i % 3];
    const auto& la = of_charge[static_cast<std::size_t>(pair[0])];
    const auto& lb = of_charge[static_cast<std::size_t>(pair[1])];
    const auto& a = clean.entries[la[rng() % la.size()]];
    const auto& b = clean.entries[lb[rng() % lb.size()]];
    const double f = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    HeldOutClean::Entry e = a;
    e.intensity = f * a.intensity + (1.0 - f) * b.intensity;
    e.peak = e.intensity.maxCoeff();
    mixed.entries.push_back(std::move(e));
    valence.push_back(f * pair[0] + (1.0 - f) * pair[1]);
  }
  HeldOutMeasurement m;
  m.seed = 11;
  m.realisations = 4;
  if (!full) {  // one scan range, as a beamline's repeated scans (each window is built once)
    m.start_min_ev = m.start_max_ev = 637.0;
    m.end_min_ev = m.end_max_ev = 654.0;
    m.step_min_ev = m.step_max_ev = 0.1;
  }
  const std::vector<HeldOutSpectrum> spectra = measure_heldout(mixed, m);

  MixtureOptions o;
  for (const char* ion : {"Mn2+", "Mn3+", "Mn4+"}) o.holes[parse_ion(ion).charge] = holes_of_ion(ion);
  if (const char* v = std::getenv("XASMAP_BENCH_SHIFT_SEARCH")) o.shift_search_ev = std::atof(v);
  Prepared p;
  Estimate e;
  std::vector<double> pre, est, mix;
  double first_ms = 0, abs_error = 0;
  int judged = 0;
  for (std::size_t i = 0; i < spectra.size(); ++i) {
    const Spectrum& s = spectra[i].spectrum;
    const Clock::time_point t0 = Clock::now();
    try {
      preprocess_into(s.energy_ev, s.intensity, model.options().preprocess, p);
    } catch (const PreprocessError&) {
      continue;
    }
    const Clock::time_point t1 = Clock::now();
    model.estimate_into(p, e);
    const Clock::time_point t2 = Clock::now();
    const Mixture x = model.mixture(p, e, o);
    const Clock::time_point t3 = Clock::now();
    if (i == 0) {
      first_ms = micros(t2, t3) / 1000.0;  // builds the basis and this window's rows
      continue;
    }
    pre.push_back(micros(t0, t1));
    est.push_back(micros(t1, t2));
    mix.push_back(micros(t2, t3));
    abs_error += std::abs(x.mean_value - valence[i % valence.size()]);  // realisation-major
    ++judged;
  }
  if (judged == 0) {
    std::fprintf(stderr, "bench_mixture: no spectrum could be judged\n");
    return 1;
  }
  std::printf("model %s loaded in %.0f ms; %s range, %d mixtures; first mixture call %.0f ms\n", argv[1], load_ms,
              full ? "whole" : "part", judged, first_ms);
  std::printf("preprocess p50 %.1f us | estimate p50 %.1f us, p90 %.1f us | mixture p50 %.1f us, p90 %.1f us "
              "(%.1fx the estimate) | mean-valence MAE %.3f\n",
              percentile(pre, 0.5), percentile(est, 0.5), percentile(est, 0.9), percentile(mix, 0.5),
              percentile(mix, 0.9), percentile(mix, 0.5) / percentile(est, 0.5), abs_error / judged);
  return 0;
}
