#pragma once
// Wire protocol v1 (docs/protocol.md): every message is two ZeroMQ frames, a topic and a msgpack
// map with string keys. This header holds the schema's names, the input `spectrum` message and
// the `error` message; results.hpp holds the daemon's other output messages.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xasmap/core/error.hpp"

namespace xasmap::protocol {

inline constexpr int kProtocolVersion = 1;

// Default topics (frame 0).
inline constexpr std::string_view kTopicSpectrum = "spectrum";
inline constexpr std::string_view kTopicEstimate = "estimate";
inline constexpr std::string_view kTopicEstimateMap = "estimate_map";
inline constexpr std::string_view kTopicError = "error";
inline constexpr std::string_view kTopicMetrics = "metrics";
// The acknowledged input's reply to a resent message already answered (docs/protocol.md).
inline constexpr std::string_view kTopicDuplicate = "duplicate";

// Stable identifiers of the `error` message's `code`. Clients match on the string, never on the
// enum's numeric value, so new codes may be added anywhere.
enum class ErrorCode {
  kBadFrames,            // not exactly two frames, or the topic is not the input topic
  kBadMsgpack,           // frame 1 is not decodable msgpack
  kNotAMap,              // frame 1 is msgpack but not a map
  kMissingField,         // a required key is absent
  kBadType,              // a key holds the wrong type
  kLengthMismatch,       // energy and intensity (or shape) disagree in length
  kNonMonotonicEnergy,   // energy not strictly increasing
  kNonFinite,            // NaN or infinity in the data
  kOutOfRange,           // a value outside what the schema allows
  kTooFewPoints,         // fewer energy points than preprocessing needs
  kInsufficientOverlap,  // the spectrum covers too little of the library's energy grid
  kFlatSpectrum,         // nothing left to normalise after background subtraction
  kEnergyUnit,           // the energies look like keV (they would cover the grid times 1000)
  kNoEdge,               // no absorption edge on the window: noise, a background, another edge
  kTooLarge,             // over input.max_message_bytes, max_points or max_stack_pixels
  kOverloaded,           // dropped by the overflow policy
  kInternal,             // a bug: reported, never silent
};

std::string_view to_string(ErrorCode code);

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF): msgpack strings must be, or strict readers (msgpack.unpackb(raw=False)) fail.
bool is_valid_utf8(std::string_view text);

// `text` fit to be quoted in a message: valid UTF-8 kept, control characters and bytes that are
// not UTF-8 as \xNN, cut after `max_bytes` input bytes with "...". Always valid UTF-8.
std::string quote_text(std::string_view text, std::size_t max_bytes = 64);
std::optional<ErrorCode> error_code_from_string(std::string_view text);

// Thrown by decoders for a message that breaks the schema; `field` names the offending key, and
// `id` is the message's id when it could be read before the problem was found.
class ProtocolError : public xasmap::Error {
 public:
  ProtocolError(ErrorCode code, std::string field, const std::string& message,
                std::optional<std::string> id = std::nullopt);
  ErrorCode code() const { return code_; }
  const std::string& field() const { return field_; }
  const std::optional<std::string>& id() const { return id_; }
  // The human-readable message without the code in front (what() has "code: message").
  const std::string& detail() const { return detail_; }

 private:
  ErrorCode code_;
  std::string detail_;
  std::string field_;
  std::optional<std::string> id_;
};

// A `spectrum` message (frame 1 of the input topic). For a stack (kind "stack"), the intensities
// hold every pixel's spectrum, pixel-major, and `shape` is [rows, cols, n_energy] or
// [n_pixels, n_energy].
struct SpectrumMessage {
  std::string id;
  std::vector<double> energy;
  // The intensities in the precision they came in: `intensity_f4` for bin of dtype "f4" (kept as
  // float, not widened: half the memory of a large stack), `intensity` otherwise. One of the two is
  // empty. encode() sends `intensity_f4` when it is not empty.
  std::vector<double> intensity;
  std::vector<float> intensity_f4;
  std::optional<double> time;           // acquisition time, s since the Unix epoch
  std::vector<std::uint8_t> meta;       // the `meta` map as msgpack bytes, echoed back unchanged
  bool stack = false;
  std::vector<std::int64_t> shape;      // stacks only
  std::size_t intensity_count() const { return intensity_f4.empty() ? intensity.size() : intensity_f4.size(); }
  std::size_t pixels() const { return stack ? intensity_count() / std::max<std::size_t>(1, energy.size()) : 1; }
};

struct DecodeLimits {
  std::size_t max_points = 100000;      // energy points per spectrum
  std::size_t max_stack_pixels = 1u << 20;
  // Elements of any one msgpack array (arrays of numbers suit single spectra and small stacks;
  // large stacks go as bin). Also at least max_points.
  std::size_t max_array_elements = 64 * 100000;
};

// Decodes and validates frame 1 of a spectrum message. Throws ProtocolError with the stable code,
// the field and the id (when known): bad_msgpack, not_a_map, missing_field, bad_type,
// length_mismatch, too_large, non_finite, non_monotonic_energy, out_of_range. A string that is not
// valid UTF-8 in `id` or anywhere in `meta` (keys included) is bad_type naming the field, so that
// nothing published carries invalid UTF-8. Unknown keys are ignored, so that senders may add
// fields.
SpectrumMessage decode_spectrum(const std::uint8_t* data, std::size_t size,
                                const DecodeLimits& limits = {});

// Encodes a spectrum message (for feeds, clients and tests). With `raw_dtype` "f4" or "f8" the
// arrays go as msgpack bin of little-endian floats; empty means arrays of numbers.
std::vector<std::uint8_t> encode(const SpectrumMessage& m, const std::string& raw_dtype = "");

// The `error` message: id (absent when the input could not be decoded far enough to read it),
// code, the offending field (empty when the problem is not one field's), a human-readable message
// that names the field, and the time (s since the Unix epoch).
struct ErrorMessage {
  std::optional<std::string> id;
  ErrorCode code = ErrorCode::kInternal;
  std::string field;
  std::string message;
  double time = 0.0;
  bool operator==(const ErrorMessage&) const = default;
};

// Frame 1 of an `error` message.
std::vector<std::uint8_t> encode(const ErrorMessage& m);
// Throws ProtocolError when the bytes are not a valid `error` message.
ErrorMessage decode_error_message(const std::uint8_t* data, std::size_t size);

}  // namespace xasmap::protocol
