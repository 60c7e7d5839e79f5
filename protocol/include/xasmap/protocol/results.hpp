#pragma once
// The daemon's output messages of protocol v1 (docs/protocol.md): `estimate`, `estimate_map` and
// `metrics`, with their encoders and decoders. The encoders serve the daemon; the decoders serve
// dashboards, feeds, benchmarks and tests.
//
// An estimate is encoded by a worker thread but published later by the publisher thread, which
// alone knows the daemon-wide sequence number and the publication time. The encoder therefore
// writes those fields at fixed width and returns where they are, and stamp() fills them in place.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "xasmap/core/library.hpp"
#include "xasmap/core/model.hpp"

namespace xasmap::protocol {

// A parameter's value: a number (packed as an integer when `integer`), or a category name.
struct ParamValue {
  double number = 0.0;
  std::string text;      // non-empty for text-valued categories
  bool integer = false;  // a categorical number with an integral value, e.g. charge 2
  bool operator==(const ParamValue&) const = default;
};
using ParamMap = std::vector<std::pair<std::string, ParamValue>>;
using NumberMap = std::vector<std::pair<std::string, double>>;

// Values of the model's parameters in wire form: categorical integral numbers as integers, text
// categories by name, everything else as floats.
ParamMap to_param_map(const std::vector<ParameterInfo>& info, const std::vector<double>& values);
// The same into `out`, reusing its entries' storage.
void to_param_map_into(const std::vector<ParameterInfo>& info, const std::vector<double>& values, ParamMap& out);

// Latency figures in microseconds. queue: receipt to the start of decoding; decode: decoding and
// checking; compute: preprocessing, projection and estimation; service: receipt to publication;
// end_to_end: the message's `time` to publication, when `time` was given.
struct Latency {
  double queue = 0, decode = 0, compute = 0, service = 0;
  std::optional<double> end_to_end;
  bool operator==(const Latency&) const = default;
};

struct NeighborEntry {
  std::string label;
  ParamMap params;
  double distance = 0;
  double shift_ev = 0;
  bool operator==(const NeighborEntry&) const = default;
};

// Mixed valence (docs/protocol.md, "mixture"): the spectrum as atom fractions of charges, its mean
// valence and their standard deviations. One component (fraction 1) when it is single phase.
struct MixtureComponentEntry {
  double charge = 0;       // packed as an integer when integral
  double fraction = 0;     // atom fraction
  double fraction_sd = 0;
  double tendq = std::numeric_limits<double>::quiet_NaN();  // the component's 10Dq (eV); NaN: none
  bool operator==(const MixtureComponentEntry& o) const;   // NaN equals NaN
};

struct MixtureEntry {
  double mean_valence = std::numeric_limits<double>::quiet_NaN();
  double mean_valence_sd = std::numeric_limits<double>::quiet_NaN();
  bool single_phase = true;
  std::vector<MixtureComponentEntry> components;  // largest fraction first
  bool operator==(const MixtureEntry& o) const;    // NaN equals NaN
};

// The key of a charge's fraction map in estimate_map.fractions: the charge in decimal ("2", "3";
// a non-integral value with up to 6 significant digits).
std::string fraction_key(double charge);

// The wire form of a model's mixture: the class parameter's values are the charges, and each
// component's `tendq` is its value of the parameter named tendq (NaN without one).
MixtureEntry to_mixture_entry(const std::vector<ParameterInfo>& params, const Mixture& mixture);
// The same into `out`, reusing its storage.
void to_mixture_entry_into(const std::vector<ParameterInfo>& params, const Mixture& mixture, MixtureEntry& out);

struct EstimateMessage {
  std::string id;
  std::uint64_t seq = 0;
  ParamMap params;
  NumberMap uncertainty;  // continuous parameters
  NumberMap confidence;   // categorical parameters, in [0, 1]
  std::vector<double> embedding;
  std::vector<NeighborEntry> neighbors;
  double novelty = 0;
  bool in_library = true;
  double energy_shift_ev = 0;
  double coverage = 1;
  double edge_step = 0;  // the edge-step continuum removed (0: none); since 2026-12-07
  std::optional<MixtureEntry> mixture;  // absent with estimation.mixture: off
  Latency latency;
  double time_published = 0;
  std::vector<std::uint8_t> meta;  // msgpack bytes of the echoed map; empty: nil
  bool operator==(const EstimateMessage&) const = default;
};

// Fills the estimate's parts of `out` (params, uncertainty, confidence, embedding, neighbors,
// novelty, in_library, energy_shift_ev, coverage, edge_step) from a model's Estimate, reusing out's storage;
// id, seq, latency, time_published and meta are the caller's.
void to_estimate_message(const std::vector<ParameterInfo>& params, const Estimate& e, EstimateMessage& out);

// Where stamp() writes: byte offsets of fixed-width fields (0: absent).
struct StampOffsets {
  std::size_t seq = 0, service = 0, end_to_end = 0, time_published = 0;
};

// The acquisition time and receipt time stamp() needs to compute service and end-to-end latency.
struct Encoded {
  std::vector<std::uint8_t> bytes;
  StampOffsets offsets;
};

// Writes seq, time_published (s since the Unix epoch) and the service and end-to-end latencies
// (microseconds) into an encoded estimate or estimate map.
void stamp(Encoded& message, std::uint64_t seq, double time_published, double service_us,
           std::optional<double> end_to_end_us);

// `estimate_map`: one per stack. Per-pixel arrays are float32, pixel-major, in shape order.
// Categorical parameters hold the category's value (text categories: its index into
// `categories`); pixels that could not be judged hold NaN and are counted in rejected_pixels.
struct EstimateMapMessage {
  std::string id;
  std::uint64_t seq = 0;
  std::vector<std::int64_t> shape;  // as received: [rows, cols, n_energy] or [n_pixels, n_energy]
  std::vector<std::pair<std::string, std::vector<float>>> params;
  std::vector<std::pair<std::string, std::vector<float>>> uncertainty;  // continuous
  std::vector<std::pair<std::string, std::vector<float>>> confidence;   // categorical
  std::vector<std::pair<std::string, std::vector<std::string>>> categories;  // text categories
  std::vector<float> novelty;
  // Mixed valence (absent with estimation.mixture: off): per pixel, the atom fraction of each
  // charge, keyed by the charge in decimal ("2", "3", ...). The mean valence is params.valence,
  // its standard deviation uncertainty.valence.
  std::vector<std::pair<std::string, std::vector<float>>> fractions;
  // Per pixel, the edge-step continuum's height over the pixel's highest point, as the estimate's
  // edge_step (0: none removed; absent with estimation.edge_step_fit: false; since 2026-12-07).
  std::vector<float> edge_step;
  std::uint64_t rejected_pixels = 0;
  Latency latency;
  double time_published = 0;
  std::vector<std::uint8_t> meta;
  bool operator==(const EstimateMapMessage&) const = default;
};

struct LatencySummary {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
  std::uint64_t count = 0;  // messages the percentiles cover
  bool operator==(const LatencySummary&) const = default;
};

struct LibrarySummary {
  std::uint64_t size = 0;
  std::uint64_t landmarks = 0;
  std::uint64_t dims = 0;
  std::string method;
  bool operator==(const LibrarySummary&) const = default;
};

// The session's energy calibration offset (measured = true + offset) the daemon estimates on.
struct SessionOffsetSummary {
  std::string mode = "off";    // calibration.track: off, report or apply
  double start_ev = 0;         // from the config (calibration.session_offset_ev or its reference)
  double tracked_ev = 0;       // the median whole offset of the last confident estimates
  double applied_ev = 0;       // the offset estimates are made on (tracked when mode is apply)
  double spread_ev = 0;        // 1.4826 x median absolute deviation of the tracked window
  std::uint64_t samples = 0;   // estimates in the tracked window
  std::uint64_t counted = 0;   // confident estimates counted since the model was installed
  double search_ev = 0;        // the session offset is searched within +-search_ev of applied_ev
                               // (0: it is known; calibration.search_ev until it is)
  bool operator==(const SessionOffsetSummary&) const = default;
};

// `metrics`: counters since start-up, rate and latency over the last interval.
struct MetricsMessage {
  double time = 0;
  double uptime_s = 0;
  double interval_s = 0;
  std::uint64_t received = 0, published = 0, rejected = 0, dropped = 0, queue_depth = 0;
  double rate_hz = 0;               // estimates and maps published per second over the interval
  LatencySummary latency_us;        // service latency over the interval
  LibrarySummary library;
  std::uint64_t model_generation = 0;  // 1 at start-up, +1 per successful reload
  SessionOffsetSummary session_offset;
  bool operator==(const MetricsMessage&) const = default;
};

Encoded encode(const EstimateMessage& m);
// The same into `out`, reusing its capacity (the daemon's hot path: no allocation once warm).
void encode_into(const EstimateMessage& m, Encoded& out);
Encoded encode(const EstimateMapMessage& m);
std::vector<std::uint8_t> encode(const MetricsMessage& m);

// Decoders throw ProtocolError naming the field when the bytes break the schema.
EstimateMessage decode_estimate(const std::uint8_t* data, std::size_t size);
EstimateMapMessage decode_estimate_map(const std::uint8_t* data, std::size_t size);
MetricsMessage decode_metrics(const std::uint8_t* data, std::size_t size);

// The `id` of a spectrum message, read without decoding its arrays into numbers; nullopt when it
// cannot be read. For answering a message that is dropped or too large with its id.
std::optional<std::string> peek_id(const std::uint8_t* data, std::size_t size);

}  // namespace xasmap::protocol
