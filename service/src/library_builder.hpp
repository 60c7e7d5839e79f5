#pragma once
// Turns the library.simulate section of the config into simulation jobs for core.

#include <Eigen/Core>
#include <vector>

#include "xasmap/config/config.hpp"
#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/simulated_library.hpp"

namespace xasmap::service {

// The grid of library.grid as a vector of energies (eV).
Eigen::VectorXd energy_grid(const config::GridConfig& grid);

Broadening broadening_of(const config::SimulateConfig& s);
ParameterScaling scaling_of(const config::SimulateConfig& s);
CrystalSymmetry symmetry_of(config::Symmetry s);
BeamPolarization polarization_of(config::Polarization p);

// One job per ion x 10Dq x Ds x Dt, labelled with charge and tendq (and ds, dt when swept).
// Throws xasmap::Error when the atomic table lacks an ion.
std::vector<SimulationJob> make_jobs(const config::SimulateConfig& s, const AtomicTable& table);

// The parameter names a job set is labelled with, in manifest order.
std::vector<std::string> label_names(const config::SimulateConfig& s);

}  // namespace xasmap::service
