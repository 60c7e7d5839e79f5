#include "xasmap/core/heldout.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>

#include "xasmap/core/error.hpp"
#include "xasmap/core/simulated_library.hpp"

namespace xasmap {

namespace {

double interpolate(const Eigen::VectorXd& x, const Eigen::VectorXd& y, double at) {
  if (at <= x[0]) return y[0];
  const Eigen::Index n = x.size();
  if (at >= x[n - 1]) return y[n - 1];
  const double step = x[1] - x[0];
  const auto j = std::min<Eigen::Index>(static_cast<Eigen::Index>((at - x[0]) / step), n - 2);
  const double t = (at - x[j]) / step;
  return (1 - t) * y[j] + t * y[j + 1];
}

}  // namespace

HeldOutClean simulate_heldout(const HeldOutPhysics& physics, const AtomicTable& table, int threads) {
  if (physics.tendq_ev.empty() || physics.ions.empty()) {
    throw Error("held-out set: no ions or no 10Dq values");
  }
  std::vector<SimulationJob> jobs;
  std::vector<double> zeta2p;
  for (const std::string& name : physics.ions) {
    const Ion ion = parse_ion(name);
    const auto offset = physics.energy_offset_ev.find(ion.name());
    if (offset == physics.energy_offset_ev.end()) {
      throw Error("held-out set: no energy offset for " + ion.name());
    }
    const ParameterScaling scaling{physics.slater_scale, physics.slater_scale, 1.0};
    const MultipletParameters base = make_parameters(ion, table.lookup(ion), scaling);
    for (const double tendq : physics.tendq_ev) {
      SimulationJob job;
      job.parameters = base;
      job.parameters.tendq = tendq;
      job.parameters.temperature_k = physics.temperature_k;
      if (physics.ds_ev != 0.0 || physics.dt_ev != 0.0) {
        job.parameters.symmetry = CrystalSymmetry::kD4h;
        job.parameters.ds = physics.ds_ev;
        job.parameters.dt = physics.dt_ev;
      }
      job.energy_offset_ev = offset->second;
      job.label = ion.name();
      job.labels = {{"charge", ion.charge}, {"tendq", tendq}};
      jobs.push_back(job);
      zeta2p.push_back(base.zeta2p);
    }
  }
  HeldOutClean out;
  // 0.02 eV is well below the narrowest width (a 0.15 eV instrument), and 610-680 eV holds any
  // offset a measurement adds to spectra read on 620-670 eV.
  out.energy_ev = Eigen::VectorXd::LinSpaced(3501, 610.0, 680.0);
  const Eigen::VectorXd& fine = out.energy_ev;
  std::vector<SimulatedSpectrum> simulated = simulate_library(jobs, physics.broadening, fine, threads);
  out.entries.resize(simulated.size());
  for (std::size_t i = 0; i < simulated.size(); ++i) {
    HeldOutClean::Entry& c = out.entries[i];
    c.intensity = std::move(simulated[i].intensity);
    const Eigen::VectorXd& y = c.intensity;
    c.charge = static_cast<int>(simulated[i].labels.at("charge"));
    c.tendq_ev = simulated[i].labels.at("tendq");
    // L2 lies 1.5 zeta(2p) above L3: its maximum is sought from zeta(2p) above the L3 maximum.
    const WhiteLines lines = white_lines(fine, y, zeta2p[i], 2.5 * zeta2p[i]);
    c.peak = lines.peak;
    c.l3_ev = lines.l3_ev;
    c.l2_ev = lines.l2_ev;
  }
  return out;
}

std::vector<HeldOutSpectrum> measure_heldout(const HeldOutClean& clean, const HeldOutMeasurement& m) {
  const Eigen::VectorXd& fine = clean.energy_ev;
  std::mt19937_64 rng(m.seed);
  std::uniform_real_distribution<double> u01;
  const auto uniform = [&](double lo, double hi) { return lo + (hi - lo) * u01(rng); };
  std::normal_distribution<double> n01;
  const double session = m.session_offset_ev;
  std::vector<HeldOutSpectrum> out;
  out.reserve(clean.entries.size() * static_cast<std::size_t>(std::max(0, m.realisations)));
  for (int r = 0; r < m.realisations; ++r) {
    for (const HeldOutClean::Entry& c : clean.entries) {
      HeldOutSpectrum h;
      h.charge = c.charge;
      h.tendq_ev = c.tendq_ev;
      h.offset_ev = session + uniform(-m.offset_ev, m.offset_ev);
      h.snr = uniform(m.snr_min, m.snr_max);
      const double step = uniform(m.step_min_ev, m.step_max_ev);
      const double lo = uniform(m.start_min_ev, m.start_max_ev);
      const double hi = uniform(m.end_min_ev, m.end_max_ev);
      const double scale = uniform(0.5, 2.0);
      h.edge_step = uniform(m.edge_step_min, m.edge_step_max);
      const double edge = h.edge_step * c.peak;
      const double level = uniform(-m.background_level, m.background_level) * c.peak;
      const double slope = uniform(-m.background_slope, m.background_slope) * c.peak;
      const double width = m.edge_step_width_max_ev > m.edge_step_width_ev
                               ? uniform(m.edge_step_width_ev, m.edge_step_width_max_ev)
                               : m.edge_step_width_ev;
      const double onset = m.edge_step_shift_ev > 0.0 ? uniform(-m.edge_step_shift_ev, m.edge_step_shift_ev) : 0.0;
      const double sigma = c.peak / h.snr;
      const auto n = static_cast<Eigen::Index>(std::floor((hi - lo) / step)) + 1;
      h.spectrum.energy_ev.resize(n);
      h.spectrum.intensity.resize(n);
      for (Eigen::Index k = 0; k < n; ++k) {
        const double e = lo + static_cast<double>(k) * step;
        const double x = e - h.offset_ev;  // where the sample's own spectrum is read
        const double continuum = edge_continuum(x, c.l3_ev + onset, c.l2_ev + onset, width);
        h.spectrum.energy_ev[k] = e;
        h.spectrum.intensity[k] = scale * (interpolate(fine, c.intensity, x) + edge * continuum + level +
                                           slope * (e - 0.5 * (lo + hi)) + sigma * n01(rng));
      }
      out.push_back(std::move(h));
    }
  }
  return out;
}

std::vector<HeldOutSpectrum> make_heldout(const HeldOutPhysics& physics, const HeldOutMeasurement& m,
                                          const AtomicTable& table, int threads) {
  return measure_heldout(simulate_heldout(physics, table, threads), m);
}

WhiteLines white_lines(const Eigen::Ref<const Eigen::VectorXd>& energy_ev, const Eigen::Ref<const Eigen::VectorXd>& intensity,
                       double l2_from_ev, double l2_to_ev) {
  WhiteLines w;
  if (intensity.size() == 0) return w;
  Eigen::Index i3 = 0;
  w.peak = intensity.maxCoeff(&i3);
  w.l3_ev = energy_ev[i3];
  w.l2_ev = w.l3_ev + 0.5 * (l2_from_ev + l2_to_ev);
  double best = -std::numeric_limits<double>::infinity();
  for (Eigen::Index k = 0; k < energy_ev.size(); ++k) {
    if (energy_ev[k] >= w.l3_ev + l2_from_ev && energy_ev[k] <= w.l3_ev + l2_to_ev && intensity[k] > best) {
      best = intensity[k];
      w.l2_ev = energy_ev[k];
    }
  }
  return w;
}

double edge_continuum(double energy_ev, double l3_ev, double l2_ev, double half_width_ev) {
  return (2.0 / 3.0) * (0.5 + std::atan((energy_ev - l3_ev) / half_width_ev) / std::numbers::pi) +
         (1.0 / 3.0) * (0.5 + std::atan((energy_ev - l2_ev) / half_width_ev) / std::numbers::pi);
}

}  // namespace xasmap
