#pragma once
// The validated, immutable configuration of xasmapd and the xasmap tool.
//
// A Config is built once, by load_config() or parse_config(), and then handed around as
// `const Config&` (or std::shared_ptr<const Config> where it must outlive a reload). Every field has
// the default documented in deploy/xasmapd.yaml and docs/configuration.md; the two must agree with
// the initialisers below. Config::validate() checks ranges and cross-field rules, so a Config built
// in code (tests, command-line tools) is held to the same rules as one read from YAML.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "xasmap/config/config_error.hpp"

namespace xasmap::config {

// A swept parameter: one value, an explicit list, or start/stop/step (stop included when it lies on
// the step within 1e-9 of a step). values() expands it.
struct Sweep {
  std::vector<double> list;             // used when non-empty
  double start = 0.0, stop = 0.0, step = 0.0;  // used when list is empty
  std::vector<double> values() const;
  static Sweep single(double v) { return Sweep{{v}, 0, 0, 0}; }
  static Sweep range(double start, double stop, double step) { return Sweep{{}, start, stop, step}; }
  bool operator==(const Sweep&) const = default;
};

enum class LibrarySource { kSimulate, kFiles, kModel };
enum class Symmetry { kOh, kD4h };
enum class Polarization { kIsotropic, kX, kY, kZ, kLeft, kRight };
// How a stick's Lorentzian width is chosen between the L3 and L2 widths (xasmap::LifetimeRule).
enum class LifetimeRule { kCoreHole, kSplitEnergy };
enum class Background { kPrePostLine, kEdgeStep, kNone };
enum class Normalization { kArea, kMax, kEdgeStep, kNone };
enum class Alignment { kNone, kFitShift };
enum class EmbeddingMethod { kMds, kLmds, kIsomap };
enum class DistanceKind { kEuclidean, kCorrelation, kDerivative, kWasserstein };
enum class LandmarkSelection { kMaxMin, kRandom };
enum class Weighting { kInverseDistance, kLocalLinear };
enum class InputPattern { kSub, kPull, kRouter };
enum class Overflow { kDropOldest, kDropNewest, kBlock };
enum class OffsetTracking { kOff, kReport, kApply };
enum class MixtureMode { kAuto, kOff };
enum class LogFormat { kText, kJson };
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };

// library.simulate: the parameter grid the built-in multiplet simulator sweeps.
struct SimulateConfig {
  std::vector<std::string> ions{"Mn2+", "Mn3+", "Mn4+"};
  Symmetry symmetry = Symmetry::kOh;
  Sweep tendq_ev = Sweep::range(0.0, 2.5, 0.1);
  Sweep ds_ev = Sweep::single(0.0);
  Sweep dt_ev = Sweep::single(0.0);
  // Settings that vary between real spectra but are not asked for (nuisance parameters) may be
  // swept like 10Dq: slater_scale, temperature_k, gauss_fwhm_ev and lorentz_scale. Each one with
  // more than one value multiplies the library and becomes a reported parameter; the estimate
  // of charge and 10Dq then takes the best-matching settings (docs/estimation.md).
  // The defaults span Slater reductions 0.65-0.95 (0.7-0.9 is typical of 3d oxides), a cryostat
  // and room temperature, and two instrument widths; the cost is stated in docs/benchmarks.md.
  Sweep slater_scale = Sweep{{0.65, 0.8, 0.95}, 0, 0, 0};  // scales F(dd), F(pd), G(pd)
  std::optional<double> slater_scale_dd;      // overrides slater_scale for F2/F4(dd)
  std::optional<double> slater_scale_pd;      // overrides slater_scale for F2(pd), G1/G3(pd)
  double zeta_scale = 1.0;                    // scales zeta(2p) and zeta(3d)
  double exchange_field_ev = 0.0;             // spin exchange field along z
  // Room temperature: at 0 K only the lowest spin-orbit sublevel of an orbitally degenerate
  // ground state (Mn3+ 5E, Fe2+, Co2+) would count, and those sublevels lie meV apart.
  Sweep temperature_k = Sweep{{20.0, 300.0}, 0, 0, 0};
  Polarization polarization = Polarization::kIsotropic;
  double lorentz_fwhm_l3_ev = 0.4;
  double lorentz_fwhm_l2_ev = 0.8;
  Sweep lorentz_scale = Sweep::single(1.0);   // multiplies both lifetime widths
  LifetimeRule lifetime_rule = LifetimeRule::kCoreHole;
  Sweep gauss_fwhm_ev = Sweep{{0.2, 0.4}, 0, 0, 0};
  // Named multiplet parameters set after scaling, for every ion (eV; names as in
  // xasmap::multiplet_parameter_names(), e.g. zeta2p, g1pd, f0dd_final).
  std::map<std::string, double> overrides;
  // Absolute energy = simulator's relative energy + this offset, per ion (see docs/simulator.md).
  std::map<std::string, double> energy_offset_ev{
      {"Mn2+", 645.05}, {"Mn3+", 646.35}, {"Mn4+", 647.10}};
  bool operator==(const SimulateConfig&) const = default;
};

