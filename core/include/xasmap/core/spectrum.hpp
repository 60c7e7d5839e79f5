#pragma once
// A spectrum (energy in eV, strictly increasing, with intensity) and reading one from a file.

#include <Eigen/Core>
#include <filesystem>
#include <optional>
#include <string>

namespace xasmap {

struct Spectrum {
  Eigen::VectorXd energy_ev;  // strictly increasing
  Eigen::VectorXd intensity;
};

// Why a spectrum cannot be used, or nothing: lengths differ, fewer than `min_points` points, a
// non-finite value (naming the array and index), or energy not strictly increasing (naming the
// index).
std::optional<std::string> check_spectrum(const Spectrum& s, int min_points = 8);
std::optional<std::string> check_spectrum(const Eigen::Ref<const Eigen::VectorXd>& energy_ev,
                                          const Eigen::Ref<const Eigen::VectorXd>& intensity, int min_points = 8);

enum class EnergyUnit { kEv, kKev };

struct SpectrumReadOptions {
  // Column names (or 1-based numbers as text); empty = detect. Detection takes the first column
  // whose name contains "energy" (else column 1) and the first other column whose name contains
  // "intensity", "mu", "xas", "absorption" or "norm" (else the column after the energy).
  std::string energy_column;
  std::string intensity_column;
  // A column (name or 1-based number) to divide the intensity by, row by row, e.g. I0 for a file of
  // energy, I0 and TEY; empty = none. A zero in it is an error naming the line.
  std::string normalize_column;
  // The unit of the energy column; keV energies are multiplied by 1000 before anything else.
  EnergyUnit energy_unit = EnergyUnit::kEv;
  // Digitised curves often hold a few backwards or repeated energies: sort by energy and average
  // repeated energies (true), or refuse the file (false).
  bool sort_and_merge = true;
};

// What read_spectrum() did, for logs and reports.
struct SpectrumReadReport {
  int rows = 0;
  int merged_duplicates = 0;
  bool reordered = false;
  std::string energy_column;
  std::string intensity_column;
  std::string normalize_column;  // empty when the intensity was not divided by a column
};

// Reads CSV (comma, or semicolon on a line that holds one), whitespace-separated (.xy, .dat, as
// CTM4XAS writes them) or XDI text. Lines starting with '#' are comments, except XDI's
// "# Column.N: name" lines, which name columns. A UTF-8 byte-order mark and CR line ends are
// accepted. A first line that is not numeric is a header. Throws xasmap::Error naming the file and
// line of the first problem (saying so when the numbers use decimal commas), or the reason from
// check_spectrum(); "no such file" or "is a directory" for such a path, and the format of a binary
// file (HDF5, PNG, gzip, zip, TIFF, PDF) recognised by its first bytes.
Spectrum read_spectrum(const std::filesystem::path& file, const SpectrumReadOptions& options = {},
                       SpectrumReadReport* report = nullptr);

}  // namespace xasmap
