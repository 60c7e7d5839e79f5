#pragma once
// Wire protocol v1 (docs/protocol.md): every message is two ZeroMQ frames, a topic and a msgpack
// map with string keys. This header holds the schema's names and the `error` message; the codecs
// of the other messages join it as the daemon grows.

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
  kOutOfRange,           // a value outside what the model can judge
  kTooLarge,             // over input.max_message_bytes, max_points or max_stack_pixels
  kOverloaded,           // dropped by the overflow policy
  kInternal,             // a bug: reported, never silent
};

std::string_view to_string(ErrorCode code);
std::optional<ErrorCode> error_code_from_string(std::string_view text);

// Thrown by decoders for a message that breaks the schema; `field` names the offending key.
class ProtocolError : public xasmap::Error {
 public:
  ProtocolError(ErrorCode code, std::string field, const std::string& message);
  ErrorCode code() const { return code_; }
  const std::string& field() const { return field_; }

 private:
  ErrorCode code_;
  std::string field_;
};

// The `error` message: id (absent when the input could not be decoded far enough to read it),
// code, a human-readable message that names the field, and the time (s since the Unix epoch).
struct ErrorMessage {
  std::optional<std::string> id;
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  double time = 0.0;
  bool operator==(const ErrorMessage&) const = default;
};

// Frame 1 of an `error` message.
std::vector<std::uint8_t> encode(const ErrorMessage& m);
// Throws ProtocolError when the bytes are not a valid `error` message.
ErrorMessage decode_error_message(const std::uint8_t* data, std::size_t size);

}  // namespace xasmap::protocol