// library.grid: the common energy grid every spectrum is resampled onto.
struct GridConfig {
  double emin_ev = 635.0;
  double emax_ev = 660.0;
  double step_ev = 0.1;
  bool operator==(const GridConfig&) const = default;
};

// library.preprocess: applied identically to library and measured spectra.
struct PreprocessConfig {
  Background background = Background::kPrePostLine;
  Normalization normalize = Normalization::kArea;
  double smooth_fwhm_ev = 0.0;      // Gaussian smoothing; 0 = off
  double edge_window_ev = 1.5;      // width of the pre- and post-edge regions of the background
  Alignment align = Alignment::kFitShift;
  double max_shift_ev = 0.5;        // bound of the fitted energy offset when align = fit_shift
  double shift_step_ev = 0.05;      // step of the library's shifted copies
  double shift_penalty = 0.5;       // prior against large offsets (see docs/estimation.md)
  double min_coverage = 0.6;        // fraction of the grid a spectrum must cover to be judged
  bool operator==(const PreprocessConfig&) const = default;
};

struct LibraryConfig {
  LibrarySource source = LibrarySource::kSimulate;
  std::filesystem::path directory;   // source = files: spectra plus manifest.csv
  std::filesystem::path model_file;  // source = model: a fitted model written by `xasmap embed`
  // source = files: manifest columns that are categorical whatever they hold (besides charge,
  // symmetry and columns named NAME:cat). A column mixing numbers and text is otherwise refused.
  std::vector<std::string> categorical;
  SimulateConfig simulate;
  GridConfig grid;
  PreprocessConfig preprocess;
  bool operator==(const LibraryConfig&) const = default;
};

struct EmbeddingConfig {
  EmbeddingMethod method = EmbeddingMethod::kLmds;
  DistanceKind distance = DistanceKind::kCorrelation;
  int landmarks = 64;
  LandmarkSelection landmark_selection = LandmarkSelection::kMaxMin;
  int map_dims = 2;        // dimensions of the map dashboards draw
  int estimate_dims = 12;  // dimensions used for neighbour search and estimation
  int isomap_neighbors = 8;
  unsigned seed = 1;       // random landmark selection and anything else stochastic
  bool operator==(const EmbeddingConfig&) const = default;
};

