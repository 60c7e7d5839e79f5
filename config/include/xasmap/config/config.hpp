#pragma once
// The validated, immutable configuration of xasmapd and the xasmap tool.
//
// A Config is built once, by load_config() or parse_config(), and then handed around as
// `const Config&` (or std::shared_ptr<const Config> where it must outlive a reload).
//
// One table of keys (config/src/schema.cpp: each key's path, the member it fills, its range and
// its comment) drives parsing, the range checks of validate(), to_yaml() and documented_yaml();
// deploy/xasmapd.yaml is documented_yaml(Config{}), and a test keeps it so. The keys of
// library.preprocess, embedding and estimation fill core's xasmap::ModelOptions (Config::model)
// directly, so their defaults are core's own. Config::validate() also checks the rules that tie
// keys together, so a Config built in code (tests, command-line tools) is held to the same rules
// as one read from YAML.

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "xasmap/config/config_error.hpp"
#include "xasmap/core/model.hpp"

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
enum class Alignment { kNone, kFitShift };
enum class InputPattern { kSub, kPull, kRouter };
enum class Overflow { kDropOldest, kDropNewest, kBlock };
enum class OffsetTracking { kOff, kReport, kApply };
enum class MixtureMode { kAuto, kOff };
enum class LogFormat { kText, kJson };
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };

// library.simulate.charge_transfer: 3d^n + 3d^(n+1)L (...) configuration interaction (issue #14;
// xasmap::ChargeTransferParameters and docs/simulator.md). configurations 1 is the crystal-field
// model and leaves the other keys unused. Each sweep with more than one value multiplies the
// library and becomes a parameter of its spectra (delta, udd, upd, veg, vt2g); with charge
// transfer every spectrum also carries its ground state's 3d count n_d and covalency (the weight
// outside 3d^n), parameters an estimate reports.
struct ChargeTransferConfig {
  int configurations = 1;
  Sweep delta_ev = Sweep::single(4.0);
  // Added to every value of delta_ev for the ion named (eV; an ion without an entry: 0), so that
  // one sweep follows Delta's fall with the valence (Mn2+ about 4 eV above Mn4+).
  std::map<std::string, double> delta_shift_ev;
  Sweep udd_ev = Sweep::single(6.0);
  Sweep upd_ev = Sweep::single(7.5);
  Sweep veg_ev = Sweep::single(2.0);
  Sweep vt2g_ev = Sweep::single(1.0);
  double ligand_tendq_ev = 0.0;
  bool operator==(const ChargeTransferConfig&) const = default;
};

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
  ChargeTransferConfig charge_transfer;
  bool operator==(const SimulateConfig&) const = default;
};

// library.grid: the common energy grid every spectrum is resampled onto.
struct GridConfig {
  double emin_ev = 635.0;
  double emax_ev = 660.0;
  double step_ev = 0.1;
  bool operator==(const GridConfig&) const = default;
};

// library.preprocess: applied identically to library and measured spectra. Its other keys fill
// Config::model (xasmap::PreprocessOptions and the shift options of xasmap::ModelOptions).
struct PreprocessConfig {
  // fit_shift: the energy offset is a nuisance parameter (model.max_shift_ev, shift_step_ev);
  // none: spectra are compared as they are (the model is fitted with max_shift_ev 0).
  Alignment align = Alignment::kFitShift;
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

// estimation: the keys that are not xasmap::ModelOptions' (those fill Config::model).
struct EstimationConfig {
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
  // Read no input while no subscriber is subscribed to the output (an XPUB socket counts the
  // subscriptions), so that results are not published to nobody: at start-up, before the
  // subscribers have (re)connected, and whenever the last one leaves. For pipelines whose
  // subscribers must see every result, with an input whose senders wait (router, or pull).
  bool wait_for_subscriber = false;
  CurveConfig curve;  // encrypts the results; authorized keys, if any, name the subscribers
  // Each stack's maps are also appended to this NeXus/HDF5 file as an NXentry (docs/files.md);
  // empty = off.
  std::filesystem::path nexus_file;
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
  // Prometheus's text exposition at http://HTTP_ENDPOINT/metrics (docs/operations.md,
  // Monitoring): HOST:PORT, empty = off. Port 0 takes a free port (logged, and in status).
  std::string http_endpoint;
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
  // The model's options, filled directly by the keys of library.preprocess (but align), embedding
  // and estimation (but mixture); their defaults are core's. service::model_options() adds the
  // grid (library.grid), the threads (input.workers) and the nuisance parameters, and applies
  // align: none. Its grid, threads and nuisance_parameters are not keys and stay at core's defaults.
  ModelOptions model;
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

// The same with every key's comment and the file's header: deploy/xasmapd.yaml is
// documented_yaml(Config{}) (`xasmap print-config --documented` writes it).
std::string documented_yaml(const Config& config);

// One key of the table, for reference pages (`xasmap print-config --keys`).
struct KeyInfo {
  std::string path;       // e.g. "embedding.landmarks"
  std::string value;      // its value in the config given, as YAML
  std::string accepts;    // e.g. "an integer in [3, 100000]", "one of mds, lmds, isomap"
  std::string doc;        // its comment (empty for a key that shares the comment above it)
};
std::vector<KeyInfo> key_table(const Config& config);
// The same as a Markdown table (key, value, accepts): docs/configuration.md's "Every key" is
// keys_markdown(Config{}) (`xasmap print-config --defaults --keys`).
std::string keys_markdown(const Config& config);

// A key whose value differs between two configs, as YAML text.
struct KeyChange {
  std::string path;
  std::string from, to;
};
// Every key, in table order, whose value differs between `from` and `to`; with `fitted_only`, only
// the settings a fitted model fixes (library.grid, library.preprocess but shift_penalty, embedding).
std::vector<KeyChange> differences(const Config& from, const Config& to, bool fitted_only = false);

// Checks a ZeroMQ endpoint: tcp://HOST:PORT, ipc://PATH or inproc://NAME. A bound tcp endpoint may
// use * for host or port. Returns an empty string when valid, else what was expected.
std::string check_endpoint(const std::string& endpoint, bool bind);

// Whether a tcp endpoint's host is a wildcard that listens on every interface: *, 0.0.0.0, [::]
// or [0:0:0:0:0:0:0:0]. False for ipc://, inproc:// and named or specific hosts.
bool is_wildcard_endpoint(const std::string& endpoint);

// An HTTP listening address, HOST:PORT (metrics.http_endpoint, xasmap dashboard --listen): HOST an
// IPv4 address, a name such as localhost, or [IPv6]; PORT in [0, 65535], 0 for any free port.
struct HostPort {
  std::string host;  // as written, without the brackets of an IPv6 address
  int port = 0;
  bool loopback() const;  // 127.x.y.z, localhost or ::1
};
// The address, or nullopt with `expected` saying what was expected.
std::optional<HostPort> parse_host_port(const std::string& text, std::string* expected = nullptr);

// Enum <-> YAML spelling, used by the parser, to_yaml() and the service's logs.
std::string to_string(LibrarySource v);
std::string to_string(Symmetry v);
std::string to_string(Polarization v);
std::string to_string(LifetimeRule v);
std::string to_string(Alignment v);
std::string to_string(InputPattern v);
std::string to_string(Overflow v);
std::string to_string(OffsetTracking v);
std::string to_string(MixtureMode v);
std::string to_string(LogFormat v);
std::string to_string(LogLevel v);

}  // namespace xasmap::config
