#pragma once
// A library of reference spectra, each with a label and named parameters.
//
// Parameters are numbers. Categorical ones (such as `charge`) are compared for equality and voted
// on; continuous ones (such as `tendq`) are averaged. A manifest column is categorical when its
// name is `charge` or `symmetry`, when it ends in `:cat`, when the reader's options list it, or
// when every one of its values is text. A column that mixes numbers and text is refused unless it
// is categorical by one of the first three rules: one stray word in a numeric column must not turn
// the parameter into categories silently. Text values are coded 0, 1, 2, ... in order of
// appearance, and `category_names` keeps the text.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "xasmap/core/embedding.hpp"
#include "xasmap/core/preprocess.hpp"
#include "xasmap/core/simulated_library.hpp"
#include "xasmap/core/spectrum.hpp"

namespace xasmap {

struct ParameterInfo {
  std::string name;
  bool categorical = false;
  std::vector<std::string> category_names;  // for text-valued categories; empty for numbers
  bool operator==(const ParameterInfo&) const = default;
};

struct Library {
  std::vector<ParameterInfo> parameters;
  std::vector<std::string> labels;
  std::vector<Spectrum> spectra;
  std::vector<std::vector<double>> values;  // values[i][p]: parameter p of spectrum i

  std::size_t size() const { return spectra.size(); }
  int parameter_index(const std::string& name) const;  // -1 when absent
  // The library without spectrum `index` (for leave-one-out checks).
  Library without(std::size_t index) const;
};

// How a manifest is read.
struct ManifestOptions {
  // Columns (by name, without `:cat`) that are categorical whatever they hold.
  std::vector<std::string> categorical;
};

// Reads `folder`/manifest.csv (a header `file,<param>,...`, one row per spectrum) and each listed
// spectrum file (read_spectrum). Throws xasmap::Error naming the file and line of the first
// problem: a missing file, a row with the wrong number of fields, an unreadable spectrum, a text
// value in a numeric column (naming the column), or a listed path that leaves the folder (an
// absolute path, or one whose `..` climbs out of it). A matrix library (below) is read as well,
// one Spectrum per row.
Library load_library(const std::filesystem::path& folder, const ManifestOptions& options = {});

// A matrix library, for libraries of up to millions of spectra: a folder holding spectra.npy
// (N x D, float32 or float64, C order), energy.npy (D energies in eV, strictly increasing) and
// manifest.csv with the header `label,<param>,...` and one row per matrix row, in order.
bool is_matrix_library(const std::filesystem::path& folder);  // spectra.npy is there

// A library sampled on one grid, one spectrum per row: what Model::fit(FeatureMatrix&&, ...)
// takes, without a Spectrum object per row.
struct GridLibrary {
  std::vector<ParameterInfo> parameters;
  std::vector<std::string> labels;
  std::vector<std::vector<double>> values;
  FeatureMatrix rows;  // raw intensities on the grid
};

// Reads a matrix library onto `grid`: the stored values when energy.npy is the grid (within
// 1e-6 eV), otherwise each row interpolated linearly, its end values held beyond its range.
// Throws xasmap::Error naming the file and what is wrong (shape, row count, manifest line).
GridLibrary load_grid_library(const std::filesystem::path& folder, const EnergyGrid& grid,
                              const ManifestOptions& options = {});

// Writes a matrix library (creating the folder). Rows are float32 intensities on `energy_ev`.
void save_matrix_library(const std::filesystem::path& folder, const Eigen::VectorXd& energy_ev,
                         const GridLibrary& library);

// A library of simulated spectra on `energy_ev`; parameters are the spectra's labels, with
// `charge` categorical.
Library library_from_simulation(const std::vector<SimulatedSpectrum>& spectra,
                                const Eigen::VectorXd& energy_ev);

}  // namespace xasmap