struct EstimationConfig {
  int neighbors = 4;
  Weighting weighting = Weighting::kLocalLinear;
  int local_linear_dims = 2;
  int report_neighbors = 3;
  double novelty_threshold = 4.0;
  // Temperature of the charge probabilities and widths of the 68 % intervals
  // (xasmap::ModelOptions; fitted on the held-out calibration set, docs/validation.md).
  double probability_noise = 120.0;
  double probability_residual = 0.46;
  double probability_spacing = 0.0;
  double interval_spacing = 0.39;
  double interval_residual = 0.58;
  double interval_noise = 0.2;
  long long exact_partial_rows = 20000;   // narrow windows: rank every row when the library is this small
  double exact_partial_novelty = 2.0;     // ... when the best candidate's novelty exceeds this
  // Mixed valence (docs/estimation.md, Mixtures): auto fits every spectrum and pixel as one charge
  // or a mixture of two and publishes atom fractions and the mean valence; off publishes neither.
  // Off by default while it costs about 0.27 ms a spectrum (docs/benchmarks.md).
  MixtureMode mixture = MixtureMode::kOff;
  bool operator==(const EstimationConfig&) const = default;
};

// The session's energy calibration offset (measured = true + offset; docs/estimation.md).
struct CalibrationConfig {
  double session_offset_ev = 0.0;          // known offset, e.g. from `xasmap calibrate`
  std::filesystem::path reference_file;    // or: a standard measured this session, calibrated at start
  double reference_charge = 0.0;           // the standard's charge (required with reference_file)
  OffsetTracking track = OffsetTracking::kApply;  // the daemon's tracking of the offset from the stream
  int track_window = 64;                   // confident estimates the tracked median is taken over
  int track_min_samples = 8;               // before this many, the start offset holds
  double track_min_confidence = 0.9;       // charge probability an estimate needs to count
  // Until the offset is known (calibrated on reference_file, or tracked with track: apply from
  // track_min_samples estimates), the session offset is searched within +-search_ev of the start
  // (estimate_over_offsets: 1 + 2 floor(search_ev / max_shift_ev) estimates a spectrum). 0: the
  // configured session_offset_ev is known, e.g. from `xasmap calibrate`.
  double search_ev = 1.0;
  bool operator==(const CalibrationConfig&) const = default;
};

// CURVE authentication and encryption of one socket (docs/operations.md). Keys live in files,
// written by `xasmap keygen`, never in the YAML. Off while secret_key_file is empty.
//   secret_key_file: this side's key pair (a ZeroMQ certificate, NAME.key).
//   authorized_keys_file: one Z85 public key a line (a NAME.pub file also does). A socket that
//     binds admits only the clients listed (empty: any client that knows our public key, i.e.
//     encryption only); a socket that connects takes the one key listed as its server's key.
struct CurveConfig {
  std::filesystem::path secret_key_file;
  std::filesystem::path authorized_keys_file;
  bool enabled() const { return !secret_key_file.empty(); }
  bool operator==(const CurveConfig&) const = default;
};

struct InputConfig {
  std::string endpoint = "tcp://127.0.0.1:5555";
  InputPattern pattern = InputPattern::kSub;
  bool bind = false;
  std::string topic = "spectrum";
  int queue_capacity = 10000;
  Overflow overflow = Overflow::kDropOldest;
  long long max_message_bytes = 256LL << 20;  // 256 MiB: a 256x256x500 float64 stack is 262 MB
  int max_points = 100000;
  int max_stack_pixels = 1 << 20;
  int workers = 0;  // 0 = one per hardware thread
  // Bytes of input and results the daemon holds at once: messages in the input queue, stacks being
  // computed, results in the outbox and in ZeroMQ's send queue. 1 GiB: four stacks at the default
  // max_message_bytes. When it is full, input.overflow decides (docs/operations.md).
  long long memory_budget_bytes = 1LL << 30;
  // pattern router (acknowledged input): the ids of this many answered messages are remembered,
  // so that a sender's resend of one already answered is not estimated again (docs/protocol.md).
  long long dedup_ids = 100000;
  CurveConfig curve;  // the publisher's key is the authorized one
  bool operator==(const InputConfig&) const = default;
};

struct OutputConfig {
  std::string endpoint = "tcp://127.0.0.1:5556";
  bool bind = true;
  int send_hwm = 100000;
  CurveConfig curve;  // encrypts the results; authorized keys, if any, name the subscribers
  bool operator==(const OutputConfig&) const = default;
};

