#include "spectrum_files.hpp"

#include <cstdio>
#include <fstream>
#include <iostream>

#include "xasmap/core/error.hpp"

namespace xasmap::service {

std::vector<OptionSpec> with_spectrum_file_options(std::vector<OptionSpec> options) {
  options.insert(
      options.end(),
      {
          {"energy-column", true, "COL",
           "the energy column: its header name or 1-based number (default: detected)"},
          {"intensity-column", true, "COL",
           "the intensity column, e.g. tey or 3 (default: detected)"},
          {"normalize-by", true, "COL", "divide the intensity by this column, row by row, e.g. i0"},
          {"energy-unit", true, "eV|keV",
           "the unit of the energy column (default eV); keV is multiplied by 1000"},
      });
  return options;
}

SpectrumReadOptions spectrum_read_options(const CliArgs& args) {
  SpectrumReadOptions o;
  for (const auto& [name, target] : {std::pair{"energy-column", &o.energy_column},
                                     std::pair{"intensity-column", &o.intensity_column},
                                     std::pair{"normalize-by", &o.normalize_column}}) {
    if (const auto v = args.value(name)) {
      if (v->empty()) throw UsageError(std::string("--") + name + " needs a column name or number");
      *target = *v;
    }
  }
  const std::string unit = args.value("energy-unit").value_or("eV");
  if (unit == "eV" || unit == "ev") {
    o.energy_unit = EnergyUnit::kEv;
  } else if (unit == "keV" || unit == "kev") {
    o.energy_unit = EnergyUnit::kKev;
  } else {
    throw UsageError("--energy-unit must be eV or keV, not '" + unit + "'");
  }
  return o;
}

std::string spectrum_csv(const Eigen::VectorXd& energy, const Eigen::VectorXd& intensity) {
  std::string text = "energy_eV,intensity\n";
  char line[64];
  for (Eigen::Index i = 0; i < energy.size(); ++i) {
    std::snprintf(line, sizeof line, "%.4f,%.9g\n", energy[i], intensity[i]);
    text += line;
  }
  return text;
}

void write_file_or_stdout(const std::optional<std::string>& file, const std::string& text) {
  if (!file) {
    std::cout << text;
    return;
  }
  std::ofstream out(*file, std::ios::binary);
  if (!out) throw Error("cannot write '" + *file + "'");
  out << text;
  if (!out) throw Error("writing '" + *file + "' failed");
}

}  // namespace xasmap::service
