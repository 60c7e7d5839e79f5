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
#include <variant>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/multiplet.hpp"
#include "xasmap/core/text.hpp"
#include "keys.hpp"
#include "yaml_reader.hpp"

namespace xasmap::config {

using detail::Entry;
using detail::Bounds;

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

bool HostPort::loopback() const {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::optional<HostPort> parse_host_port(const std::string& text, std::string* expected) {
  const auto fail = [&](const char* what) -> std::optional<HostPort> {
    if (expected) *expected = what;
    return std::nullopt;
  };
  constexpr const char* kForm = "HOST:PORT, for example 127.0.0.1:9464 (no scheme, no path)";
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || text.find('/') != std::string::npos) return fail(kForm);
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) return fail(kForm);
  } else if (host == "*" || host.find(':') != std::string::npos || !valid_host(host)) {
    return fail(kForm);
  }
  int number = -1;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size()) return fail(kForm);
  if (number < 0 || number > 65535) return fail("a port in [0, 65535] (0: any free port)");
  return HostPort{host, number};
}

std::vector<std::string> Config::warnings() const {
  std::vector<std::string> out;
  if (const auto http = parse_host_port(metrics.http_endpoint); http && !http->loopback()) {
    out.push_back("metrics.http_endpoint '" + metrics.http_endpoint +
                  "' is not a loopback address: the metrics have no authentication; anyone who can reach "
                  "the port can read the counters (docs/operations.md, Monitoring)");
  }
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
  if (s.slater_scale.values().size() > 1 && (s.slater_scale_dd || s.slater_scale_pd)) {
    c.add(p + ".slater_scale", "several values with slater_scale_dd or slater_scale_pd set",
          "one value, or no slater_scale_dd and slater_scale_pd (a swept scale applies to all)");
  }
  const ChargeTransferConfig& ct = s.charge_transfer;
  for (const auto& [ion, shift] : ct.delta_shift_ev) {
    if (std::find(s.ions.begin(), s.ions.end(), ion) == s.ions.end()) {
      c.add(p + ".charge_transfer.delta_shift_ev." + ion, "'" + ion + "', not in library.simulate.ions",
            "an ion of library.simulate.ions");
    }
    for (double v : ct.delta_ev.values()) c.range(p + ".charge_transfer.delta_shift_ev." + ion, v + shift, -20.0, 20.0);
  }
  if (ct.configurations > 1) {
    for (std::size_t i = 0; i < s.ions.size(); ++i) {
      if (!valid_ion(s.ions[i])) continue;
      int room = 0;
      try {
        room = 10 - xasmap::parse_ion(s.ions[i]).n3d;
      } catch (const xasmap::Error&) {
        continue;  // reported by the simulator with the ion's name
      }
      if (room < ct.configurations - 1) {
        c.add(p + ".charge_transfer.configurations",
              std::to_string(ct.configurations) + " with " + s.ions[i] + " (room for " + std::to_string(room) +
                  " transferred electrons)",
              "at most " + std::to_string(room + 1) + " for every ion in library.simulate.ions");
      }
    }
  }
  std::size_t size = s.ions.size();
  for (const Sweep* sweep : {&s.tendq_ev, &s.ds_ev, &s.dt_ev, &s.slater_scale, &s.temperature_k,
                             &s.lorentz_scale, &s.gauss_fwhm_ev}) {
    size *= std::max<std::size_t>(1, sweep->values().size());
  }
  if (ct.configurations > 1) {
    for (const Sweep* sweep : {&ct.delta_ev, &ct.udd_ev, &ct.upd_ev, &ct.veg_ev, &ct.vt2g_ev}) {
      size *= std::max<std::size_t>(1, sweep->values().size());
    }
  }
  if (size > kMaxSweepValues) {
    c.add(p, std::to_string(size) + " spectra (ions x every swept value)",
          "at most " + std::to_string(kMaxSweepValues) + " spectra");
  }
}

void validate_library(const LibraryConfig& l, const ModelOptions& model, Checker& c) {
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

  if (l.preprocess.align == Alignment::kFitShift && model.shift_step_ev > model.max_shift_ev && model.max_shift_ev > 0) {
    c.add("library.preprocess.shift_step_ev", number_text(model.shift_step_ev),
          "a step no larger than library.preprocess.max_shift_ev (" + number_text(model.max_shift_ev) + ")");
  }
}

