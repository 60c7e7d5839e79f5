#include "xasmap/core/scale_library.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <mutex>

#include "xasmap/core/embedding.hpp"
#include "xasmap/core/error.hpp"

namespace xasmap {

namespace {

// SplitMix64 (Steele, Lea & Flood 2014): a tiny generator that any seed starts well, so each
// row can have its own.
struct SplitMix {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(uniform() * static_cast<double>(n)) % n; }
};

void check(bool ok, const std::string& what) {
  if (!ok) throw Error("scale library: " + what);
}

}  // namespace

ScaleLibrary make_scale_library(const ScaleLibraryOptions& o, const AtomicTable& table,
                                const ProgressCallback& progress) {
  using clock = std::chrono::steady_clock;
  check(!o.ions.empty() && !o.ds_dt_ev.empty() && !o.slater_scales.empty() && !o.broadenings.empty(),
        "ions, ds_dt_ev, slater_scales and broadenings must not be empty");
  check(o.spectra >= 2, "at least 2 spectra");
  check(o.points >= 2 && o.emax_ev > o.emin_ev, "at least 2 points over a positive range");
  check(o.tendq_step_ev > 0 && o.tendq_max_ev >= o.tendq_step_ev, "tendq_step_ev must be > 0 and <= tendq_max_ev");
  check(o.max_shift_ev >= 0 && o.amplitude_min > 0 && o.amplitude_max >= o.amplitude_min, "shift or amplitude range");

  const int n_t = static_cast<int>(std::lround(o.tendq_max_ev / o.tendq_step_ev)) + 1;
  const auto n_ion = o.ions.size(), n_dd = o.ds_dt_ev.size(), n_s = o.slater_scales.size(),
             n_b = o.broadenings.size();
  std::vector<Ion> ions;
  for (const auto& name : o.ions) {
    ions.push_back(parse_ion(name));
    check(o.energy_offset_ev.count(name) == 1, "no energy offset for " + name);
  }

  // Node spectra on a fine grid that reaches past the library grid by the largest shift.
  const double fine_step = 0.01;
  const double fine_min = o.emin_ev - o.max_shift_ev - 0.5;
  const auto fine_n = static_cast<Eigen::Index>(std::ceil((o.emax_ev + o.max_shift_ev + 0.5 - fine_min) / fine_step)) + 1;
  const Eigen::VectorXd fine = Eigen::VectorXd::LinSpaced(fine_n, fine_min, fine_min + fine_step * static_cast<double>(fine_n - 1));
  // node(ion, dd, s, b, t), t fastest.
  const auto node = [&](std::size_t i, std::size_t d, std::size_t s, std::size_t b, int t) {
    return (((i * n_dd + d) * n_s + s) * n_b + b) * static_cast<std::size_t>(n_t) + static_cast<std::size_t>(t);
  };
  const std::size_t simulations = n_ion * n_dd * n_s * static_cast<std::size_t>(n_t);
  Eigen::MatrixXf nodes(fine_n, static_cast<Eigen::Index>(simulations * n_b));  // one node per column
  std::vector<float> node_mean(simulations * n_b);
  ScaleLibrary out;
  out.simulated = static_cast<int>(simulations);
  out.nodes = static_cast<int>(simulations * n_b);

  const auto t0 = clock::now();
  std::mutex mutex;
  int done = 0;
  parallel_for(static_cast<Eigen::Index>(simulations), o.threads, [&](Eigen::Index begin, Eigen::Index end) {
    for (Eigen::Index job = begin; job < end; ++job) {
      auto rest = static_cast<std::size_t>(job);
      const int t = static_cast<int>(rest % static_cast<std::size_t>(n_t));
      rest /= static_cast<std::size_t>(n_t);
      const std::size_t s = rest % n_s;
      rest /= n_s;
      const std::size_t d = rest % n_dd;
      const std::size_t i = rest / n_dd;
      const double scale = o.slater_scales[s];
      MultipletParameters p = make_parameters(ions[i], table.lookup(ions[i]), ParameterScaling{scale, scale, 1.0});
      p.tendq = o.tendq_step_ev * t;
      p.temperature_k = o.temperature_k;
      p.ds = o.ds_dt_ev[d][0];
      p.dt = o.ds_dt_ev[d][1];
      const StickSpectrum sticks = compute_sticks(p);
      for (std::size_t b = 0; b < n_b; ++b) {
        const auto column = static_cast<Eigen::Index>(node(i, d, s, b, t));
        nodes.col(column) = broaden(sticks, o.broadenings[b], fine, o.energy_offset_ev.at(o.ions[i])).cast<float>();
        node_mean[static_cast<std::size_t>(column)] = nodes.col(column).mean();
      }
      std::lock_guard lock(mutex);
      ++done;
      if (progress) progress(done, static_cast<int>(simulations));
    }
  });
  out.simulate_s = std::chrono::duration<double>(clock::now() - t0).count();

  const auto t1 = clock::now();
  GridLibrary& lib = out.library;
  lib.parameters = {{"charge", true, {}},  {"tendq", false, {}},        {"ds", false, {}},
                    {"dt", false, {}},     {"slater_scale", false, {}}, {"lorentz_l3", false, {}}};
  lib.rows.resize(o.spectra, o.points);
  lib.labels.resize(static_cast<std::size_t>(o.spectra));
  lib.values.resize(static_cast<std::size_t>(o.spectra));
  out.energy_ev = Eigen::VectorXd::LinSpaced(o.points, o.emin_ev, o.emax_ev);
  const double centre = 0.5 * (o.emin_ev + o.emax_ev);
  parallel_for(o.spectra, o.threads, [&](Eigen::Index begin, Eigen::Index end) {
    char label[24];
    for (Eigen::Index r = begin; r < end; ++r) {
      SplitMix rng{o.seed * 0x100000001b3ULL + static_cast<std::uint64_t>(r)};
      const std::size_t i = rng.below(n_ion), d = rng.below(n_dd), s = rng.below(n_s), b = rng.below(n_b);
      const double x = o.tendq_max_ev * rng.uniform();
      const int lo = std::min(n_t - 2, static_cast<int>(x / o.tendq_step_ev));
      const double f = std::clamp(x / o.tendq_step_ev - lo, 0.0, 1.0);
      const double shift = o.max_shift_ev * (2 * rng.uniform() - 1);
      const double amp = o.amplitude_min + (o.amplitude_max - o.amplitude_min) * rng.uniform();
      const std::size_t n0 = node(i, d, s, b, lo), n1 = node(i, d, s, b, lo + 1);
      const double slope = o.max_slope_per_ev * (2 * rng.uniform() - 1) *
                           ((1 - f) * node_mean[n0] + f * node_mean[n1]);
      const float* a0 = nodes.col(static_cast<Eigen::Index>(n0)).data();
      const float* a1 = nodes.col(static_cast<Eigen::Index>(n1)).data();
      for (int k = 0; k < o.points; ++k) {
        const double e = out.energy_ev[k];
        const double pos = std::clamp((e - shift - fine_min) / fine_step, 0.0, static_cast<double>(fine_n - 2));
        const auto j = static_cast<Eigen::Index>(pos);
        const double w = pos - static_cast<double>(j);
        const double v0 = (1 - w) * a0[j] + w * a0[j + 1];
        const double v1 = (1 - w) * a1[j] + w * a1[j + 1];
        lib.rows(r, k) = static_cast<float>(amp * ((1 - f) * v0 + f * v1) + slope * (e - centre));
      }
      std::snprintf(label, sizeof label, "s%07lld", static_cast<long long>(r));
      lib.labels[static_cast<std::size_t>(r)] = label;
      lib.values[static_cast<std::size_t>(r)] = {static_cast<double>(ions[i].charge), x, o.ds_dt_ev[d][0],
                                                 o.ds_dt_ev[d][1], o.slater_scales[s],
                                                 o.broadenings[b].lorentz_l3_ev};
    }
  });
  out.rows_s = std::chrono::duration<double>(clock::now() - t1).count();
  return out;
}

}  // namespace xasmap