struct ControlConfig {
  std::string endpoint = "tcp://127.0.0.1:5557";
  // A request longer than this is refused with an error naming the key; a request is a small map
  // such as {"cmd": "status"}, so 64 KiB leaves ample room.
  long long max_request_bytes = 65536;
  CurveConfig curve;  // authorized_keys_file is required: the clients that may reload or stop
  bool operator==(const ControlConfig&) const = default;
};

struct MetricsConfig {
  double interval_s = 1.0;
  bool operator==(const MetricsConfig&) const = default;
};

struct LoggingConfig {
  LogLevel level = LogLevel::kInfo;
  LogFormat format = LogFormat::kText;
  std::string pattern = "[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v";  // spdlog syntax, text format only
  std::filesystem::path file;  // empty: standard error
  bool operator==(const LoggingConfig&) const = default;
};

// A problem found by validate(): which key, what it holds, what it should hold.
struct Problem {
  std::string key_path;
  std::string found;
  std::string expected;
};

struct Config {
  LibraryConfig library;
  EmbeddingConfig embedding;
  EstimationConfig estimation;
  CalibrationConfig calibration;
  InputConfig input;
  OutputConfig output;
  ControlConfig control;
  MetricsConfig metrics;
  LoggingConfig logging;
  std::filesystem::path source_file;  // empty when built in code

  // All range and cross-field problems, in key order; empty when the config is usable.
  std::vector<Problem> validate() const;
  // Settings that are valid but risky, as one line each naming the key (for the start-up log and
  // --check-config): a control endpoint bound to every interface (tcp://*, 0.0.0.0, [::]), where
  // anyone who reaches the port can reload or stop the daemon, when control has no CURVE
  // authentication; likewise input or output on every interface without it.
  std::vector<std::string> warnings() const;
  bool operator==(const Config&) const = default;
};

// Endpoint overrides from the command line (--input, --output, --control).
struct Overrides {
  std::optional<std::string> input_endpoint;
  std::optional<std::string> output_endpoint;
  std::optional<std::string> control_endpoint;
};

// Reads, parses and validates a YAML file. Relative paths inside it resolve against its folder.
// Throws ConfigError naming the file, line, column and key path of the first problem.
Config load_config(const std::filesystem::path& file, const Overrides& overrides = {});

// Parses YAML text; `source_name` stands for the file in messages, `base_dir` resolves relative paths.
Config parse_config(const std::string& yaml, const std::string& source_name,
                    const std::filesystem::path& base_dir = {}, const Overrides& overrides = {});

// The effective configuration as YAML, every key present. parse_config(to_yaml(c)) == c.
std::string to_yaml(const Config& config);

// Checks a ZeroMQ endpoint: tcp://HOST:PORT, ipc://PATH or inproc://NAME. A bound tcp endpoint may
// use * for host or port. Returns an empty string when valid, else what was expected.
std::string check_endpoint(const std::string& endpoint, bool bind);

// Whether a tcp endpoint's host is a wildcard that listens on every interface: *, 0.0.0.0, [::]
// or [0:0:0:0:0:0:0:0]. False for ipc://, inproc:// and named or specific hosts.
bool is_wildcard_endpoint(const std::string& endpoint);

// Enum <-> YAML spelling, used by the parser, to_yaml() and the service's logs.
std::string to_string(LibrarySource v);
std::string to_string(Symmetry v);
std::string to_string(Polarization v);
std::string to_string(LifetimeRule v);
std::string to_string(Background v);
std::string to_string(Normalization v);
std::string to_string(Alignment v);
std::string to_string(EmbeddingMethod v);
std::string to_string(DistanceKind v);
std::string to_string(LandmarkSelection v);
std::string to_string(Weighting v);
std::string to_string(InputPattern v);
std::string to_string(Overflow v);
std::string to_string(OffsetTracking v);
std::string to_string(MixtureMode v);
std::string to_string(LogFormat v);
std::string to_string(LogLevel v);

}  // namespace xasmap::config
