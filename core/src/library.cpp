#include "xasmap/core/library.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>
#include <unordered_set>

#include "xasmap/core/error.hpp"
#include "xasmap/core/npy.hpp"

namespace xasmap {

int Library::parameter_index(const std::string& name) const {
  for (std::size_t i = 0; i < parameters.size(); ++i) {
    if (parameters[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

Library Library::without(std::size_t index) const {
  Library out = *this;
  out.labels.erase(out.labels.begin() + static_cast<long>(index));
  out.spectra.erase(out.spectra.begin() + static_cast<long>(index));
  out.values.erase(out.values.begin() + static_cast<long>(index));
  return out;
}

namespace {

bool is_number(std::string_view s, double& v) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

// manifest.csv: a header and one row of comma-separated fields per spectrum, kept as one text
// with field offsets (a matrix library's manifest may list millions of rows).
struct Manifest {
  std::filesystem::path path;
  std::vector<std::string> header;
  std::string text;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> fields;  // [begin, end) in text
  std::vector<int> lines;                                        // file line of each row
  std::size_t rows() const { return lines.size(); }
  std::string_view field(std::size_t r, std::size_t c) const {
    const auto [b, e] = fields[r * header.size() + c];
    return std::string_view(text).substr(b, e - b);
  }
  std::string where(std::size_t r) const { return path.string() + ":" + std::to_string(lines[r]); }
};

std::string_view trim(std::string_view f) {
  const auto a = f.find_first_not_of(" \t");
  if (a == std::string_view::npos) return {};
  return f.substr(a, f.find_last_not_of(" \t") - a + 1);
}

// Reads the manifest; its first column must be `key` (file or label).
Manifest read_manifest(const std::filesystem::path& folder, const std::string& key) {
  Manifest m;
  m.path = folder / "manifest.csv";
  std::ifstream in(m.path);
  if (!in) throw Error(m.path.string() + ": cannot read the library manifest");
  std::string line;
  std::vector<std::string_view> parts;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    if (line.empty() || line[0] == '#') continue;
    parts.clear();
    std::string_view rest(line);
    while (true) {
      const auto comma = rest.find(',');
      parts.push_back(trim(rest.substr(0, comma)));
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    if (m.header.empty()) {
      m.header.assign(parts.begin(), parts.end());
      if (m.header.size() < 2 || m.header[0] != key) {
        throw Error(m.path.string() + ":" + std::to_string(line_number) + ": expected a header '" + key +
                    ",<parameter>,...'");
      }
      continue;
    }
    if (parts.size() != m.header.size()) {
      throw Error(m.path.string() + ":" + std::to_string(line_number) + ": expected " +
                  std::to_string(m.header.size()) + " fields, found " + std::to_string(parts.size()));
    }
    for (const auto f : parts) {
      const auto begin = static_cast<std::uint32_t>(m.text.size());
      m.text.append(f);
      m.fields.emplace_back(begin, static_cast<std::uint32_t>(m.text.size()));
    }
    if (m.text.size() > std::numeric_limits<std::uint32_t>::max() / 2) {
      throw Error(m.path.string() + ": manifest too large");
    }
    m.lines.push_back(line_number);
  }
  if (m.rows() == 0) throw Error(m.path.string() + ": no spectra listed");
  return m;
}

// The parameters (columns after the first) and each row's values. A column is categorical when
// named charge or symmetry, marked `:cat`, listed in `options`, or holding only text; text values
// are coded 0, 1, ... in order of appearance. A column mixing numbers and text is refused unless
// it is categorical by name, mark or option. Keys (the first column) must be unique.
void read_parameters(const Manifest& m, const ManifestOptions& options, std::vector<ParameterInfo>& parameters,
                     std::vector<std::vector<double>>& values) {
  const std::size_t cols = m.header.size();
  parameters.clear();
  for (std::size_t c = 1; c < cols; ++c) {
    ParameterInfo p;
    p.name = m.header[c];
    if (p.name.size() > 4 && p.name.ends_with(":cat")) {
      p.name.resize(p.name.size() - 4);
      p.categorical = true;
    }
    p.categorical = p.categorical || p.name == "charge" || p.name == "symmetry" ||
                    std::find(options.categorical.begin(), options.categorical.end(), p.name) !=
                        options.categorical.end();
    std::size_t numbers = 0, first_text = m.rows();
    double v = 0;
    for (std::size_t r = 0; r < m.rows(); ++r) {
      if (is_number(m.field(r, c), v)) {
        ++numbers;
      } else if (first_text == m.rows()) {
        first_text = r;
      }
    }
    const bool all_numbers = numbers == m.rows();
    if (!all_numbers && numbers > 0 && !p.categorical) {
      throw Error(m.where(first_text) + ": column '" + m.header[c] + "' (column " + std::to_string(c + 1) +
                  ") holds the text '" + std::string(m.field(first_text, c)) + "' among " +
                  std::to_string(numbers) +
                  " numbers; fix the value, or declare the column categorical (name it '" + p.name +
                  ":cat', or list it in library.categorical)");
    }
    if (!all_numbers) {
      p.categorical = true;
      for (std::size_t r = 0; r < m.rows(); ++r) {
        const std::string_view f = m.field(r, c);
        if (std::find(p.category_names.begin(), p.category_names.end(), f) == p.category_names.end()) {
          p.category_names.emplace_back(f);
        }
      }
    }
    parameters.push_back(p);
  }
  std::unordered_set<std::string_view> seen;
  seen.reserve(m.rows());
  values.assign(m.rows(), {});
  for (std::size_t r = 0; r < m.rows(); ++r) {
    if (!seen.insert(m.field(r, 0)).second) {
      throw Error(m.where(r) + ": '" + std::string(m.field(r, 0)) + "' listed twice");
    }
    auto& row = values[r];
    row.reserve(cols - 1);
    for (std::size_t c = 1; c < cols; ++c) {
      const ParameterInfo& p = parameters[c - 1];
      double v = 0;
      if (p.category_names.empty()) {
        is_number(m.field(r, c), v);
      } else {
        v = static_cast<double>(std::find(p.category_names.begin(), p.category_names.end(), m.field(r, c)) -
                                p.category_names.begin());
      }
      row.push_back(v);
    }
  }
}

const char* const kMatrixFile = "spectra.npy";
const char* const kEnergyFile = "energy.npy";

// energy.npy, checked; and spectra.npy opened, its shape checked against it and the manifest.
Eigen::VectorXd open_matrix(const std::filesystem::path& folder, const Manifest& m, std::ifstream& in,
                            NpyArray& array) {
  const Eigen::VectorXd energy = read_npy_vector(folder / kEnergyFile);
  if (energy.size() < 2) throw Error((folder / kEnergyFile).string() + ": at least 2 energies are needed");
  for (Eigen::Index i = 0; i < energy.size(); ++i) {
    if (!std::isfinite(energy[i]) || (i > 0 && !(energy[i] > energy[i - 1]))) {
      throw Error((folder / kEnergyFile).string() + ": energies must be finite and strictly increasing (index " +
                  std::to_string(i) + ")");
    }
  }
  array = open_npy(folder / kMatrixFile, in);
  const std::string name = (folder / kMatrixFile).string();
  if (array.shape.size() != 2) throw Error(name + ": a two-dimensional array (spectra x energies) was expected");
  if (array.shape[1] != energy.size()) {
    throw Error(name + ": " + std::to_string(array.shape[1]) + " energies per row, but energy.npy holds " +
                std::to_string(energy.size()));
  }
  if (static_cast<std::size_t>(array.shape[0]) != m.rows()) {
    throw Error(name + ": " + std::to_string(array.shape[0]) + " rows, but manifest.csv lists " +
                std::to_string(m.rows()) + " spectra");
  }
  return energy;
}

}  // namespace

bool is_matrix_library(const std::filesystem::path& folder) {
  return std::filesystem::exists(folder / kMatrixFile);
}

GridLibrary load_grid_library(const std::filesystem::path& folder, const EnergyGrid& grid,
                              const ManifestOptions& options) {
  const Manifest m = read_manifest(folder, "label");
  GridLibrary lib;
  read_parameters(m, options, lib.parameters, lib.values);
  lib.labels.reserve(m.rows());
  for (std::size_t r = 0; r < m.rows(); ++r) lib.labels.emplace_back(m.field(r, 0));
  std::ifstream in;
  NpyArray array;
  const Eigen::VectorXd energy = open_matrix(folder, m, in, array);
  const auto rows = static_cast<Eigen::Index>(m.rows());
  bool same = energy.size() == grid.size;
  for (Eigen::Index i = 0; same && i < energy.size(); ++i) same = std::abs(energy[i] - grid.at(static_cast<int>(i))) <= 1e-6;
  lib.rows.resize(rows, grid.size);
  if (same) {
    read_npy_values(in, array, folder / kMatrixFile, lib.rows.data(), static_cast<std::size_t>(lib.rows.size()));
    return lib;
  }
  // Interpolation weights once, then row by row.
  std::vector<Eigen::Index> left(static_cast<std::size_t>(grid.size));
  std::vector<float> t(static_cast<std::size_t>(grid.size));
  const Eigen::Index n = energy.size();
  Eigen::Index j = 0;
  for (int i = 0; i < grid.size; ++i) {
    const double e = grid.at(i);
    while (j + 2 < n && energy[j + 1] < e) ++j;
    left[static_cast<std::size_t>(i)] = j;
    t[static_cast<std::size_t>(i)] = static_cast<float>(std::clamp((e - energy[j]) / (energy[j + 1] - energy[j]), 0.0, 1.0));
  }
  std::vector<float> row(static_cast<std::size_t>(n));
  for (Eigen::Index r = 0; r < rows; ++r) {
    read_npy_values(in, array, folder / kMatrixFile, row.data(), row.size());
    for (int i = 0; i < grid.size; ++i) {
      const auto a = static_cast<std::size_t>(left[static_cast<std::size_t>(i)]);
      const float w = t[static_cast<std::size_t>(i)];
      lib.rows(r, i) = (1 - w) * row[a] + w * row[a + 1];
    }
  }
  return lib;
}

void save_matrix_library(const std::filesystem::path& folder, const Eigen::VectorXd& energy_ev,
                         const GridLibrary& library) {
  if (library.rows.cols() != energy_ev.size() || static_cast<std::size_t>(library.rows.rows()) != library.labels.size() ||
      library.values.size() != library.labels.size()) {
    throw Error("save_matrix_library: rows, energies, labels and values disagree in size");
  }
  std::filesystem::create_directories(folder);
  write_npy(folder / kEnergyFile, energy_ev);
  write_npy(folder / kMatrixFile, library.rows.data(), library.rows.rows(), library.rows.cols());
  std::ofstream out(folder / "manifest.csv");
  out << "label";
  for (const auto& p : library.parameters) {
    out << ',' << p.name << (p.categorical && p.category_names.empty() && p.name != "charge" && p.name != "symmetry" ? ":cat" : "");
  }
  out << '\n';
  char number[32];
  for (std::size_t r = 0; r < library.labels.size(); ++r) {
    out << library.labels[r];
    for (std::size_t c = 0; c < library.parameters.size(); ++c) {
      const auto& p = library.parameters[c];
      const double v = library.values[r][c];
      if (!p.category_names.empty()) {
        out << ',' << p.category_names.at(static_cast<std::size_t>(v));
      } else {
        const auto [end, ec] = std::to_chars(number, number + sizeof number, v);
        out << ',' << std::string_view(number, static_cast<std::size_t>(end - number));
      }
    }
    out << '\n';
  }
  out.close();
  if (!out) throw Error((folder / "manifest.csv").string() + ": write failed");
}

Library load_library(const std::filesystem::path& folder, const ManifestOptions& options) {
  if (is_matrix_library(folder)) {
    const Manifest m = read_manifest(folder, "label");
    Library lib;
    read_parameters(m, options, lib.parameters, lib.values);
    std::ifstream in;
    NpyArray array;
    const Eigen::VectorXd energy = open_matrix(folder, m, in, array);
    std::vector<float> row(static_cast<std::size_t>(energy.size()));
    for (std::size_t r = 0; r < m.rows(); ++r) {
      read_npy_values(in, array, folder / kMatrixFile, row.data(), row.size());
      Spectrum s{energy, Eigen::Map<const Eigen::VectorXf>(row.data(), energy.size()).cast<double>()};
      lib.labels.emplace_back(m.field(r, 0));
      lib.spectra.push_back(std::move(s));
    }
    return lib;
  }
  const Manifest m = read_manifest(folder, "file");
  Library lib;
  read_parameters(m, options, lib.parameters, lib.values);
  for (std::size_t r = 0; r < m.rows(); ++r) {
    const std::string file(m.field(r, 0));
    // Listed files stay inside the folder: no absolute paths, no `..` that climbs out of it
    // (checked on the text, so it holds whatever exists on disk).
    const std::filesystem::path relative = std::filesystem::path(file).lexically_normal();
    if (file.empty() || relative.is_absolute() || relative.has_root_name() || relative.has_root_directory() ||
        relative.empty() || *relative.begin() == ".." || relative == ".") {
      throw Error(m.where(r) + ": the path '" + file + "' leaves the library folder " + folder.string() +
                  " (list files relative to it, without '..' above it)");
    }
    try {
      lib.spectra.push_back(read_spectrum(folder / file));
    } catch (const Error& e) {
      throw Error(m.where(r) + ": " + e.what());
    }
    std::string label = file;
    if (const auto dot = label.rfind('.'); dot != std::string::npos) label.resize(dot);
    lib.labels.push_back(label);
  }
  return lib;
}

Library library_from_simulation(const std::vector<SimulatedSpectrum>& spectra,
                                const Eigen::VectorXd& energy_ev) {
  Library lib;
  if (spectra.empty()) return lib;
  for (const auto& [name, value] : spectra.front().labels) {
    ParameterInfo p;
    p.name = name;
    p.categorical = name == "charge";
    lib.parameters.push_back(p);
  }
  // Manifest order: charge, tendq, then the rest alphabetically (std::map order otherwise).
  std::stable_sort(lib.parameters.begin(), lib.parameters.end(),
                   [](const ParameterInfo& a, const ParameterInfo& b) {
                     const auto rank = [](const std::string& n) {
                       return n == "charge" ? 0 : n == "tendq" ? 1 : 2;
                     };
                     return rank(a.name) < rank(b.name);
                   });
  for (const auto& s : spectra) {
    lib.labels.push_back(s.label);
    lib.spectra.push_back(Spectrum{energy_ev, s.intensity});
    std::vector<double> values;
    for (const auto& p : lib.parameters) values.push_back(s.labels.at(p.name));
    lib.values.push_back(std::move(values));
  }
  return lib;
}

}  // namespace xasmap
