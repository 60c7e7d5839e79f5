#include "library_builder.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>

#include "xasmap/core/error.hpp"

namespace xasmap::service {

Eigen::VectorXd energy_grid(const config::GridConfig& grid) {
  const auto n = static_cast<Eigen::Index>(
      std::floor((grid.emax_ev - grid.emin_ev) / grid.step_ev + 1e-9)) + 1;
  Eigen::VectorXd e(n);
  for (Eigen::Index i = 0; i < n; ++i) e[i] = grid.emin_ev + static_cast<double>(i) * grid.step_ev;
  return e;
}

Broadening broadening_of(const config::SimulateConfig& s, double gauss_fwhm_ev, double lorentz_scale) {
  return {lorentz_scale * s.lorentz_fwhm_l3_ev, lorentz_scale * s.lorentz_fwhm_l2_ev, gauss_fwhm_ev,
          s.lifetime_rule == config::LifetimeRule::kSplitEnergy ? LifetimeRule::kSplitEnergy
                                                                : LifetimeRule::kCoreHoleCharacter};
}

Broadening broadening_of(const config::SimulateConfig& s) {
  return broadening_of(s, s.gauss_fwhm_ev.values().front(), s.lorentz_scale.values().front());
}

ParameterScaling scaling_of(const config::SimulateConfig& s, double slater_scale) {
  ParameterScaling scaling;
  scaling.slater_dd = s.slater_scale_dd.value_or(slater_scale);
  scaling.slater_pd = s.slater_scale_pd.value_or(slater_scale);
  scaling.zeta = s.zeta_scale;
  return scaling;
}

ParameterScaling scaling_of(const config::SimulateConfig& s) {
  return scaling_of(s, s.slater_scale.values().front());
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
  for (const auto& [name, sweep] : charge_transfer_sweeps(s)) {
    if (sweep->values().size() > 1) names.emplace_back(name);
  }
  if (s.charge_transfer.configurations > 1) {
    names.emplace_back("n_d");
    names.emplace_back("covalency");
  }
  for (const auto& [name, sweep] : nuisance_sweeps(s)) {
    if (sweep->values().size() > 1) names.emplace_back(name);
  }
  return names;
}

std::vector<std::pair<std::string, const config::Sweep*>> charge_transfer_sweeps(const config::SimulateConfig& s) {
  const config::ChargeTransferConfig& ct = s.charge_transfer;
  if (ct.configurations <= 1) return {};
  return {{"delta", &ct.delta_ev}, {"udd", &ct.udd_ev}, {"upd", &ct.upd_ev}, {"veg", &ct.veg_ev}, {"vt2g", &ct.vt2g_ev}};
}

std::vector<std::pair<std::string, const config::Sweep*>> nuisance_sweeps(const config::SimulateConfig& s) {
  return {{"slater_scale", &s.slater_scale},
          {"temperature_k", &s.temperature_k},
          {"gauss_fwhm_ev", &s.gauss_fwhm_ev},
          {"lorentz_scale", &s.lorentz_scale}};
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
  const auto labelled = [&](const char* name) { return std::find(names.begin(), names.end(), name) != names.end(); };
  const bool with_ds = labelled("ds"), with_dt = labelled("dt");
  const bool with_slater = labelled("slater_scale"), with_temperature = labelled("temperature_k");
  const bool with_gauss = labelled("gauss_fwhm_ev"), with_lorentz = labelled("lorentz_scale");
  std::vector<SimulationJob> jobs;
  for (const std::string& ion_name : s.ions) {
    const Ion ion = parse_ion(ion_name);
    const auto offset = s.energy_offset_ev.find(ion_name);
    if (offset == s.energy_offset_ev.end()) {
      throw Error("library.simulate.energy_offset_ev has no entry for " + ion_name);
    }
    // The first job of each Hamiltonian (Slater scale, 10Dq, Ds, Dt): its temperature and width
    // variants share its diagonalisation.
    std::map<std::array<double, 9>, int> hamiltonian;
    // The charge-transfer settings: one (unused) set without charge transfer.
    const config::ChargeTransferConfig& ctc = s.charge_transfer;
    const bool ct = ctc.configurations > 1;
    std::vector<std::array<double, 5>> ct_sets;
    const auto shift = ctc.delta_shift_ev.find(ion_name);
    const double delta_shift = shift == ctc.delta_shift_ev.end() ? 0.0 : shift->second;
    for (const double swept : ctc.delta_ev.values()) {
      const double delta = swept + delta_shift;
      for (const double udd : ctc.udd_ev.values()) {
        for (const double upd : ctc.upd_ev.values()) {
          for (const double veg : ctc.veg_ev.values()) {
            for (const double vt2g : ctc.vt2g_ev.values()) ct_sets.push_back({delta, udd, upd, veg, vt2g});
          }
        }
      }
    }
    if (!ct) ct_sets.resize(1);
    const std::vector<std::pair<std::string, const config::Sweep*>> ct_sweeps =
        charge_transfer_sweeps(s);
    for (const double slater : s.slater_scale.values()) {
      MultipletParameters base = make_parameters(ion, table.lookup(ion), scaling_of(s, slater));
      if (ct) {
        base.charge_transfer.configurations = ctc.configurations;
        base.charge_transfer.ligand_tendq = ctc.ligand_tendq_ev;
        base.charge_transfer.transferred = transferred_terms_of(ion, table, scaling_of(s, slater));
      }
      for (const double temperature : s.temperature_k.values()) {
        for (const double tendq : s.tendq_ev.values()) {
          for (const double ds : s.ds_ev.values()) {
            for (const double dt : s.dt_ev.values()) {
              for (const std::array<double, 5>& cts : ct_sets) {
                SimulationJob job;
                job.parameters = base;
                if (ct) {
                  ChargeTransferParameters& c = job.parameters.charge_transfer;
                  c.delta = cts[0];
                  c.udd = cts[1];
                  c.upd = cts[2];
                  c.v_eg = cts[3];
                  c.v_t2g = cts[4];
                }
                for (const auto& [name, value] : s.overrides)
                  set_parameter(job.parameters, name, value);
                job.parameters.symmetry = symmetry_of(s.symmetry);
                job.parameters.tendq = tendq;
                job.parameters.ds = ds;
                job.parameters.dt = dt;
                job.parameters.exchange_field = s.exchange_field_ev;
                job.parameters.temperature_k = temperature;
                job.parameters.polarization = polarization_of(s.polarization);
                job.energy_offset_ev = offset->second;
                job.label =
                    ion.element + std::to_string(ion.charge) + "_tendq" + format_value(tendq);
                job.labels = {{"charge", ion.charge}, {"tendq", tendq}};
                const auto label = [&](bool with, const char* name, const char* tag, double v) {
                  if (!with) return;
                  job.labels[name] = v;
                  job.label += std::string("_") + tag + format_value(v);
                };
                label(with_ds, "ds", "ds", ds);
                label(with_dt, "dt", "dt", dt);
                label(with_slater, "slater_scale", "slater", slater);
                label(with_temperature, "temperature_k", "T", temperature);
                for (std::size_t k = 0; k < ct_sweeps.size(); ++k) {
                  label(ct_sweeps[k].second->values().size() > 1, ct_sweeps[k].first.c_str(),
                        ct_sweeps[k].first.c_str(), cts[k]);
                }
                // The job diagonalising this Hamiltonian: this one's first width variant, or an
                // earlier job at another temperature.
                const int root = hamiltonian
                                     .try_emplace({slater, tendq, ds, dt, cts[0], cts[1], cts[2],
                                                   cts[3], cts[4]},
                                                  static_cast<int>(jobs.size()))
                                     .first->second;
                for (const double gauss : s.gauss_fwhm_ev.values()) {
                  for (const double lorentz : s.lorentz_scale.values()) {
                    SimulationJob variant = job;
                    variant.broadening = broadening_of(s, gauss, lorentz);
                    variant.same_hamiltonian_as = static_cast<int>(jobs.size()) == root ? -1 : root;
                    if (with_gauss) {
                      variant.labels["gauss_fwhm_ev"] = gauss;
                      variant.label += "_gauss" + format_value(gauss);
                    }
                    if (with_lorentz) {
                      variant.labels["lorentz_scale"] = lorentz;
                      variant.label += "_lorentz" + format_value(lorentz);
                    }
                    jobs.push_back(std::move(variant));
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  return jobs;
}

}  // namespace xasmap::service
