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

#include "xasmap/core/library.hpp"

namespace xasmap::service {

// One message's worth of data.
struct Source {
  std::string id;
  std::vector<double> energy, intensity;
  std::vector<std::int64_t> shape;  // stacks only
  std::string meta_label;           // library label, or file name
  double offset_ev = 0;
};

// What a beamline measures of a library spectrum: a random grid (step 0.05-0.2 eV), a calibration
// offset, a linear background and Gaussian noise at the given SNR (relative to the L3 maximum).
struct Perturbation {
  bool clean = false;
  double snr = 30, max_offset_ev = 0.3;
};
Source measured_like(const Spectrum& s, const Perturbation& p, std::mt19937_64& rng);

// A PGM image (P2 or P5, 8-bit) as rows x cols grey levels 0-255.
std::vector<std::vector<int>> read_pgm(const std::filesystem::path& file);
// The built-in phase map: phase 0 everywhere, phase 1 in a disc left of centre and a band on the
// right.
std::vector<std::vector<int>> default_image(int rows, int cols);
// A stack whose pixels are the `phases` (library labels, dark to bright) the image's grey levels
// pick, with noise, on one energy axis and one calibration offset.
Source make_stack(const Library& lib, const std::vector<std::vector<int>>& image,
                  const std::vector<std::string>& phases, const Perturbation& p, std::mt19937_64& rng);

// The size of a --stack option, "RxC" (e.g. 64x64): rows and columns, both positive. Throws
// UsageError otherwise.
std::pair<int, int> parse_stack_size(const std::string& text);

std::vector<double> to_std(const Eigen::VectorXd& v);
std::vector<std::string> split(const std::string& s, char sep);

}  // namespace xasmap::service
