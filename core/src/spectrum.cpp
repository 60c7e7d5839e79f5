#include "xasmap/core/spectrum.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string_view>
#include <system_error>
#include <vector>

#include "xasmap/core/error.hpp"

namespace xasmap {

std::optional<std::string> check_spectrum(const Spectrum& s, int min_points) {
  return check_spectrum(s.energy_ev, s.intensity, min_points);
}

std::optional<std::string> check_spectrum(const Eigen::Ref<const Eigen::VectorXd>& energy_ev,
                                          const Eigen::Ref<const Eigen::VectorXd>& intensity, int min_points) {
  struct {
    const Eigen::Ref<const Eigen::VectorXd>& energy_ev;
    const Eigen::Ref<const Eigen::VectorXd>& intensity;
  } s{energy_ev, intensity};
  if (s.energy_ev.size() != s.intensity.size()) {
    return "energy has " + std::to_string(s.energy_ev.size()) + " values but intensity has " +
           std::to_string(s.intensity.size());
  }
  if (s.energy_ev.size() < min_points) {
    return "only " + std::to_string(s.energy_ev.size()) + " points; at least " +
           std::to_string(min_points) + " are needed";
  }
  for (Eigen::Index i = 0; i < s.energy_ev.size(); ++i) {
    if (!std::isfinite(s.energy_ev[i])) return "energy[" + std::to_string(i) + "] is not finite";
    if (!std::isfinite(s.intensity[i])) return "intensity[" + std::to_string(i) + "] is not finite";
    if (i > 0 && !(s.energy_ev[i] > s.energy_ev[i - 1])) {
      return "energy is not strictly increasing at index " + std::to_string(i) + " (" +
             std::to_string(s.energy_ev[i - 1]) + " then " + std::to_string(s.energy_ev[i]) + ")";
    }
  }
  return std::nullopt;
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t");
  return s.substr(first, last - first + 1);
}

// A line's fields: split at ';' when it holds one (a CSV as European spreadsheets write it), else
// at
// ',', else at whitespace.
std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  const char delimiter = line.find(';') != std::string::npos   ? ';'
                         : line.find(',') != std::string::npos ? ','
                                                               : '\0';
  if (delimiter != '\0') {
    std::string field;
    std::istringstream in(line);
    while (std::getline(in, field, delimiter)) fields.push_back(trim(field));
  } else {
    std::istringstream in(line);
    std::string field;
    while (in >> field) fields.push_back(field);
  }
  return fields;
}

bool parse_double(const std::string& text, double& out) {
  const char* first = text.data();
  const char* last = text.data() + text.size();
  if (first != last && *first == '+') ++first;
  const auto [ptr, ec] = std::from_chars(first, last, out);
  return ec == std::errc() && ptr == last && first != last;
}

// "640,5": a number written with a decimal comma.
bool decimal_comma(const std::string& text) {
  const auto comma = text.find(',');
  if (comma == std::string::npos || text.find(',', comma + 1) != std::string::npos) return false;
  std::string dotted = text;
  dotted[comma] = '.';
  double ignored = 0;
  return parse_double(dotted, ignored);
}

// The name of a binary format `text` starts with, or empty when it looks like text. A file with a
// NUL byte in its first kilobyte is binary even when its format is not one of these.
std::string binary_format(const std::string& text) {
  using namespace std::string_view_literals;  // "...\0..."sv keeps its NUL bytes
  static constexpr std::pair<std::string_view, std::string_view> kMagic[] = {
      {"\x89HDF\r\n\x1a\n"sv, "an HDF5 (or NeXus) file"sv},
      {"\x89PNG\r\n\x1a\n"sv, "a PNG image"sv},
      {"\x1f\x8b"sv, "a gzip-compressed file"sv},
      {"PK\x03\x04"sv, "a zip archive (or an .xlsx workbook)"sv},
      {"II*\0"sv, "a TIFF image"sv},
      {"MM\0*"sv, "a TIFF image"sv},
      {"%PDF"sv, "a PDF document"sv},
      {"\xD0\xCF\x11\xE0"sv, "an old Excel (.xls) workbook"sv},
  };
  for (const auto& [magic, name] : kMagic) {
    if (std::string_view(text).substr(0, magic.size()) == magic) return std::string(name);
  }
  if (text.substr(0, 1024).find('\0') != std::string::npos)
    return "a binary file (or text in UTF-16)";
  return {};
}

