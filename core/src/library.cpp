#include "xasmap/core/library.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "xasmap/core/error.hpp"

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

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) {
    const auto a = field.find_first_not_of(" \t");
    const auto b = field.find_last_not_of(" \t");
    fields.push_back(a == std::string::npos ? std::string() : field.substr(a, b - a + 1));
  }
  if (!line.empty() && line.back() == ',') fields.emplace_back();
  return fields;
}

bool is_number(const std::string& s, double& v) {
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && ptr == s.data() + s.size() && !s.empty();
}

}  // namespace

Library load_library(const std::filesystem::path& folder) {
  const std::filesystem::path manifest = folder / "manifest.csv";
  std::ifstream in(manifest);
  if (!in) throw Error(manifest.string() + ": cannot read the library manifest");
  std::string line;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<int> row_lines;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    if (line.empty() || line[0] == '#') continue;
    auto fields = split(line);
    if (header.empty()) {
      header = fields;
      if (header.size() < 2 || header[0] != "file") {
        throw Error(manifest.string() + ":" + std::to_string(line_number) +
                    ": expected a header 'file,<parameter>,...'");
      }
      continue;
    }
    if (fields.size() != header.size()) {
      throw Error(manifest.string() + ":" + std::to_string(line_number) + ": expected " +
                  std::to_string(header.size()) + " fields, found " +
                  std::to_string(fields.size()));
    }
    rows.push_back(std::move(fields));
    row_lines.push_back(line_number);
  }
  if (rows.empty()) throw Error(manifest.string() + ": no spectra listed");

  Library lib;
  for (std::size_t c = 1; c < header.size(); ++c) {
    ParameterInfo p;
    p.name = header[c];
    if (p.name.size() > 4 && p.name.ends_with(":cat")) {
      p.name.resize(p.name.size() - 4);
      p.categorical = true;
    }
    p.categorical = p.categorical || p.name == "charge" || p.name == "symmetry";
    bool all_numbers = true;
    double v = 0;
    for (const auto& r : rows) all_numbers = all_numbers && is_number(r[c], v);
    if (!all_numbers) {
      p.categorical = true;
      for (const auto& r : rows) {
        if (std::find(p.category_names.begin(), p.category_names.end(), r[c]) ==
            p.category_names.end()) {
          p.category_names.push_back(r[c]);
        }
      }
    }
    lib.parameters.push_back(p);
  }
  std::set<std::string> seen;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& fields = rows[r];
    const std::string where = manifest.string() + ":" + std::to_string(row_lines[r]);
    if (!seen.insert(fields[0]).second) throw Error(where + ": '" + fields[0] + "' listed twice");
    Spectrum s;
    try {
      s = read_spectrum(folder / fields[0]);
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    std::vector<double> values;
    for (std::size_t c = 1; c < fields.size(); ++c) {
      const ParameterInfo& p = lib.parameters[c - 1];
      double v = 0;
      if (p.category_names.empty()) {
        is_number(fields[c], v);
      } else {
        v = static_cast<double>(std::find(p.category_names.begin(), p.category_names.end(),
                                          fields[c]) -
                                p.category_names.begin());
      }
      values.push_back(v);
    }
    std::string label = fields[0];
    if (const auto dot = label.rfind('.'); dot != std::string::npos) label.resize(dot);
    lib.labels.push_back(label);
    lib.spectra.push_back(std::move(s));
    lib.values.push_back(std::move(values));
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
