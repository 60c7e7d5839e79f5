#pragma once
// How the commands that read spectrum files (estimate, feed) are told which columns hold what, and
// the energies' unit; and how the commands that write them (simulate, library) do.

#include <Eigen/Core>

#include <optional>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "xasmap/core/spectrum.hpp"

namespace xasmap::service {

// `options` followed by --energy-column, --intensity-column, --normalize-by and --energy-unit. (A
// function, not a global: the commands' option lists are globals of other files.)
std::vector<OptionSpec> with_spectrum_file_options(std::vector<OptionSpec> options);

// The reading those options ask for (detection where they are absent). Throws UsageError for an
// --energy-unit other than eV or keV, or an empty column.
SpectrumReadOptions spectrum_read_options(const CliArgs& args);

// A spectrum as CSV text: the header energy_eV,intensity, then one line per point.
std::string spectrum_csv(const Eigen::VectorXd& energy, const Eigen::VectorXd& intensity);

// `text` to `file`, or to standard output without one. Throws Error naming the file.
void write_file_or_stdout(const std::optional<std::string>& file, const std::string& text);

}  // namespace xasmap::service