// The ranges the table gives, key by key.
void validate_ranges(const Config& config, Checker& c) {
  Config& cfg = const_cast<Config&>(config);  // the members are only read
  for (const Entry& e : detail::entries()) {
    if (!e.field || e.bounds.kind == Bounds::kAny) continue;
    const std::string key(e.path);
    const double lo = e.bounds.lo, hi = e.bounds.hi;
    const auto number = [&](const std::string& k, double v) {
      if (e.bounds.kind == Bounds::kPositive) {
        c.positive(k, v, hi);
      } else {
        c.range(k, v, lo, hi);
      }
    };
    const auto integer = [&](long long v) {
      c.count(key, v, static_cast<long long>(lo), static_cast<long long>(hi));
    };
    std::visit(
        [&](const auto& field) {
          using F = std::decay_t<decltype(field)>;
          if constexpr (std::is_same_v<F, detail::Member<double>>) {
            number(key, field(cfg));
          } else if constexpr (std::is_same_v<F, detail::Member<int>> || std::is_same_v<F, detail::Member<long long>>) {
            integer(field(cfg));
          } else if constexpr (std::is_same_v<F, detail::Member<Sweep>>) {
            c.sweep(key, field(cfg), lo, hi);
          } else if constexpr (std::is_same_v<F, detail::Member<std::optional<double>>>) {
            if (field(cfg)) number(key, *field(cfg));
          } else if constexpr (std::is_same_v<F, detail::Member<std::map<std::string, double>>>) {
            for (const auto& [name, v] : field(cfg)) number(key + "." + name, v);
          }  // the other kinds of key have no bounds
        },
        *e.field);
  }
}

}  // namespace

