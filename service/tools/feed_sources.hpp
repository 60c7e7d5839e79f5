#pragma once
// Synthetic acquisitions for the feed and the load generator: library spectra as a beamline
// would measure them, and STXM stacks built from a phase map.

#include <Eigen/Core>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cli_args.hpp"
#include "xasmap/core/library.hpp"

namespace xasmap::service {

// One message's worth of data.
struct Source {
  std::string id;
  std::vector<double> energy, intensity;
  std::vector<float> intensity_f4;  // instead of intensity: a stack read as float32 (NeXus)
  std::vector<std::int64_t> shape;  // stacks only
  std::string meta_label;           // library label, or file name
  double offset_ev = 0;
};

// What a beamline measures of a library spectrum: a random grid (step 0.05-0.2 eV), a calibration
// offset, a linear background and Gaussian noise at the given SNR (relative to the L3 maximum).
// The grid covers a random part of the spectrum's range (starting 0.5-2 eV in, ending 0.5-3 eV
// short), or with full_range all of it: a fixed scan over the library's range. A stack's axis
// has stack_energies points over that range (0: 0.1 eV steps).
struct Perturbation {
  bool clean = false;
  double snr = 30, max_offset_ev = 0.3;
  bool full_range = false;
  int stack_energies = 0;
};
Source measured_like(const Spectrum& s, const Perturbation& p, std::mt19937_64& rng);

// A PGM image (P2 or P5, 8-bit) as rows x cols grey levels 0-255.
std::vector<std::vector<int>> read_pgm(const std::filesystem::path& file);
// The built-in phase map: phase 0 everywhere, the last phase in a disc left of centre and a band
// on the right, and below the disc a strip whose grey level rises from 0 to 255 left to right:
// a gradient of atom fractions between the phases (a front where one has turned into the other,
// as in a partly reduced or delithiated particle).
std::vector<std::vector<int>> default_image(int rows, int cols);
// A stack of the `phases` (library labels, dark to bright), with noise, on one energy axis and one
// calibration offset. Grey level g sits at position t = g / 255 x (phases - 1) along the phases: a
// pixel is phase floor(t) and the next one mixed by atom fractions 1 - frac(t) and frac(t) (the
// library's intensities are per atom, the simulator's sum-rule scale), so the levels
// k x 255 / (phases - 1) are pure phases.
Source make_stack(const Library& lib, const std::vector<std::vector<int>>& image,
                  const std::vector<std::string>& phases, const Perturbation& p, std::mt19937_64& rng);

// The size of a --stack option, "RxC" or "RxCxE" (e.g. 64x64, 256x256x200): rows, columns and,
// optionally, energies (0 when not given), all positive. Throws UsageError otherwise.
struct StackSize {
  int rows = 0, cols = 0, energies = 0;
};
StackSize parse_stack_size(const std::string& text);

// The --coverage option: true for "full", false for "partial" or absent; UsageError otherwise.
bool coverage_is_full(const CliArgs& args);

std::vector<double> to_std(const Eigen::VectorXd& v);
std::vector<std::string> split(const std::string& s, char sep);

}  // namespace xasmap::service
