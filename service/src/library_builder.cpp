#include "library_builder.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "xasmap/core/error.hpp"

namespace xasmap::service {

Eigen::VectorXd energy_grid(const config::GridConfig& grid) {
  const auto n = static_cast<Eigen::Index>(
      std::floor((grid.emax_ev - grid.emin_ev) / grid.step_ev + 1e-9)) + 1;
  Eigen::VectorXd e(n);
  for (Eigen::Index i = 0; i < n; ++i) e[i] = grid.emin_ev + static_cast<double>(i) * grid.step_ev;
  return e;
}

Broadening broadening_of(const config::SimulateConfig& s) {
  return {s.lorentz_fwhm_l3_ev, s.lorentz_fwhm_l2_ev, s.gauss_fwhm_ev,
          s.lifetime_rule == config::LifetimeRule::kSplitEnergy ? LifetimeRule::kSplitEnergy
                                                                : LifetimeRule::kCoreHoleCharacter};
}

ParameterScaling scaling_of(const config::SimulateConfig& s) {
  ParameterScaling scaling;
  scaling.slater_dd = s.slater_scale_dd.value_or(s.slater_scale);
  scaling.slater_pd = s.slater_scale_pd.value_or(s.slater_scale);
  scaling.zeta = s.zeta_scale;
  return scaling;
}

CrystalSymmetry symmetry_of(config::Symmetry s) {
  return s == config::Symmetry::kD4h ? CrystalSymmetry::kD4h : CrystalSymmetry::kOh;
}

BeamPolarization polarization_of(config::Polarization p) {
  switch (p) {
    case config::Polarization::kIsotropic:
      return BeamPolarization::kIsotropic;
    case config::Polarization::kX:
      return BeamPolarization::kX;
    case config::Polarization::kY:
      return BeamPolarization::kY;
    case config::Polarization::kZ:
      return BeamPolarization::kZ;
    case config::Polarization::kLeft:
      return BeamPolarization::kLeft;
    case config::Polarization::kRight:
      return BeamPolarization::kRight;
  }
  return BeamPolarization::kIsotropic;
}

std::vector<std::string> label_names(const config::SimulateConfig& s) {
  std::vector<std::string> names{"charge", "tendq"};
  if (s.ds_ev.values().size() > 1) names.emplace_back("ds");
  if (s.dt_ev.values().size() > 1) names.emplace_back("dt");
  return names;
}

namespace {
std::string format_value(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3g", v);
  return buffer;
}
}  // namespace

std::vector<SimulationJob> make_jobs(const config::SimulateConfig& s, const AtomicTable& table) {
  const std::vector<std::string> names = label_names(s);
  const bool with_ds = std::find(names.begin(), names.end(), "ds") != names.end();
  const bool with_dt = std::find(names.begin(), names.end(), "dt") != names.end();
  std::vector<SimulationJob> jobs;
  for (const std::string& ion_name : s.ions) {
    const Ion ion = parse_ion(ion_name);
    const MultipletParameters base = make_parameters(ion, table.lookup(ion), scaling_of(s));
    const auto offset = s.energy_offset_ev.find(ion_name);
    if (offset == s.energy_offset_ev.end()) {
      throw Error("library.simulate.energy_offset_ev has no entry for " + ion_name);
    }
    for (const double tendq : s.tendq_ev.values()) {
      for (const double ds : s.ds_ev.values()) {
        for (const double dt : s.dt_ev.values()) {
          SimulationJob job;
          job.parameters = base;
          for (const auto& [name, value] : s.overrides) set_parameter(job.parameters, name, value);
          job.parameters.symmetry = symmetry_of(s.symmetry);
          job.parameters.tendq = tendq;
          job.parameters.ds = ds;
          job.parameters.dt = dt;
          job.parameters.exchange_field = s.exchange_field_ev;
          job.parameters.temperature_k = s.temperature_k;
          job.parameters.polarization = polarization_of(s.polarization);
          job.energy_offset_ev = offset->second;
          job.label = ion.element + std::to_string(ion.charge) + "_tendq" + format_value(tendq);
          job.labels = {{"charge", ion.charge}, {"tendq", tendq}};
          if (with_ds) {
            job.labels["ds"] = ds;
            job.label += "_ds" + format_value(ds);
          }
          if (with_dt) {
            job.labels["dt"] = dt;
            job.label += "_dt" + format_value(dt);
          }
          jobs.push_back(std::move(job));
        }
      }
    }
  }
  return jobs;
}

}  // namespace xasmap::service
