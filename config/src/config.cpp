#include "xasmap/config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <charconv>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <type_traits>

#include "xasmap/core/multiplet.hpp"
#include "xasmap/core/text.hpp"
#include "yaml_reader.hpp"

namespace xasmap::config {

using detail::Spelling;

// ---------------------------------------------------------------------------------------------
// Errors

namespace {

std::string location(const std::string& file, int line, int column) {
  std::string s = file.empty() ? std::string("<config>") : file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  return s;
}

}  // namespace

ConfigError::ConfigError(std::string file, int line, int column, std::string key_path,
                         std::string found, std::string expected)
    : xasmap::Error(location(file, line, column) + ": " + key_path + ": found " + found +
                    ", expected " + expected),
      file_(std::move(file)),
      line_(line),
      column_(column),
      key_path_(std::move(key_path)),
      found_(std::move(found)),
      expected_(std::move(expected)) {}

// ---------------------------------------------------------------------------------------------
// Spellings

namespace {

constexpr std::array<Spelling<LibrarySource>, 3> kLibrarySources{{
    {LibrarySource::kSimulate, "simulate"},
    {LibrarySource::kFiles, "files"},
    {LibrarySource::kModel, "model"},
}};
constexpr std::array<Spelling<Symmetry>, 2> kSymmetries{{
    {Symmetry::kOh, "Oh"},
    {Symmetry::kD4h, "D4h"},
}};
constexpr std::array<Spelling<LifetimeRule>, 2> kLifetimeRules{{
    {LifetimeRule::kCoreHole, "core_hole"},
    {LifetimeRule::kSplitEnergy, "split_energy"},
}};

constexpr std::array<Spelling<Polarization>, 6> kPolarizations{{
    {Polarization::kIsotropic, "isotropic"},
    {Polarization::kX, "x"},
    {Polarization::kY, "y"},
    {Polarization::kZ, "z"},
    {Polarization::kLeft, "left"},
    {Polarization::kRight, "right"},
}};
constexpr std::array<Spelling<Background>, 3> kBackgrounds{{
    {Background::kPrePostLine, "pre_post_line"},
    {Background::kEdgeStep, "edge_step"},
    {Background::kNone, "none"},
}};
constexpr std::array<Spelling<Normalization>, 4> kNormalizations{{
    {Normalization::kArea, "area"},
    {Normalization::kMax, "max"},
    {Normalization::kEdgeStep, "edge_step"},
    {Normalization::kNone, "none"},
}};
constexpr std::array<Spelling<Alignment>, 2> kAlignments{{
    {Alignment::kNone, "none"},
    {Alignment::kFitShift, "fit_shift"},
}};
constexpr std::array<Spelling<EmbeddingMethod>, 3> kEmbeddingMethods{{
    {EmbeddingMethod::kMds, "mds"},
    {EmbeddingMethod::kLmds, "lmds"},
    {EmbeddingMethod::kIsomap, "isomap"},
}};
constexpr std::array<Spelling<DistanceKind>, 4> kDistanceKinds{{
    {DistanceKind::kEuclidean, "euclidean"},
    {DistanceKind::kCorrelation, "correlation"},
    {DistanceKind::kDerivative, "derivative"},
    {DistanceKind::kWasserstein, "wasserstein"},
}};
constexpr std::array<Spelling<LandmarkSelection>, 2> kLandmarkSelections{{
    {LandmarkSelection::kMaxMin, "maxmin"},
    {LandmarkSelection::kRandom, "random"},
}};
constexpr std::array<Spelling<Weighting>, 2> kWeightings{{
    {Weighting::kInverseDistance, "inverse_distance"},
    {Weighting::kLocalLinear, "local_linear"},
}};
constexpr std::array<Spelling<OffsetTracking>, 3> kOffsetTrackings{{
    {OffsetTracking::kOff, "off"},
    {OffsetTracking::kReport, "report"},
    {OffsetTracking::kApply, "apply"},
}};
constexpr std::array<Spelling<MixtureMode>, 2> kMixtureModes{{
    {MixtureMode::kAuto, "auto"},
    {MixtureMode::kOff, "off"},
}};
constexpr std::array<Spelling<InputPattern>, 3> kInputPatterns{{
    {InputPattern::kSub, "sub"},
    {InputPattern::kPull, "pull"},
    {InputPattern::kRouter, "router"},
}};
constexpr std::array<Spelling<Overflow>, 3> kOverflows{{
    {Overflow::kDropOldest, "drop_oldest"},
    {Overflow::kDropNewest, "drop_newest"},
    {Overflow::kBlock, "block"},
}};
constexpr std::array<Spelling<LogFormat>, 2> kLogFormats{{
    {LogFormat::kText, "text"},
    {LogFormat::kJson, "json"},
}};
constexpr std::array<Spelling<LogLevel>, 7> kLogLevels{{
    {LogLevel::kTrace, "trace"},
    {LogLevel::kDebug, "debug"},
    {LogLevel::kInfo, "info"},
    {LogLevel::kWarn, "warn"},
    {LogLevel::kError, "error"},
    {LogLevel::kCritical, "critical"},
    {LogLevel::kOff, "off"},
}};

template <class E, std::size_t N>
std::string spell(const std::array<Spelling<E>, N>& table, E v) {
  for (const auto& s : table) {
    if (s.value == v) return s.name;
  }
  return "?";
}

}  // namespace

std::string to_string(LibrarySource v) { return spell(kLibrarySources, v); }
std::string to_string(Symmetry v) { return spell(kSymmetries, v); }
std::string to_string(Polarization v) { return spell(kPolarizations, v); }
std::string to_string(LifetimeRule v) { return spell(kLifetimeRules, v); }
std::string to_string(Background v) { return spell(kBackgrounds, v); }
std::string to_string(Normalization v) { return spell(kNormalizations, v); }
std::string to_string(Alignment v) { return spell(kAlignments, v); }
std::string to_string(EmbeddingMethod v) { return spell(kEmbeddingMethods, v); }
std::string to_string(DistanceKind v) { return spell(kDistanceKinds, v); }
std::string to_string(LandmarkSelection v) { return spell(kLandmarkSelections, v); }
std::string to_string(Weighting v) { return spell(kWeightings, v); }
std::string to_string(InputPattern v) { return spell(kInputPatterns, v); }
std::string to_string(Overflow v) { return spell(kOverflows, v); }
std::string to_string(OffsetTracking v) { return spell(kOffsetTrackings, v); }
std::string to_string(MixtureMode v) { return spell(kMixtureModes, v); }
std::string to_string(LogFormat v) { return spell(kLogFormats, v); }
std::string to_string(LogLevel v) { return spell(kLogLevels, v); }

// ---------------------------------------------------------------------------------------------
// Sweep

namespace {
constexpr std::size_t kMaxSweepValues = 100000;
}

std::vector<double> Sweep::values() const {
  if (!list.empty()) return list;
  std::vector<double> v;
  if (!(step > 0.0) || stop < start) return v;
  const double count = std::floor((stop - start) / step + 1e-9);
  if (count >= static_cast<double>(kMaxSweepValues)) return v;
  for (long i = 0; i <= static_cast<long>(count); ++i) {
    // Round to 1e-12 so that 0.1-steps give 0.3, not 0.30000000000000004.
    v.push_back(std::round((start + static_cast<double>(i) * step) * 1e12) / 1e12);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Endpoints

namespace {

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// A tcp host: *, a bracketed IPv6 address, or dot-separated labels of letters, digits and inner
// hyphens (which covers IPv4 addresses and DNS names). ZeroMQ's "interface;" prefix is refused on
// purpose: endpoints stay explicit.
bool valid_host(const std::string& host) {
  if (host == "*") return true;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    return host.find_first_not_of("0123456789abcdefABCDEF:.", 1) == host.size() - 1;
  }
  if (host.empty() || host.size() > 253) return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    const std::size_t end = std::min(host.find('.', start), host.size());
    const std::string_view label(host.data() + start, end - start);
    if (label.empty() || label.size() > 63 || !is_alnum(label.front()) || !is_alnum(label.back())) {
      return false;
    }
    for (const char c : label) {
      if (!is_alnum(c) && c != '-') return false;
    }
    start = end + 1;
  }
  return true;
}

// A 3d transition-metal ion with a positive charge: Ti..Cu followed by 1-9 and '+', e.g. "Mn3+".
bool valid_ion(const std::string& ion) {
  static constexpr std::array<std::string_view, 8> kElements{"Ti", "V",  "Cr", "Mn",
                                                             "Fe", "Co", "Ni", "Cu"};
  for (const auto element : kElements) {
    if (ion.size() == element.size() + 2 && ion.compare(0, element.size(), element) == 0 &&
        ion[element.size()] >= '1' && ion[element.size()] <= '9' && ion.back() == '+') {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string check_endpoint(const std::string& endpoint, bool bind) {
  const std::string expected_any =
      bind ? "a ZeroMQ endpoint to bind: tcp://HOST:PORT (HOST or PORT may be *), ipc://PATH or "
             "inproc://NAME"
           : "a ZeroMQ endpoint to connect to: tcp://HOST:PORT, ipc://PATH or inproc://NAME";
  const auto sep = endpoint.find("://");
  if (sep == std::string::npos) return expected_any;
  const std::string scheme = endpoint.substr(0, sep);
  const std::string rest = endpoint.substr(sep + 3);
  if (scheme == "ipc" || scheme == "inproc") {
    if (rest.empty()) return expected_any;
    if (scheme == "ipc" && rest.size() > 107) return "an ipc path of at most 107 characters";
    return {};
  }
  if (scheme != "tcp") return expected_any;
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return expected_any;
  const std::string host = rest.substr(0, colon);
  const std::string port = rest.substr(colon + 1);
  if (!valid_host(host)) return expected_any;
  if (host == "*" && !bind) return "a host to connect to (* is only for binding)";
  if (port == "*") return bind ? std::string() : "a port to connect to (* is only for binding)";
  int port_number = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (ec != std::errc() || ptr != port.data() + port.size() || port.empty()) return expected_any;
  if (port_number < 1 || port_number > 65535) return "a tcp port in [1, 65535]";
  return {};
}

bool is_wildcard_endpoint(const std::string& endpoint) {
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  const std::string rest = endpoint.substr(6);
  const auto colon = rest.rfind(':');
  const std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (host == "*" || host == "0.0.0.0") return true;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    // Every group of the address is zero: [::], [::0], [0:0:0:0:0:0:0:0].
    return host.find_first_not_of("0:", 1) == host.size() - 1;
  }
  return false;
}

std::vector<std::string> Config::warnings() const {
  std::vector<std::string> out;
  if (is_wildcard_endpoint(control.endpoint) && !control.curve.enabled()) {
    out.push_back("control.endpoint '" + control.endpoint +
                  "' listens on every network interface, and the control socket has no "
                  "authentication: anyone who can reach it can reload or shut down the daemon; set "
                  "control.curve, bind it to 127.0.0.1 or an ipc:// path, or firewall the port "
                  "(docs/operations.md)");
  }
  if (input.bind && is_wildcard_endpoint(input.endpoint) && !input.curve.enabled()) {
    out.push_back("input.endpoint '" + input.endpoint +
                  "' listens on every network interface without authentication: anyone who can reach it "
                  "can feed spectra; set input.curve or bind it to a specific interface (docs/operations.md)");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Validation

namespace {

std::string number_text(double v) {
  char buffer[32];
  const auto [ptr, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  return ec == std::errc() ? std::string(buffer, ptr) : std::string("?");
}

class Checker {
 public:
  explicit Checker(std::vector<Problem>& out) : out_(out) {}

  void add(std::string key, std::string found, std::string expected) {
    out_.push_back({std::move(key), std::move(found), std::move(expected)});
  }
  void range(const std::string& key, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi)) {
      add(key, number_text(v), "a number in [" + number_text(lo) + ", " + number_text(hi) + "]");
    }
  }
  void positive(const std::string& key, double v, double hi) {
    if (!(v > 0.0 && v <= hi)) {
      add(key, number_text(v), "a number in (0, " + number_text(hi) + "]");
    }
  }
  void count(const std::string& key, long long v, long long lo, long long hi) {
    if (v < lo || v > hi) {
      add(key, std::to_string(v),
          "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
  }
  void endpoint(const std::string& key, const std::string& ep, bool bind) {
    if (const std::string expected = check_endpoint(ep, bind); !expected.empty()) {
      add(key, "'" + ep + "'", expected);
    }
  }
  void sweep(const std::string& key, const Sweep& s, double lo, double hi) {
    if (s.list.empty()) {
      if (!(s.step > 0.0)) {
        add(key + ".step", number_text(s.step), "a step > 0");
        return;
      }
      if (s.stop < s.start) {
        add(key + ".stop", number_text(s.stop), "stop >= start (" + number_text(s.start) + ")");
        return;
      }
      if ((s.stop - s.start) / s.step >= static_cast<double>(kMaxSweepValues)) {
        add(key + ".step", number_text(s.step),
            "a step giving at most " + std::to_string(kMaxSweepValues) + " values");
        return;
      }
      range(key + ".start", s.start, lo, hi);
      range(key + ".stop", s.stop, lo, hi);
    } else {
      for (std::size_t i = 0; i < s.list.size(); ++i) {
        range(key + "[" + std::to_string(i) + "]", s.list[i], lo, hi);
      }
    }
  }

 private:
  std::vector<Problem>& out_;
};

void validate_simulate(const SimulateConfig& s, Checker& c) {
  const std::string p = "library.simulate";
  if (s.ions.empty()) c.add(p + ".ions", "an empty list", "at least one ion, e.g. Mn2+");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < s.ions.size(); ++i) {
    const std::string key = p + ".ions[" + std::to_string(i) + "]";
    if (!valid_ion(s.ions[i])) {
      c.add(key, "'" + s.ions[i] + "'", "a 3d ion Ti..Cu with its charge, e.g. Mn3+");
    } else if (!seen.insert(s.ions[i]).second) {
      c.add(key, "'" + s.ions[i] + "' a second time", "each ion once");
    } else if (!s.energy_offset_ev.contains(s.ions[i])) {
      c.add(p + ".energy_offset_ev", "no entry for " + s.ions[i],
            "an absolute energy offset (eV) for every ion in library.simulate.ions");
    }
  }
  for (const auto& [name, value] : s.overrides) {
    const auto& names = xasmap::multiplet_parameter_names();
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string expected = "a multiplet parameter name";
      if (const std::string near = xasmap::closest_match(name, names); !near.empty()) {
        expected += " (did you mean '" + near + "'?)";
      }
      c.add(p + ".overrides." + name, "unknown parameter '" + name + "'", expected);
    } else if (name == "tendq" || name == "ds" || name == "dt" || name == "exchange_field" ||
               name == "temperature_k") {
      c.add(p + ".overrides." + name, "'" + name + "', which has a key of its own",
            "an atomic parameter (set " + name + " with its own library.simulate key)");
    } else {
      c.range(p + ".overrides." + name, value, -100.0, 5000.0);
    }
  }
  for (const auto& [ion, offset] : s.energy_offset_ev) {
    c.range(p + ".energy_offset_ev." + ion, offset, -100.0, 20000.0);
  }
  c.sweep(p + ".tendq_ev", s.tendq_ev, -1.0, 10.0);
  c.sweep(p + ".ds_ev", s.ds_ev, -2.0, 2.0);
  c.sweep(p + ".dt_ev", s.dt_ev, -2.0, 2.0);
  if (s.symmetry == Symmetry::kOh) {
    for (const auto& [key, sweep] : {std::pair{"ds_ev", &s.ds_ev}, std::pair{"dt_ev", &s.dt_ev}}) {
      for (double v : sweep->values()) {
        if (v != 0.0) {
          c.add(p + "." + key, number_text(v) + " with symmetry Oh",
                "0 (set library.simulate.symmetry: D4h to use Ds and Dt)");
          break;
        }
      }
    }
  }
  c.sweep(p + ".slater_scale", s.slater_scale, 0.0, 2.0);
  if (s.slater_scale.values().size() > 1 && (s.slater_scale_dd || s.slater_scale_pd)) {
    c.add(p + ".slater_scale", "several values with slater_scale_dd or slater_scale_pd set",
          "one value, or no slater_scale_dd and slater_scale_pd (a swept scale applies to all)");
  }
  if (s.slater_scale_dd) c.range(p + ".slater_scale_dd", *s.slater_scale_dd, 0.0, 2.0);
  if (s.slater_scale_pd) c.range(p + ".slater_scale_pd", *s.slater_scale_pd, 0.0, 2.0);
  c.range(p + ".zeta_scale", s.zeta_scale, 0.0, 2.0);
  c.range(p + ".exchange_field_ev", s.exchange_field_ev, -5.0, 5.0);
  c.sweep(p + ".temperature_k", s.temperature_k, 0.0, 5000.0);
  c.positive(p + ".lorentz_fwhm_l3_ev", s.lorentz_fwhm_l3_ev, 10.0);
  c.positive(p + ".lorentz_fwhm_l2_ev", s.lorentz_fwhm_l2_ev, 10.0);
  c.sweep(p + ".lorentz_scale", s.lorentz_scale, 0.01, 10.0);
  c.sweep(p + ".gauss_fwhm_ev", s.gauss_fwhm_ev, 0.0, 10.0);
  std::size_t size = s.ions.size();
  for (const Sweep* sweep : {&s.tendq_ev, &s.ds_ev, &s.dt_ev, &s.slater_scale, &s.temperature_k,
                             &s.lorentz_scale, &s.gauss_fwhm_ev}) {
    size *= std::max<std::size_t>(1, sweep->values().size());
  }
  if (size > kMaxSweepValues) {
    c.add(p, std::to_string(size) + " spectra (ions x every swept value)",
          "at most " + std::to_string(kMaxSweepValues) + " spectra");
  }
}

void validate_library(const LibraryConfig& l, Checker& c) {
  namespace fs = std::filesystem;
  std::error_code ec;
  switch (l.source) {
    case LibrarySource::kFiles:
      if (l.directory.empty()) {
        c.add("library.directory", "nothing", "a folder of spectra (library.source is files)");
      } else if (!fs::is_directory(l.directory, ec)) {
        c.add("library.directory", "'" + l.directory.string() + "' (no such folder)",
              "an existing folder of spectra with a manifest.csv");
      } else if (!fs::is_regular_file(l.directory / "manifest.csv", ec)) {
        c.add("library.directory", "'" + l.directory.string() + "' (no manifest.csv in it)",
              "a folder holding manifest.csv");
      }
      break;
    case LibrarySource::kModel:
      if (l.model_file.empty()) {
        c.add("library.model_file", "nothing", "a model file (library.source is model)");
      } else if (!fs::is_regular_file(l.model_file, ec)) {
        c.add("library.model_file", "'" + l.model_file.string() + "' (no such file)",
              "an existing model file written by 'xasmap embed'");
      }
      break;
    case LibrarySource::kSimulate:
      break;
  }
  validate_simulate(l.simulate, c);

  const GridConfig& g = l.grid;
  c.range("library.grid.emin_ev", g.emin_ev, 0.0, 100000.0);
  c.range("library.grid.emax_ev", g.emax_ev, 0.0, 100000.0);
  c.positive("library.grid.step_ev", g.step_ev, 10.0);
  if (g.emax_ev <= g.emin_ev) {
    c.add("library.grid.emax_ev", number_text(g.emax_ev),
          "a value above library.grid.emin_ev (" + number_text(g.emin_ev) + ")");
  } else if (g.step_ev > 0.0) {
    const double points = (g.emax_ev - g.emin_ev) / g.step_ev + 1.0;
    if (points < 16.0 || points > 100000.0) {
      c.add("library.grid.step_ev", number_text(g.step_ev),
            "a step giving 16 to 100000 grid points (it gives " +
                std::to_string(static_cast<long>(points)) + ")");
    }
  }

  const PreprocessConfig& pp = l.preprocess;
  c.range("library.preprocess.smooth_fwhm_ev", pp.smooth_fwhm_ev, 0.0, 10.0);
  c.range("library.preprocess.max_shift_ev", pp.max_shift_ev, 0.0, 5.0);
  c.positive("library.preprocess.edge_window_ev", pp.edge_window_ev, 20.0);
  c.positive("library.preprocess.shift_step_ev", pp.shift_step_ev, 1.0);
  c.range("library.preprocess.shift_penalty", pp.shift_penalty, 0.0, 100.0);
  if (pp.align == Alignment::kFitShift && pp.shift_step_ev > pp.max_shift_ev && pp.max_shift_ev > 0) {
    c.add("library.preprocess.shift_step_ev", number_text(pp.shift_step_ev),
          "a step no larger than library.preprocess.max_shift_ev (" + number_text(pp.max_shift_ev) + ")");
  }
  c.positive("library.preprocess.min_coverage", pp.min_coverage, 1.0);
}

}  // namespace

std::vector<Problem> Config::validate() const {
  std::vector<Problem> problems;
  Checker c(problems);
  validate_library(library, c);

  const EmbeddingConfig& e = embedding;
  c.count("embedding.landmarks", e.landmarks, 3, 100000);
  c.count("embedding.map_dims", e.map_dims, 1, 10);
  c.count("embedding.estimate_dims", e.estimate_dims, 1, 100);
  if (e.estimate_dims < e.map_dims) {
    c.add("embedding.estimate_dims", std::to_string(e.estimate_dims),
          "at least embedding.map_dims (" + std::to_string(e.map_dims) + ")");
  }
  if (e.method != EmbeddingMethod::kMds && e.landmarks <= e.estimate_dims) {
    c.add("embedding.landmarks", std::to_string(e.landmarks),
          "more landmarks than embedding.estimate_dims (" + std::to_string(e.estimate_dims) + ")");
  }
  c.count("embedding.isomap_neighbors", e.isomap_neighbors, 2, 200);

  c.count("estimation.neighbors", estimation.neighbors, 1, 200);
  c.count("estimation.report_neighbors", estimation.report_neighbors, 0, 200);
  c.count("estimation.local_linear_dims", estimation.local_linear_dims, 1, 10);
  c.positive("estimation.novelty_threshold", estimation.novelty_threshold, 1e6);
  c.range("estimation.probability_noise", estimation.probability_noise, 0.0, 1e9);
  c.range("estimation.probability_residual", estimation.probability_residual, 0.0, 1e9);
  c.range("estimation.probability_spacing", estimation.probability_spacing, 0.0, 1e9);
  if (estimation.probability_noise + estimation.probability_residual + estimation.probability_spacing <= 0.0) {
    c.add("estimation.probability_noise", "0 with probability_residual and probability_spacing 0",
          "at least one of them > 0 (a zero temperature makes every probability 0 or 1)");
  }
  c.range("estimation.interval_spacing", estimation.interval_spacing, 0.0, 100.0);
  c.range("estimation.interval_residual", estimation.interval_residual, 0.0, 100.0);
  c.range("estimation.interval_noise", estimation.interval_noise, 0.0, 100.0);
  c.count("estimation.exact_partial_rows", estimation.exact_partial_rows, 0, 1000000000LL);
  c.range("estimation.exact_partial_novelty", estimation.exact_partial_novelty, 0.0, 1e6);

  const CalibrationConfig& cal = calibration;
  c.range("calibration.session_offset_ev", cal.session_offset_ev, -5.0, 5.0);
  if (!cal.reference_file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(cal.reference_file, ec)) {
      c.add("calibration.reference_file", "'" + cal.reference_file.string() + "' (no such file)",
            "a measured spectrum of a standard (CSV, .xy or XDI)");
    }
    if (cal.session_offset_ev != 0.0) {
      c.add("calibration.session_offset_ev", number_text(cal.session_offset_ev) + " with a reference_file",
            "one of them: the reference gives the offset");
    }
    if (cal.reference_charge == 0.0) {
      c.add("calibration.reference_charge", "nothing", "the standard's charge, e.g. 2 for MnO");
    }
  }
  c.count("calibration.track_window", cal.track_window, 1, 100000);
  c.count("calibration.track_min_samples", cal.track_min_samples, 1, 100000);
  if (cal.track_min_samples > cal.track_window) {
    c.add("calibration.track_min_samples", std::to_string(cal.track_min_samples),
          "at most calibration.track_window (" + std::to_string(cal.track_window) + ")");
  }
  c.range("calibration.track_min_confidence", cal.track_min_confidence, 0.0, 1.0);
  c.range("calibration.search_ev", cal.search_ev, 0.0, 3.0);

  const InputConfig& in = input;
  c.endpoint("input.endpoint", in.endpoint, in.bind);
  if (in.topic.empty() || in.topic.size() > 255) {
    c.add("input.topic", "'" + in.topic + "'", "a topic of 1 to 255 bytes");
  }
  c.count("input.queue_capacity", in.queue_capacity, 1, 10'000'000);
  c.count("input.max_message_bytes", in.max_message_bytes, 1024, 4LL << 30);
  c.count("input.max_points", in.max_points, 16, 10'000'000);
  c.count("input.max_stack_pixels", in.max_stack_pixels, 1, 100'000'000);
  c.count("input.workers", in.workers, 0, 256);
  c.count("input.memory_budget_bytes", in.memory_budget_bytes, 1LL << 20, 1LL << 40);
  c.count("input.dedup_ids", in.dedup_ids, 0, 100'000'000);
  if (in.pattern == InputPattern::kRouter && !in.bind) {
    c.add("input.bind", "false", "true with pattern router: the daemon's ROUTER binds, and senders' DEALERs connect");
  }
  if (in.memory_budget_bytes < in.max_message_bytes) {
    c.add("input.memory_budget_bytes", std::to_string(in.memory_budget_bytes),
          "at least input.max_message_bytes (" + std::to_string(in.max_message_bytes) +
              "), so that a message of the largest size fits");
  }

  c.endpoint("output.endpoint", output.endpoint, output.bind);
  c.count("output.send_hwm", output.send_hwm, 0, 100'000'000);
  c.endpoint("control.endpoint", control.endpoint, true);
  c.count("control.max_request_bytes", control.max_request_bytes, 64, 16LL << 20);
  if (control.endpoint == output.endpoint) {
    c.add("control.endpoint", "'" + control.endpoint + "', the same as output.endpoint",
          "an endpoint of its own");
  }
  if (in.bind && in.endpoint == output.endpoint) {
    c.add("input.endpoint", "'" + in.endpoint + "', the same as output.endpoint",
          "an endpoint of its own");
  }
  if (in.bind && in.endpoint == control.endpoint) {
    c.add("input.endpoint", "'" + in.endpoint + "', the same as control.endpoint",
          "an endpoint of its own");
  }

  // CURVE: the key files must exist (their contents are read, and checked, by the daemon and by
  // --check-config); control admits only listed clients, and input trusts only a listed publisher.
  const auto curve = [&](const std::string& section, const CurveConfig& k, bool authorized_required) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!k.enabled()) {
      if (!k.authorized_keys_file.empty()) {
        c.add(section + ".curve.secret_key_file", "nothing",
              "this side's key file (xasmap keygen), since " + section + ".curve.authorized_keys_file is set");
      }
      return;
    }
    if (!fs::is_regular_file(k.secret_key_file, ec)) {
      c.add(section + ".curve.secret_key_file", "'" + k.secret_key_file.string() + "' (no such file)",
            "a secret key file written by xasmap keygen");
    }
    if (k.authorized_keys_file.empty()) {
      if (authorized_required) {
        c.add(section + ".curve.authorized_keys_file", "nothing",
              section == "control" ? "the public keys of the clients that may send commands"
                                   : "the public key of the publisher the input trusts");
      }
    } else if (!fs::is_regular_file(k.authorized_keys_file, ec)) {
      c.add(section + ".curve.authorized_keys_file", "'" + k.authorized_keys_file.string() + "' (no such file)",
            "a file of Z85 public keys, one a line");
    }
  };
  curve("input", in.curve, true);
  curve("output", output.curve, !output.bind);
  curve("control", control.curve, true);

  c.range("metrics.interval_s", metrics.interval_s, 0.01, 3600.0);
  if (logging.format == LogFormat::kText && logging.pattern.empty()) {
    c.add("logging.pattern", "an empty pattern", "an spdlog pattern such as '[%l] %v'");
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Parsing

namespace {

using detail::MapReader;

void read_curve(MapReader r, CurveConfig& curve) {
  r.path("secret_key_file", curve.secret_key_file);
  r.path("authorized_keys_file", curve.authorized_keys_file);
  r.finish();
}

void read_simulate(MapReader r, SimulateConfig& s) {
  r.string_list("ions", s.ions);
  r.choice<Symmetry>("symmetry", s.symmetry, kSymmetries);
  r.sweep("tendq_ev", s.tendq_ev);
  r.sweep("ds_ev", s.ds_ev);
  r.sweep("dt_ev", s.dt_ev);
  r.sweep("slater_scale", s.slater_scale);
  r.optional_number("slater_scale_dd", s.slater_scale_dd);
  r.optional_number("slater_scale_pd", s.slater_scale_pd);
  r.number("zeta_scale", s.zeta_scale);
  r.number("exchange_field_ev", s.exchange_field_ev);
  r.sweep("temperature_k", s.temperature_k);
  r.choice<Polarization>("polarization", s.polarization, kPolarizations);
  r.number("lorentz_fwhm_l3_ev", s.lorentz_fwhm_l3_ev);
  r.number("lorentz_fwhm_l2_ev", s.lorentz_fwhm_l2_ev);
  r.sweep("lorentz_scale", s.lorentz_scale);
  r.choice<LifetimeRule>("lifetime_rule", s.lifetime_rule, kLifetimeRules);
  r.sweep("gauss_fwhm_ev", s.gauss_fwhm_ev);
  r.number_map("overrides", s.overrides);
  r.number_map("energy_offset_ev", s.energy_offset_ev);
  r.finish();
}

void read_library(MapReader r, LibraryConfig& l) {
  r.choice<LibrarySource>("source", l.source, kLibrarySources);
  r.path("directory", l.directory);
  r.path("model_file", l.model_file);
  r.string_list("categorical", l.categorical);
  read_simulate(r.section("simulate"), l.simulate);
  {
    MapReader g = r.section("grid");
    g.number("emin_ev", l.grid.emin_ev);
    g.number("emax_ev", l.grid.emax_ev);
    g.number("step_ev", l.grid.step_ev);
    g.finish();
  }
  {
    MapReader p = r.section("preprocess");
    PreprocessConfig& pp = l.preprocess;
    p.choice<Background>("background", pp.background, kBackgrounds);
    p.choice<Normalization>("normalize", pp.normalize, kNormalizations);
    p.number("smooth_fwhm_ev", pp.smooth_fwhm_ev);
    p.number("edge_window_ev", pp.edge_window_ev);
    p.choice<Alignment>("align", pp.align, kAlignments);
    p.number("max_shift_ev", pp.max_shift_ev);
    p.number("shift_step_ev", pp.shift_step_ev);
    p.number("shift_penalty", pp.shift_penalty);
    p.number("min_coverage", pp.min_coverage);
    p.finish();
  }
  r.finish();
}

void read_document(detail::Context& ctx, const YAML::Node& root, Config& c) {
  MapReader top(ctx, root, "");
  read_library(top.section("library"), c.library);
  {
    MapReader r = top.section("embedding");
    EmbeddingConfig& e = c.embedding;
    r.choice<EmbeddingMethod>("method", e.method, kEmbeddingMethods);
    r.choice<DistanceKind>("distance", e.distance, kDistanceKinds);
    r.integer("landmarks", e.landmarks);
    r.choice<LandmarkSelection>("landmark_selection", e.landmark_selection, kLandmarkSelections);
    r.integer("map_dims", e.map_dims);
    r.integer("estimate_dims", e.estimate_dims);
    r.integer("isomap_neighbors", e.isomap_neighbors);
    r.integer("seed", e.seed);
    r.finish();
  }
  {
    MapReader r = top.section("estimation");
    EstimationConfig& e = c.estimation;
    r.integer("neighbors", e.neighbors);
    r.choice<Weighting>("weighting", e.weighting, kWeightings);
    r.integer("local_linear_dims", e.local_linear_dims);
    r.integer("report_neighbors", e.report_neighbors);
    r.number("novelty_threshold", e.novelty_threshold);
    r.number("probability_noise", e.probability_noise);
    r.number("probability_residual", e.probability_residual);
    r.number("probability_spacing", e.probability_spacing);
    r.number("interval_spacing", e.interval_spacing);
    r.number("interval_residual", e.interval_residual);
    r.number("interval_noise", e.interval_noise);
    r.integer("exact_partial_rows", e.exact_partial_rows);
    r.number("exact_partial_novelty", e.exact_partial_novelty);
    r.choice<MixtureMode>("mixture", e.mixture, kMixtureModes);
    r.finish();
  }
  {
    MapReader r = top.section("calibration");
    CalibrationConfig& cal = c.calibration;
    r.number("session_offset_ev", cal.session_offset_ev);
    r.path("reference_file", cal.reference_file);
    r.number("reference_charge", cal.reference_charge);
    r.choice<OffsetTracking>("track", cal.track, kOffsetTrackings);
    r.integer("track_window", cal.track_window);
    r.integer("track_min_samples", cal.track_min_samples);
    r.number("track_min_confidence", cal.track_min_confidence);
    r.number("search_ev", cal.search_ev);
    r.finish();
  }
  {
    MapReader r = top.section("input");
    InputConfig& in = c.input;
    r.string("endpoint", in.endpoint);
    r.choice<InputPattern>("pattern", in.pattern, kInputPatterns);
    r.boolean("bind", in.bind);
    r.string("topic", in.topic);
    r.integer("queue_capacity", in.queue_capacity);
    r.choice<Overflow>("overflow", in.overflow, kOverflows);
    r.integer("max_message_bytes", in.max_message_bytes);
    r.integer("max_points", in.max_points);
    r.integer("max_stack_pixels", in.max_stack_pixels);
    r.integer("workers", in.workers);
    r.integer("memory_budget_bytes", in.memory_budget_bytes);
    r.integer("dedup_ids", in.dedup_ids);
    read_curve(r.section("curve"), in.curve);
    r.finish();
  }
  {
    MapReader r = top.section("output");
    r.string("endpoint", c.output.endpoint);
    r.boolean("bind", c.output.bind);
    r.integer("send_hwm", c.output.send_hwm);
    read_curve(r.section("curve"), c.output.curve);
    r.finish();
  }
  {
    MapReader r = top.section("control");
    r.string("endpoint", c.control.endpoint);
    r.integer("max_request_bytes", c.control.max_request_bytes);
    read_curve(r.section("curve"), c.control.curve);
    r.finish();
  }
  {
    MapReader r = top.section("metrics");
    r.number("interval_s", c.metrics.interval_s);
    r.finish();
  }
  {
    MapReader r = top.section("logging");
    r.choice<LogLevel>("level", c.logging.level, kLogLevels);
    r.choice<LogFormat>("format", c.logging.format, kLogFormats);
    r.string("pattern", c.logging.pattern);
    r.path("file", c.logging.file);
    r.finish();
  }
  top.finish();
}

// Applies the command-line endpoint overrides; a bad one is reported against its flag.
void apply(const Overrides& o, Config& c, const std::string& file) {
  const auto set = [&](const std::optional<std::string>& value, std::string& target,
                       const char* flag, const char* key, bool bind) {
    if (!value) return;
    if (const std::string expected = check_endpoint(*value, bind); !expected.empty()) {
      throw ConfigError(file, 0, 0, std::string(key) + " (from " + flag + ")", "'" + *value + "'",
                        expected);
    }
    target = *value;
  };
  set(o.input_endpoint, c.input.endpoint, "--input", "input.endpoint", c.input.bind);
  set(o.output_endpoint, c.output.endpoint, "--output", "output.endpoint", c.output.bind);
  set(o.control_endpoint, c.control.endpoint, "--control", "control.endpoint", true);
}

}  // namespace

Config parse_config(const std::string& yaml, const std::string& source_name,
                    const std::filesystem::path& base_dir, const Overrides& overrides) {
  detail::Context ctx;
  ctx.file = source_name;
  ctx.base_dir = base_dir;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    const detail::Place place = detail::place_of(e.mark);
    throw ConfigError(source_name, place.line, place.column, "(document)",
                      "malformed YAML (" + e.msg + ")", "well-formed YAML");
  }
  Config config;
  config.source_file = source_name;
  read_document(ctx, root, config);
  apply(overrides, config, source_name);
  const std::vector<Problem> problems = config.validate();
  if (!problems.empty()) {
    const Problem& p = problems.front();
    const detail::Place place = ctx.place_of(p.key_path);
    throw ConfigError(source_name, place.line, place.column, p.key_path, p.found, p.expected);
  }
  return config;
}

Config load_config(const std::filesystem::path& file, const Overrides& overrides) {
  std::ifstream in(file, std::ios::binary);
  std::error_code ec;
  if (!in || std::filesystem::is_directory(file, ec)) {
    const std::string why = std::filesystem::exists(file, ec)
                                ? (std::filesystem::is_directory(file, ec) ? "a folder"
                                                                           : "an unreadable file")
                                : "no such file";
    throw ConfigError(file.string(), 0, 0, "(file)", why, "a readable YAML config file");
  }
  std::ostringstream text;
  text << in.rdbuf();
  const std::filesystem::path base = std::filesystem::absolute(file, ec).parent_path();
  return parse_config(text.str(), file.string(), base, overrides);
}

// ---------------------------------------------------------------------------------------------
// Emitting

namespace {

// The shortest decimal that reads back as exactly `v` (0.1, not 0.10000000000000001), as a plain
// YAML scalar. Config values are finite; anything else keeps yaml-cpp's spelling (.inf, .nan).
void emit_number(YAML::Emitter& out, double v) {
  if (!std::isfinite(v)) {
    out << v;
    return;
  }
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  assert(ec == std::errc());
  out << std::string(buffer, end);
}

void emit_sweep(YAML::Emitter& out, const char* key, const Sweep& s) {
  out << YAML::Key << key;
  if (s.list.size() == 1) {
    out << YAML::Value;
    emit_number(out, s.list.front());
  } else if (!s.list.empty()) {
    out << YAML::Flow << YAML::BeginSeq;
    for (const double v : s.list) emit_number(out, v);
    out << YAML::EndSeq;
  } else {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "start" << YAML::Value;
    emit_number(out, s.start);
    out << YAML::Key << "stop" << YAML::Value;
    emit_number(out, s.stop);
    out << YAML::Key << "step" << YAML::Value;
    emit_number(out, s.step);
    out << YAML::EndMap;
  }
}

}  // namespace

std::string to_yaml(const Config& c) {
  YAML::Emitter out;
  out.SetDoublePrecision(17);  // round-trips any double not written by emit_number
  const auto kv = [&out](const char* key, const auto& value) {
    out << YAML::Key << key << YAML::Value;
    if constexpr (std::is_same_v<std::decay_t<decltype(value)>, double>) {
      emit_number(out, value);
    } else {
      out << value;
    }
  };
  const auto curve_yaml = [&out, &kv](const CurveConfig& curve) {
    out << YAML::Key << "curve" << YAML::Value << YAML::BeginMap;
    kv("secret_key_file", curve.secret_key_file.string());
    kv("authorized_keys_file", curve.authorized_keys_file.string());
    out << YAML::EndMap;
  };
  const auto null_or = [&out](const char* key, const std::optional<double>& v) {
    out << YAML::Key << key << YAML::Value;
    if (v) {
      emit_number(out, *v);
    } else {
      out << YAML::Null;
    }
  };
  out << YAML::BeginMap;
  out << YAML::Key << "library" << YAML::Value << YAML::BeginMap;
  kv("source", to_string(c.library.source));
  kv("directory", c.library.directory.string());
  kv("model_file", c.library.model_file.string());
  out << YAML::Key << "categorical" << YAML::Value << YAML::Flow << c.library.categorical;
  {
    const SimulateConfig& s = c.library.simulate;
    out << YAML::Key << "simulate" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "ions" << YAML::Value << YAML::Flow << s.ions;
    kv("symmetry", to_string(s.symmetry));
    emit_sweep(out, "tendq_ev", s.tendq_ev);
    emit_sweep(out, "ds_ev", s.ds_ev);
    emit_sweep(out, "dt_ev", s.dt_ev);
    emit_sweep(out, "slater_scale", s.slater_scale);
    null_or("slater_scale_dd", s.slater_scale_dd);
    null_or("slater_scale_pd", s.slater_scale_pd);
    kv("zeta_scale", s.zeta_scale);
    kv("exchange_field_ev", s.exchange_field_ev);
    emit_sweep(out, "temperature_k", s.temperature_k);
    kv("polarization", to_string(s.polarization));
    kv("lorentz_fwhm_l3_ev", s.lorentz_fwhm_l3_ev);
    kv("lorentz_fwhm_l2_ev", s.lorentz_fwhm_l2_ev);
    emit_sweep(out, "lorentz_scale", s.lorentz_scale);
    kv("lifetime_rule", to_string(s.lifetime_rule));
    emit_sweep(out, "gauss_fwhm_ev", s.gauss_fwhm_ev);
    out << YAML::Key << "overrides" << YAML::Value << YAML::BeginMap;
    for (const auto& [name, value] : s.overrides) kv(name.c_str(), value);
    out << YAML::EndMap;
    out << YAML::Key << "energy_offset_ev" << YAML::Value << YAML::BeginMap;
    for (const auto& [ion, offset] : s.energy_offset_ev) kv(ion.c_str(), offset);
    out << YAML::EndMap << YAML::EndMap;
  }
  out << YAML::Key << "grid" << YAML::Value << YAML::BeginMap;
  kv("emin_ev", c.library.grid.emin_ev);
  kv("emax_ev", c.library.grid.emax_ev);
  kv("step_ev", c.library.grid.step_ev);
  out << YAML::EndMap;
  {
    const PreprocessConfig& p = c.library.preprocess;
    out << YAML::Key << "preprocess" << YAML::Value << YAML::BeginMap;
    kv("background", to_string(p.background));
    kv("normalize", to_string(p.normalize));
    kv("smooth_fwhm_ev", p.smooth_fwhm_ev);
    kv("edge_window_ev", p.edge_window_ev);
    kv("align", to_string(p.align));
    kv("max_shift_ev", p.max_shift_ev);
    kv("shift_step_ev", p.shift_step_ev);
    kv("shift_penalty", p.shift_penalty);
    kv("min_coverage", p.min_coverage);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;

  out << YAML::Key << "embedding" << YAML::Value << YAML::BeginMap;
  kv("method", to_string(c.embedding.method));
  kv("distance", to_string(c.embedding.distance));
  kv("landmarks", c.embedding.landmarks);
  kv("landmark_selection", to_string(c.embedding.landmark_selection));
  kv("map_dims", c.embedding.map_dims);
  kv("estimate_dims", c.embedding.estimate_dims);
  kv("isomap_neighbors", c.embedding.isomap_neighbors);
  kv("seed", c.embedding.seed);
  out << YAML::EndMap;

  out << YAML::Key << "estimation" << YAML::Value << YAML::BeginMap;
  kv("neighbors", c.estimation.neighbors);
  kv("weighting", to_string(c.estimation.weighting));
  kv("local_linear_dims", c.estimation.local_linear_dims);
  kv("report_neighbors", c.estimation.report_neighbors);
  kv("novelty_threshold", c.estimation.novelty_threshold);
  kv("probability_noise", c.estimation.probability_noise);
  kv("probability_residual", c.estimation.probability_residual);
  kv("probability_spacing", c.estimation.probability_spacing);
  kv("interval_spacing", c.estimation.interval_spacing);
  kv("interval_residual", c.estimation.interval_residual);
  kv("interval_noise", c.estimation.interval_noise);
  kv("exact_partial_rows", c.estimation.exact_partial_rows);
  kv("exact_partial_novelty", c.estimation.exact_partial_novelty);
  kv("mixture", to_string(c.estimation.mixture));
  out << YAML::EndMap;

  out << YAML::Key << "calibration" << YAML::Value << YAML::BeginMap;
  kv("session_offset_ev", c.calibration.session_offset_ev);
  if (!c.calibration.reference_file.empty()) {
    kv("reference_file", c.calibration.reference_file.string());
    kv("reference_charge", c.calibration.reference_charge);
  }
  kv("track", to_string(c.calibration.track));
  kv("track_window", c.calibration.track_window);
  kv("track_min_samples", c.calibration.track_min_samples);
  kv("track_min_confidence", c.calibration.track_min_confidence);
  kv("search_ev", c.calibration.search_ev);
  out << YAML::EndMap;

  out << YAML::Key << "input" << YAML::Value << YAML::BeginMap;
  kv("endpoint", c.input.endpoint);
  kv("pattern", to_string(c.input.pattern));
  kv("bind", c.input.bind);
  kv("topic", c.input.topic);
  kv("queue_capacity", c.input.queue_capacity);
  kv("overflow", to_string(c.input.overflow));
  kv("max_message_bytes", c.input.max_message_bytes);
  kv("max_points", c.input.max_points);
  kv("max_stack_pixels", c.input.max_stack_pixels);
  kv("workers", c.input.workers);
  kv("memory_budget_bytes", c.input.memory_budget_bytes);
  kv("dedup_ids", c.input.dedup_ids);
  curve_yaml(c.input.curve);
  out << YAML::EndMap;

  out << YAML::Key << "output" << YAML::Value << YAML::BeginMap;
  kv("endpoint", c.output.endpoint);
  kv("bind", c.output.bind);
  kv("send_hwm", c.output.send_hwm);
  curve_yaml(c.output.curve);
  out << YAML::EndMap;

  out << YAML::Key << "control" << YAML::Value << YAML::BeginMap;
  kv("endpoint", c.control.endpoint);
  kv("max_request_bytes", c.control.max_request_bytes);
  curve_yaml(c.control.curve);
  out << YAML::EndMap;

  out << YAML::Key << "metrics" << YAML::Value << YAML::BeginMap;
  kv("interval_s", c.metrics.interval_s);
  out << YAML::EndMap;

  out << YAML::Key << "logging" << YAML::Value << YAML::BeginMap;
  kv("level", to_string(c.logging.level));
  kv("format", to_string(c.logging.format));
  kv("pattern", c.logging.pattern);
  kv("file", c.logging.file.string());
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace xasmap::config
