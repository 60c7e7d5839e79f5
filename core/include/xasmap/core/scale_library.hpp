#pragma once
// A synthetic library at beamline scale (up to ~10^6 spectra), reproducible from a seed.
//
// Simulated nodes: every ion x 10Dq (0 to tendq_max in tendq_step) x (Ds, Dt) pair x Slater
// scaling, each broadened with every broadening set. Each library spectrum then picks an ion,
// a (Ds, Dt), a scaling and a broadening at random, draws 10Dq uniformly over [0, tendq_max] and
// interpolates linearly between the two simulated 10Dq nodes either side; it is shifted in
// energy, scaled and given a linear background within the ranges below. Rows are drawn from a
// generator seeded by (seed, row), so the library does not depend on the thread count.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/multiplet.hpp"
#include "xasmap/core/simulated_library.hpp"

namespace xasmap {

struct ScaleLibraryOptions {
  std::int64_t spectra = 600000;
  double emin_ev = 635.0;
  double emax_ev = 660.0;
  int points = 500;
  std::vector<std::string> ions{"Mn2+", "Mn3+", "Mn4+"};
  // Absolute energy = simulator's relative energy + offset (as library.simulate.energy_offset_ev).
  std::map<std::string, double> energy_offset_ev{{"Mn2+", 645.05}, {"Mn3+", 646.35}, {"Mn4+", 647.10}};
  double temperature_k = 300.0;              // as library.simulate.temperature_k
  double tendq_max_ev = 2.5;
  double tendq_step_ev = 0.1;
  std::vector<std::array<double, 2>> ds_dt_ev{{0.0, 0.0}, {0.05, 0.01}, {-0.05, -0.01}};
  std::vector<double> slater_scales{0.7, 0.8, 0.9};
  std::vector<Broadening> broadenings{{0.3, 0.6, 0.2}, {0.4, 0.8, 0.3}, {0.5, 1.0, 0.4}};
  double max_shift_ev = 0.1;                 // energy offset, uniform in [-max, max]
  double amplitude_min = 0.8, amplitude_max = 1.2;
  double max_slope_per_ev = 0.002;           // linear background, relative to the mean intensity
  std::uint64_t seed = 1;
  int threads = 0;                           // 0: every hardware thread
};

struct ScaleLibrary {
  GridLibrary library;   // parameters: charge, tendq, ds, dt, slater_scale, lorentz_l3
  Eigen::VectorXd energy_ev;
  int simulated = 0;     // multiplet calculations
  int nodes = 0;         // broadened node spectra
  double simulate_s = 0;
  double rows_s = 0;
};

// Throws xasmap::Error for options out of range (no ions, spectra < 2, points < 2, steps <= 0)
// and whatever the simulator throws.
ScaleLibrary make_scale_library(const ScaleLibraryOptions& options, const AtomicTable& table,
                                const ProgressCallback& progress = {});

}  // namespace xasmap
