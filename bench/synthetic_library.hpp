#pragma once
// The synthetic Mn library of the benchmarks (bench_scale, bench_micro): any number of spectra
// drawn from the 78 simulated Mn 2p spectra (Mn2+/3+/4+, Oh, 10Dq 0-2.5 eV in 0.1 eV steps).
//
// A synthetic spectrum is the base spectra of its charge interpolated linearly in 10Dq, shifted in
// energy by up to +-0.1 eV, scaled by 0.8-1.2, on a linear background (slope up to +-0.001 per
// eV), plus Gaussian noise. Everything is seeded: the same seed and the same calls give the same
// spectra, and bench_scale's published figures depend on the exact order of the draws below.

#include <Eigen/Core>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "xasmap/core/embedding.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/preprocess.hpp"
#include "xasmap/core/simulated_library.hpp"
#include "xasmap/core/spectrum.hpp"

namespace xasmap::bench {

// Noise of the benchmarks' queries: about SNR 100 against the L3 maximum of a library spectrum.
inline constexpr double kQueryNoise = 0.005;
// The library generator's seed in bench_scale.
inline constexpr std::uint64_t kLibrarySeed = 42;

// The benchmark grid: `points` points from 635 to 660 eV (points >= 2).
EnergyGrid bench_grid(int points);
// The energies of every point of `grid`, in eV.
Eigen::VectorXd grid_energies(const EnergyGrid& grid);

// The 78 base spectra, simulated on `threads` threads (<= 0: every core) on a fine grid of
// 634-661 eV in 0.01 eV steps; 3 x 26 in the order Mn2+, Mn3+, Mn4+, 10Dq ascending. Takes a
// few seconds. Throws what simulate_library() throws.
std::vector<SimulatedSpectrum> simulate_mn_base(int threads);

// Draws synthetic spectra from the base spectra with its own seeded generator.
class SpectrumSynthesizer {
 public:
  // `base` (from simulate_mn_base()) must outlive the synthesizer.
  SpectrumSynthesizer(const std::vector<SimulatedSpectrum>& base, std::uint64_t seed);

  // Writes one spectrum of charge index `charge` (0, 1, 2: Mn2+, 3+, 4+) and 10Dq `tendq_ev` in
  // [0, 2.5] at `energy_ev` (each within 634.2-660.8 eV) into out[0 .. size-1], with white noise
  // of standard deviation `noise`. Draws a shift, an amplitude and a slope, then one normal
  // deviate per point, also when noise is 0.
  void synthesize(int charge, double tendq_ev, const Eigen::Ref<const Eigen::VectorXd>& energy_ev,
                  double noise, float* out);

  // Uniform in [0, 1) from the generator.
  double uniform() { return u01_(rng_); }
  // A charge index (0-2) and a 10Dq (eV), uniformly: the draws of one library row, in this order.
  int draw_charge() { return static_cast<int>(uniform() * 3); }
  double draw_tendq_ev() { return 2.5 * uniform(); }

 private:
  const std::vector<SimulatedSpectrum>* base_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> u01_;
  std::normal_distribution<double> n01_;
};

// A library of noise-free synthetic spectra on a grid, ready for Model::fit(FeatureMatrix&&, ...).
struct SyntheticLibrary {
  FeatureMatrix rows;                       // n x grid.size
  std::vector<std::string> labels;          // the row index
  std::vector<std::vector<double>> values;  // {charge (2, 3, 4), tendq (eV)} of each row
};

// n rows drawn with `synth` on `grid` (n * grid.size floats).
SyntheticLibrary make_library(SpectrumSynthesizer& synth, const EnergyGrid& grid, long n);
// The parameters of a synthetic library: charge (categorical) and tendq.
std::vector<ParameterInfo> mn_parameters();

// One noisy query at `energy_ev` (intensities rounded to float, as the library's are): draws its
// charge index (returned in `charge`), then its 10Dq, then the spectrum.
Spectrum noisy_query(SpectrumSynthesizer& synth, const Eigen::Ref<const Eigen::VectorXd>& energy_ev,
                     double noise, int& charge, double* tendq_ev = nullptr);

}  // namespace xasmap::bench