std::vector<Problem> Config::validate() const {
  std::vector<Problem> problems;
  Checker c(problems);
  validate_ranges(*this, c);
  validate_library(library, model, c);

  const ModelOptions& e = model;
  if (e.estimate_dims < e.map_dims) {
    c.add("embedding.estimate_dims", std::to_string(e.estimate_dims),
          "at least embedding.map_dims (" + std::to_string(e.map_dims) + ")");
  }
  if (e.method != EmbeddingKind::kMds && e.landmarks <= e.estimate_dims) {
    c.add("embedding.landmarks", std::to_string(e.landmarks),
          "more landmarks than embedding.estimate_dims (" + std::to_string(e.estimate_dims) + ")");
  }
  if (e.probability_noise + e.probability_residual + e.probability_spacing <= 0.0) {
    c.add("estimation.probability_noise", "0 with probability_residual and probability_spacing 0",
          "at least one of them > 0 (a zero temperature makes every probability 0 or 1)");
  }

  const CalibrationConfig& cal = calibration;
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
  if (cal.track_min_samples > cal.track_window) {
    c.add("calibration.track_min_samples", std::to_string(cal.track_min_samples),
          "at most calibration.track_window (" + std::to_string(cal.track_window) + ")");
  }

  const InputConfig& in = input;
  c.endpoint("input.endpoint", in.endpoint, in.bind);
  if (in.topic.empty() || in.topic.size() > 255) {
    c.add("input.topic", "'" + in.topic + "'", "a topic of 1 to 255 bytes");
  }
  if (in.pattern == InputPattern::kRouter && !in.bind) {
    c.add("input.bind", "false", "true with pattern router: the daemon's ROUTER binds, and senders' DEALERs connect");
  }
  if (in.memory_budget_bytes < in.max_message_bytes) {
    c.add("input.memory_budget_bytes", std::to_string(in.memory_budget_bytes),
          "at least input.max_message_bytes (" + std::to_string(in.max_message_bytes) +
              "), so that a message of the largest size fits");
  }

  c.endpoint("output.endpoint", output.endpoint, output.bind);
  c.endpoint("control.endpoint", control.endpoint, true);
  if (!output.nexus_file.empty()) {
    std::error_code ec;
    const std::filesystem::path folder = std::filesystem::absolute(output.nexus_file, ec).parent_path();
    if (!std::filesystem::is_directory(folder, ec)) {
      c.add("output.nexus_file", "'" + output.nexus_file.string() + "'", "a file in an existing folder (" + folder.string() + " is not one)");
    } else if (std::filesystem::is_directory(output.nexus_file, ec)) {
      c.add("output.nexus_file", "'" + output.nexus_file.string() + "', a folder", "a file name");
    }
  }
  if (std::string expected; !metrics.http_endpoint.empty() && !parse_host_port(metrics.http_endpoint, &expected)) {
    c.add("metrics.http_endpoint", "'" + metrics.http_endpoint + "'", expected + ", or empty (off)");
  }
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

  if (logging.format == LogFormat::kText && logging.pattern.empty()) {
    c.add("logging.pattern", "an empty pattern", "an spdlog pattern such as '[%l] %v'");
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Parsing

namespace {

using detail::MapReader;

// Reads one key of the table into its member.
void read_key(MapReader& r, const Entry& e, Config& c) {
  const std::string name(e.name());
  std::visit(
      [&](const auto& field) {
        using F = std::decay_t<decltype(field)>;
        if constexpr (std::is_same_v<F, detail::Choice>) {
          if (const auto i = r.word(name, field.names)) field.set(c, *i);
        } else if constexpr (std::is_same_v<F, detail::Member<double>>) {
          r.number(name, field(c));
        } else if constexpr (std::is_same_v<F, detail::Member<int>> || std::is_same_v<F, detail::Member<long long>> ||
                             std::is_same_v<F, detail::Member<unsigned long>>) {
          r.integer(name, field(c));
        } else if constexpr (std::is_same_v<F, detail::Member<bool>>) {
          r.boolean(name, field(c));
        } else if constexpr (std::is_same_v<F, detail::Member<std::string>>) {
          r.string(name, field(c));
        } else if constexpr (std::is_same_v<F, detail::Member<std::filesystem::path>>) {
          r.path(name, field(c));
        } else if constexpr (std::is_same_v<F, detail::Member<Sweep>>) {
          r.sweep(name, field(c));
        } else if constexpr (std::is_same_v<F, detail::Member<std::optional<double>>>) {
          r.optional_number(name, field(c));
        } else if constexpr (std::is_same_v<F, detail::Member<std::vector<std::string>>>) {
          r.string_list(name, field(c));
        } else {
          static_assert(std::is_same_v<F, detail::Member<std::map<std::string, double>>>);
          r.number_map(name, field(c));
        }
      },
      *e.field);
}

// Walks the table: a reader per section, opened at its entry and finished (refusing unknown and
// repeated keys) when the walk leaves it.
void read_document(detail::Context& ctx, const YAML::Node& root, Config& c) {
  std::vector<std::pair<std::string_view, MapReader>> open;
  open.emplace_back(std::string_view(), MapReader(ctx, root, ""));
  for (const Entry& e : detail::entries()) {
    while (open.back().first != e.parent()) {
      open.back().second.finish();
      open.pop_back();
    }
    MapReader& r = open.back().second;
    if (e.field) {
      read_key(r, e, c);
    } else {
      MapReader section = r.section(std::string(e.name()));
      open.emplace_back(e.path, std::move(section));
    }
  }
  while (!open.empty()) {
    open.back().second.finish();
    open.pop_back();
  }
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

// The table as YAML: every key, at two spaces an indentation level; with `documented`, the file's
// header, each key's comment and blank lines between sections.
std::string write_yaml(const Config& c, bool documented) {
  std::string out;
  const auto comment = [&](std::string_view text, const std::string& indent) {
    while (true) {
      const auto nl = text.find('\n');
      const std::string_view line = text.substr(0, nl);
      out += indent + (line.empty() ? "#" : "# " + std::string(line)) + "\n";
      if (nl == std::string_view::npos) break;
      text.remove_prefix(nl + 1);
    }
  };
  if (documented) comment(detail::file_header(), "");
  Config& cfg = const_cast<Config&>(c);  // the members are only read
  for (const Entry& e : detail::entries()) {
    const std::string indent(2 * static_cast<std::size_t>(e.depth()), ' ');
    if (documented && !e.field && e.blank_before && !out.empty()) out += "\n";
    if (documented && !e.doc.empty()) comment(e.doc, indent);
    out += indent + std::string(e.name()) + ":";
    if (!e.field) {
      out += "\n";
      continue;
    }
    // A number map with entries is written as a block, one entry a line.
    if (const auto* map = std::get_if<detail::Member<std::map<std::string, double>>>(&*e.field);
        map != nullptr && !(*map)(cfg).empty()) {
      out += "\n";
      for (const auto& [name, v] : (*map)(cfg)) {
        out += indent + "  " + detail::scalar_text(name) + ": " + detail::number_text(v) + "\n";
      }
      continue;
    }
    out += " " + detail::value_text(e, c) + "\n";
  }
  return out;
}

}  // namespace

std::string to_yaml(const Config& c) { return write_yaml(c, false); }

std::string documented_yaml(const Config& c) { return write_yaml(c, true); }

std::vector<KeyInfo> key_table(const Config& c) {
  std::vector<KeyInfo> out;
  for (const Entry& e : detail::entries()) {
    if (!e.field) continue;
    out.push_back({std::string(e.path), detail::value_text(e, c), detail::accepts(e), std::string(e.doc)});
  }
  return out;
}

std::string keys_markdown(const Config& c) {
  // A cell: pipes escaped, line breaks as spaces.
  const auto cell = [](const std::string& text) {
    std::string out;
    for (const char ch : text) {
      if (ch == '|') {
        out += "\\|";
      } else {
        out += ch == '\n' ? ' ' : ch;
      }
    }
    return out;
  };
  std::string out = "| key | default | accepts |\n| --- | --- | --- |\n";
  for (const KeyInfo& k : key_table(c)) {
    out += "| `" + k.path + "` | `" + cell(k.value) + "` | " + cell(k.accepts) + " |\n";
  }
  return out;
}

std::vector<KeyChange> differences(const Config& from, const Config& to, bool fitted_only) {
  std::vector<KeyChange> out;
  for (const Entry& e : detail::entries()) {
    if (!e.field || (fitted_only && !e.fitted)) continue;
    std::string a = detail::value_text(e, from), b = detail::value_text(e, to);
    if (a != b) out.push_back({std::string(e.path), std::move(a), std::move(b)});
  }
  return out;
}

}  // namespace xasmap::config
