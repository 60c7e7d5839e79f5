#include "synthetic_library.hpp"

#include <algorithm>
#include <cassert>
#include <map>

#include "xasmap/core/atomic_data.hpp"

namespace xasmap::bench {

namespace {

// The fine grid the base spectra are simulated on.
constexpr double kFineMinEv = 634.0;
constexpr double kFineMaxEv = 661.0;
constexpr double kFineStepEv = 0.01;
constexpr int kFinePoints = 2701;
constexpr int kTendqSteps = 25;  // 10Dq = 0, 0.1, ..., 2.5 eV: 26 spectra per charge

}  // namespace

EnergyGrid bench_grid(int points) {
  assert(points >= 2);
  return EnergyGrid::from_range(635.0, 660.0, 25.0 / (points - 1));
}

Eigen::VectorXd grid_energies(const EnergyGrid& grid) {
  Eigen::VectorXd e(grid.size);
  for (int i = 0; i < grid.size; ++i) e[i] = grid.at(i);
  return e;
}

std::vector<SimulatedSpectrum> simulate_mn_base(int threads) {
  const AtomicTable table = AtomicTable::load(std::string(XASMAP_SOURCE_DIR) + "/data/atomic");
  // L3 positions of each ion on the absolute axis.
  const std::map<std::string, double> offsets{{"Mn2+", 645.05}, {"Mn3+", 646.55}, {"Mn4+", 647.25}};
  std::vector<SimulationJob> jobs;
  for (const char* ion : {"Mn2+", "Mn3+", "Mn4+"}) {
    const Ion i = parse_ion(ion);
    for (int t = 0; t <= kTendqSteps; ++t) {
      SimulationJob job;
      job.parameters = make_parameters(i, table.lookup(i), ParameterScaling{});
      job.parameters.tendq = 0.1 * t;
      job.energy_offset_ev = offsets.at(ion);
      jobs.push_back(job);
    }
  }
  const Eigen::VectorXd fine = Eigen::VectorXd::LinSpaced(kFinePoints, kFineMinEv, kFineMaxEv);
  return simulate_library(jobs, {0.4, 0.8, 0.3}, fine, threads);
}

SpectrumSynthesizer::SpectrumSynthesizer(const std::vector<SimulatedSpectrum>& base,
                                         std::uint64_t seed)
    : base_(&base), rng_(seed) {
  assert(base.size() == 3 * (kTendqSteps + 1));
}

void SpectrumSynthesizer::synthesize(int charge, double tendq_ev,
                                     const Eigen::Ref<const Eigen::VectorXd>& energy_ev,
                                     double noise, float* out) {
  const int lo = std::min(kTendqSteps - 1, static_cast<int>(tendq_ev / 0.1));
  const double f = tendq_ev / 0.1 - lo;
  const auto first = static_cast<std::size_t>(charge * (kTendqSteps + 1) + lo);
  const Eigen::VectorXd& a0 = (*base_)[first].intensity;
  const Eigen::VectorXd& a1 = (*base_)[first + 1].intensity;
  const double shift = 0.2 * (uniform() - 0.5), amp = 0.8 + 0.4 * uniform();
  const double slope = 0.002 * (uniform() - 0.5);
  for (Eigen::Index i = 0; i < energy_ev.size(); ++i) {
    const double e = energy_ev[i];
    const double pos = (e - shift - kFineMinEv) / kFineStepEv;
    const auto j = static_cast<Eigen::Index>(pos);
    assert(j >= 0 && j + 1 < kFinePoints);
    const double t = pos - static_cast<double>(j);
    const double v0 = (1 - t) * a0[j] + t * a0[j + 1];
    const double v1 = (1 - t) * a1[j] + t * a1[j + 1];
    out[i] = static_cast<float>(amp * ((1 - f) * v0 + f * v1) + slope * (e - 645.0) +
                                noise * n01_(rng_));
  }
}

SyntheticLibrary make_library(SpectrumSynthesizer& synth, const EnergyGrid& grid, long n) {
  const Eigen::VectorXd energy = grid_energies(grid);
  SyntheticLibrary lib;
  lib.rows.resize(n, grid.size);
  lib.labels.resize(static_cast<std::size_t>(n));
  lib.values.resize(static_cast<std::size_t>(n));
  for (long r = 0; r < n; ++r) {
    const int c = synth.draw_charge();
    const double x = synth.draw_tendq_ev();
    synth.synthesize(c, x, energy, 0.0, lib.rows.row(r).data());
    lib.values[static_cast<std::size_t>(r)] = {static_cast<double>(c + 2), x};
    lib.labels[static_cast<std::size_t>(r)] = std::to_string(r);
  }
  return lib;
}

std::vector<ParameterInfo> mn_parameters() { return {{"charge", true, {}}, {"tendq", false, {}}}; }

Spectrum noisy_query(SpectrumSynthesizer& synth, const Eigen::Ref<const Eigen::VectorXd>& energy_ev,
                     double noise, int& charge, double* tendq_ev) {
  charge = synth.draw_charge();
  const double x = synth.draw_tendq_ev();
  if (tendq_ev) *tendq_ev = x;
  std::vector<float> buffer(static_cast<std::size_t>(energy_ev.size()));
  synth.synthesize(charge, x, energy_ev, noise, buffer.data());
  Spectrum s;
  s.energy_ev = energy_ev;
  s.intensity = Eigen::Map<const Eigen::VectorXf>(buffer.data(), energy_ev.size()).cast<double>();
  return s;
}

}  // namespace xasmap::bench
