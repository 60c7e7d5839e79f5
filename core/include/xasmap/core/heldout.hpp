#pragma once
// Held-out validation spectra: simulated spectra the estimator never saw, made the way a beamline
// would measure them. Each set fixes the physics (10Dq values between the library's grid points,
// Slater reduction, temperature, lifetime and instrument widths, tetragonal distortion) and draws
// the measurement (energy offsets, grids, scales, backgrounds, an L3/L2 edge-step continuum,
// noise, part-range windows) from a seeded generator. docs/validation.md reports the sets.

#include <Eigen/Core>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/multiplet.hpp"
#include "xasmap/core/spectrum.hpp"

namespace xasmap {

struct HeldOutPhysics {
  std::vector<std::string> ions{"Mn2+", "Mn3+", "Mn4+"};
  std::vector<double> tendq_ev;              // the 10Dq values simulated for every ion
  double slater_scale = 0.8;                 // every Slater integral
  double temperature_k = 300.0;
  double ds_ev = 0.0, dt_ev = 0.0;           // nonzero: D4h
  Broadening broadening{0.4, 0.8, 0.3, LifetimeRule::kCoreHoleCharacter};
  // The absolute energy of each ion's relative axis (the library's calibration).
  std::map<std::string, double> energy_offset_ev;
};

struct HeldOutMeasurement {
  int realisations = 4;                      // measured spectra per simulated spectrum
  double snr_min = 30.0, snr_max = 100.0;    // noise sigma = L3 maximum / SNR, SNR uniform
  double offset_ev = 0.3;                    // per-spectrum offset, uniform in +-offset_ev
  double session_offset_ev = 0.0;            // one common offset of the whole set (a beamline's)
  double edge_step_min = 0.0, edge_step_max = 0.0;  // step height / L3 maximum, uniform
  double edge_step_width_ev = 0.5;           // arctangent half width of each step
  // With edge_step_width_max_ev above edge_step_width_ev: each spectrum's half width uniform in
  // between; with edge_step_shift_ev: both steps moved from the L3 and L2 maxima by one uniform
  // draw in +-edge_step_shift_ev (a continuum onset above or below the white lines' maxima).
  double edge_step_width_max_ev = 0.0;
  double edge_step_shift_ev = 0.0;
  double background_level = 0.2;             // constant, uniform in +-level x L3 maximum
  double background_slope = 0.01;            // per eV, uniform in +-slope x L3 maximum
  double step_min_ev = 0.05, step_max_ev = 0.2;    // grid step, uniform
  // The energy range: start uniform in [start_min, start_max], end in [end_min, end_max].
  double start_min_ev = 632.0, start_max_ev = 635.0;
  double end_min_ev = 660.0, end_max_ev = 663.0;
  std::uint64_t seed = 1;
};

struct HeldOutSpectrum {
  Spectrum spectrum;
  int charge = 0;
  double tendq_ev = 0;
  double offset_ev = 0;                      // session + per-spectrum offset applied
  double snr = 0;
  double edge_step = 0;                      // the continuum's height / the L3 maximum
};

// The simulated (clean) spectra of a set's physics, on a fine absolute grid, with where their L3
// and L2 maxima lie: computed once, measured by any number of HeldOutMeasurements.
struct HeldOutClean {
  Eigen::VectorXd energy_ev;
  struct Entry {
    int charge = 0;
    double tendq_ev = 0;
    Eigen::VectorXd intensity;
    double l3_ev = 0, l2_ev = 0, peak = 0;
  };
  std::vector<Entry> entries;
};

// Simulates every (ion, 10Dq) of `physics`. Throws xasmap::Error when an ion has no energy offset
// or a calculation fails. `threads` <= 0: every hardware thread.
HeldOutClean simulate_heldout(const HeldOutPhysics& physics, const AtomicTable& table, int threads = 0);

// A spectrum's white lines: its highest point (L3) and the highest point from l2_from_ev to
// l2_to_ev above it (L2; midway between the two when no point lies there), on ascending energies.
struct WhiteLines {
  double l3_ev = 0, l2_ev = 0;
  double peak = 0;  // the intensity at L3
};
WhiteLines white_lines(const Eigen::Ref<const Eigen::VectorXd>& energy_ev, const Eigen::Ref<const Eigen::VectorXd>& intensity,
                       double l2_from_ev, double l2_to_ev);

// An L3/L2 edge-step continuum of unit height at `energy_ev`: two arctangent steps of half width
// `half_width_ev`, 2:1 (the 2p3/2 and 2p1/2 occupations), centred at l3_ev and l2_ev.
double edge_continuum(double energy_ev, double l3_ev, double l2_ev, double half_width_ev);

// Measures every clean spectrum `realisations` times. Deterministic for a given seed.
std::vector<HeldOutSpectrum> measure_heldout(const HeldOutClean& clean, const HeldOutMeasurement& measurement);

// Both steps.
std::vector<HeldOutSpectrum> make_heldout(const HeldOutPhysics& physics,
                                          const HeldOutMeasurement& measurement,
                                          const AtomicTable& table, int threads = 0);

}  // namespace xasmap
