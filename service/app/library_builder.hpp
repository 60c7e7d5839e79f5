#pragma once
// Turns the library.simulate section of the config into simulation jobs for core.

#include <Eigen/Core>
#include <string>
#include <utility>
#include <vector>

#include "xasmap/config/config.hpp"
#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/simulated_library.hpp"

namespace xasmap::service {

// The grid of library.grid as a vector of energies (eV).
Eigen::VectorXd energy_grid(const config::GridConfig& grid);

// The first (or only) value of each swept nuisance setting; the overloads take given values.
Broadening broadening_of(const config::SimulateConfig& s);
Broadening broadening_of(const config::SimulateConfig& s, double gauss_fwhm_ev, double lorentz_scale);
ParameterScaling scaling_of(const config::SimulateConfig& s);
ParameterScaling scaling_of(const config::SimulateConfig& s, double slater_scale);
CrystalSymmetry symmetry_of(config::Symmetry s);
BeamPolarization polarization_of(config::Polarization p);

// One job per ion x Slater scale x temperature x 10Dq x Ds x Dt x charge-transfer settings x
// Gaussian width x lifetime scale,
// labelled with charge and tendq and with each other setting that is swept (more than one
// value). Temperature and width variants of one spectrum share its diagonalisation
// (SimulationJob::same_hamiltonian_as).
// Throws xasmap::Error when the atomic table lacks an ion.
std::vector<SimulationJob> make_jobs(const config::SimulateConfig& s, const AtomicTable& table);

// The parameter names a job set is labelled with, in manifest order. With charge transfer the
// simulated spectra also carry n_d and covalency (from their ground states, SimulatedSpectrum).
std::vector<std::string> label_names(const config::SimulateConfig& s);

// The charge-transfer sweeps that may have several values, by parameter name: delta, udd, upd,
// veg, vt2g.
std::vector<std::pair<std::string, const config::Sweep*>> charge_transfer_sweeps(const config::SimulateConfig& s);


// The nuisance settings that may be swept, by the parameter name they are reported under:
// slater_scale, temperature_k, gauss_fwhm_ev, lorentz_scale.
std::vector<std::pair<std::string, const config::Sweep*>> nuisance_sweeps(const config::SimulateConfig& s);

}  // namespace xasmap::service