// The index of the column `wanted` names (a name, or a 1-based number), or -1.
int find_column(const std::vector<std::string>& names, const std::string& wanted) {
  int number = 0;
  const auto [ptr, ec] = std::from_chars(wanted.data(), wanted.data() + wanted.size(), number);
  if (ec == std::errc() && ptr == wanted.data() + wanted.size()) return number - 1;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (lower(names[i]) == lower(wanted)) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

Spectrum read_spectrum(const std::filesystem::path& file, const SpectrumReadOptions& options,
                       SpectrumReadReport* report) {
  std::error_code status_error;  // an unreadable path is reported by the open below
  const auto status = std::filesystem::status(file, status_error);
  if (status.type() == std::filesystem::file_type::not_found)
    throw Error(file.string() + ": no such file");
  if (status.type() == std::filesystem::file_type::directory) {
    throw Error(file.string() + ": is a directory; give the spectrum files in it (e.g. " +
                (file / "*.csv").string() + ")");
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(file.string() + ": cannot open the spectrum file");
  std::string text;
  try {
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::exception& e) {  // libstdc++ throws from underflow() on a read error
    throw Error(file.string() + ": cannot read the spectrum file (" + e.what() + ")");
  }
  if (const std::string format = binary_format(text); !format.empty()) {
    throw Error(file.string() + ": looks like " + format +
                "; xasmap reads spectra as text columns (CSV, .xy, .dat, XDI): export energy and "
                "intensity as text first");
  }
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  // Line ends: CRLF, LF, or CR alone (as CTM4XAS writes); each counts as one line.
  std::string normalised;
  normalised.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r') {
      normalised += '\n';
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      normalised += text[i];
    }
  }

  std::vector<std::string> names;
  std::vector<std::vector<double>> rows;
  std::vector<int> row_lines;
  std::istringstream lines(normalised);
  std::string line;
  int line_number = 0;
  bool header_allowed = true;
  std::size_t width = 0;
  while (std::getline(lines, line)) {
    ++line_number;
    const std::string t = trim(line);
    if (t.empty()) continue;
    if (t[0] == '#') {
      // XDI: "# Column.2: mutrans"
      const std::string body = lower(trim(t.substr(1)));
      if (body.rfind("column.", 0) == 0) {
        const auto colon = body.find(':');
        if (colon != std::string::npos) {
          int index = 0;
          const std::string num = body.substr(7, colon - 7);
          const auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), index);
          if (ec == std::errc() && p == num.data() + num.size() && index >= 1 && index <= 64) {
            if (names.size() < static_cast<std::size_t>(index)) names.resize(static_cast<std::size_t>(index));
            std::istringstream rest(trim(t.substr(t.find(':') + 1)));
            rest >> names[static_cast<std::size_t>(index - 1)];
          }
        }
      }
      continue;
    }
    const std::vector<std::string> fields = split_fields(t);
    std::vector<double> values(fields.size());
    bool numeric = !fields.empty();
    for (std::size_t i = 0; i < fields.size() && numeric; ++i) numeric = parse_double(fields[i], values[i]);
    if (!numeric) {
      if (header_allowed && rows.empty()) {
        names = fields;
        header_allowed = false;
        continue;
      }
      std::string message = file.string() + ":" + std::to_string(line_number) +
                            ": expected numbers, found '" + t + "'";
      if (std::any_of(fields.begin(), fields.end(), decimal_comma)) {
        message +=
            "; the numbers look like they use decimal commas (640,5): write them with decimal "
            "points (640.5)";
      }
      throw Error(message);
    }
    header_allowed = false;
    if (width == 0) width = values.size();
    if (values.size() < 2 || values.size() != width) {
      throw Error(file.string() + ":" + std::to_string(line_number) +
                  ": expected " + std::to_string(std::max<std::size_t>(width, 2)) +
                  " columns, found " + std::to_string(values.size()));
    }
    rows.push_back(std::move(values));
    row_lines.push_back(line_number);
  }
  if (rows.empty()) throw Error(file.string() + ": no data rows");

  // Choose the columns.
  names.resize(std::max(names.size(), width));
  int ecol = -1, icol = -1;
  if (!options.energy_column.empty()) {
    ecol = find_column(names, options.energy_column);
  } else {
    for (std::size_t i = 0; i < names.size() && ecol < 0; ++i) {
      if (lower(names[i]).find("energy") != std::string::npos) ecol = static_cast<int>(i);
    }
    if (ecol < 0) ecol = 0;
  }
  if (!options.intensity_column.empty()) {
    icol = find_column(names, options.intensity_column);
  } else {
    for (const char* key : {"intensity", "mu", "xas", "absorption", "norm"}) {
      for (std::size_t i = 0; i < names.size() && icol < 0; ++i) {
        if (static_cast<int>(i) != ecol && lower(names[i]).find(key) != std::string::npos) {
          icol = static_cast<int>(i);
        }
      }
    }
    if (icol < 0) icol = ecol + 1;
  }
  std::string named;  // " (energy, i0, tey)" when the file names its columns
  if (std::any_of(names.begin(), names.end(), [](const std::string& n) { return !n.empty(); })) {
    for (std::size_t i = 0; i < width; ++i)
      named += (i ? ", " : " (") + (names[i].empty() ? "?" : names[i]);
    named += ")";
  }
  const int ncol =
      options.normalize_column.empty() ? -2 : find_column(names, options.normalize_column);
  for (const auto& [col, which, wanted] :
       {std::tuple{ecol, "energy", options.energy_column},
        std::tuple{icol, "intensity", options.intensity_column},
        std::tuple{ncol, "normalization", options.normalize_column}}) {
    if (col == -2) continue;  // no normalization column asked for
    if (col < 0 || static_cast<std::size_t>(col) >= width) {
      throw Error(file.string() + ": no " + which + " column" +
                  (wanted.empty() ? std::string() : " '" + wanted + "'") + " among " +
                  std::to_string(width) + " columns" + named);
    }
  }

  const double energy_factor = options.energy_unit == EnergyUnit::kKev ? 1000.0 : 1.0;
  for (std::size_t r = 0; r < rows.size(); ++r) {
    rows[r][static_cast<std::size_t>(ecol)] *= energy_factor;
    if (ncol < 0) continue;
    const double divisor = rows[r][static_cast<std::size_t>(ncol)];
    if (divisor == 0.0) {
      throw Error(file.string() + ":" + std::to_string(row_lines[r]) +
                  ": the normalization column '" + options.normalize_column + "' is 0");
    }
    rows[r][static_cast<std::size_t>(icol)] /= divisor;
  }

  std::vector<std::size_t> order(rows.size());
  std::iota(order.begin(), order.end(), 0);
  const auto energy_of = [&](std::size_t r) { return rows[r][static_cast<std::size_t>(ecol)]; };
  const bool sorted = std::is_sorted(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return energy_of(a) < energy_of(b);
  });
  if (!sorted && !options.sort_and_merge) {
    for (std::size_t r = 1; r < rows.size(); ++r) {
      if (energy_of(r) < energy_of(r - 1)) {
        throw Error(file.string() + ":" + std::to_string(row_lines[r]) +
                    ": energy goes backwards");
      }
    }
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return energy_of(a) < energy_of(b); });
  std::vector<double> e, y;
  std::vector<int> count;
  int merged = 0;
  for (const std::size_t r : order) {
    const double energy = energy_of(r);
    const double value = rows[r][static_cast<std::size_t>(icol)];
    if (!e.empty() && energy == e.back()) {
      if (!options.sort_and_merge) {
        throw Error(file.string() + ":" + std::to_string(row_lines[r]) + ": energy " +
                    std::to_string(energy) + " appears twice");
      }
      y.back() += value;
      ++count.back();
      ++merged;
      continue;
    }
    e.push_back(energy);
    y.push_back(value);
    count.push_back(1);
  }
  for (std::size_t i = 0; i < y.size(); ++i) y[i] /= count[i];

  Spectrum s;
  s.energy_ev = Eigen::Map<Eigen::VectorXd>(e.data(), static_cast<Eigen::Index>(e.size()));
  s.intensity = Eigen::Map<Eigen::VectorXd>(y.data(), static_cast<Eigen::Index>(y.size()));
  if (const auto problem = check_spectrum(s)) throw Error(file.string() + ": " + *problem);
  if (report) {
    report->rows = static_cast<int>(rows.size());
    report->merged_duplicates = merged;
    report->reordered = !sorted;
    report->energy_column = names[static_cast<std::size_t>(ecol)].empty()
                                ? "column " + std::to_string(ecol + 1)
                                : names[static_cast<std::size_t>(ecol)];
    report->intensity_column = names[static_cast<std::size_t>(icol)].empty()
                                   ? "column " + std::to_string(icol + 1)
                                   : names[static_cast<std::size_t>(icol)];
    if (ncol >= 0) {
      report->normalize_column = names[static_cast<std::size_t>(ncol)].empty()
                                     ? "column " + std::to_string(ncol + 1)
                                     : names[static_cast<std::size_t>(ncol)];
    }
  }
  return s;
}

}  // namespace xasmap
