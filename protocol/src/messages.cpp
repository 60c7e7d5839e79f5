#include "msgpack_detail.hpp"
#include "xasmap/protocol/messages.hpp"

#include <msgpack.hpp>

#include <array>
#include <utility>

namespace xasmap::protocol {

using detail::type_name;

namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 17> kErrorCodes{{
    {ErrorCode::kBadFrames, "bad_frames"},
    {ErrorCode::kBadMsgpack, "bad_msgpack"},
    {ErrorCode::kNotAMap, "not_a_map"},
    {ErrorCode::kMissingField, "missing_field"},
    {ErrorCode::kBadType, "bad_type"},
    {ErrorCode::kLengthMismatch, "length_mismatch"},
    {ErrorCode::kNonMonotonicEnergy, "non_monotonic_energy"},
    {ErrorCode::kNonFinite, "non_finite"},
    {ErrorCode::kOutOfRange, "out_of_range"},
    {ErrorCode::kTooFewPoints, "too_few_points"},
    {ErrorCode::kInsufficientOverlap, "insufficient_overlap"},
    {ErrorCode::kFlatSpectrum, "flat_spectrum"},
    {ErrorCode::kEnergyUnit, "energy_unit"},
    {ErrorCode::kNoEdge, "no_edge"},
    {ErrorCode::kTooLarge, "too_large"},
    {ErrorCode::kOverloaded, "overloaded"},
    {ErrorCode::kInternal, "internal"},
}};

}  // namespace

std::string_view to_string(ErrorCode code) {
  for (const auto& [c, name] : kErrorCodes) {
    if (c == code) return name;
  }
  return "internal";
}

std::optional<ErrorCode> error_code_from_string(std::string_view text) {
  for (const auto& [c, name] : kErrorCodes) {
    if (name == text) return c;
  }
  return std::nullopt;
}

ProtocolError::ProtocolError(ErrorCode code, std::string field, const std::string& message,
                             std::optional<std::string> id)
    : xasmap::Error(std::string(to_string(code)) + ": " + message),
      code_(code),
      detail_(message),
      field_(std::move(field)),
      id_(std::move(id)) {}

std::vector<std::uint8_t> encode(const ErrorMessage& m) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(5);
  pk.pack("id");
  if (m.id) {
    pk.pack(*m.id);
  } else {
    pk.pack_nil();
  }
  pk.pack("code");
  pk.pack(std::string(to_string(m.code)));
  pk.pack("field");
  pk.pack(m.field);
  pk.pack("message");
  pk.pack(m.message);
  pk.pack("time");
  pk.pack_double(m.time);
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(buffer.data());
  return {bytes, bytes + buffer.size()};
}

ErrorMessage decode_error_message(const std::uint8_t* data, std::size_t size) {
  const msgpack::object_handle handle = detail::unpack_frame(data, size);
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::MAP) {
    throw ProtocolError(ErrorCode::kNotAMap, "", std::string("frame 1 is ") + type_name(root.type) + ", not a map");
  }
  ErrorMessage m;
  bool have_code = false;
  bool have_message = false;
  bool have_time = false;
  for (const auto& kv : root.via.map) {
    if (kv.key.type != msgpack::type::STR) {
      throw ProtocolError(ErrorCode::kBadType, "", std::string("a key is ") + type_name(kv.key.type) + ", not a string");
    }
    const std::string key = kv.key.as<std::string>();
    const msgpack::object& v = kv.val;
    const auto expect = [&](bool ok, const char* what) {
      if (!ok) {
        throw ProtocolError(ErrorCode::kBadType, key,
                            "field '" + key + "' is " + type_name(v.type) + ", expected " + what);
      }
    };
    if (key == "id") {
      expect(v.type == msgpack::type::STR || v.type == msgpack::type::NIL, "a string or nil");
      if (v.type == msgpack::type::STR) m.id = v.as<std::string>();
    } else if (key == "code") {
      expect(v.type == msgpack::type::STR, "a string");
      const auto code = error_code_from_string(v.as<std::string>());
      if (!code) {
        throw ProtocolError(ErrorCode::kOutOfRange, key,
                            "field 'code' holds unknown code '" + v.as<std::string>() + "'");
      }
      m.code = *code;
      have_code = true;
    } else if (key == "field") {
      expect(v.type == msgpack::type::STR, "a string");
      m.field = v.as<std::string>();
    } else if (key == "message") {
      expect(v.type == msgpack::type::STR, "a string");
      m.message = v.as<std::string>();
      have_message = true;
    } else if (key == "time") {
      expect(v.type == msgpack::type::FLOAT64 || v.type == msgpack::type::FLOAT32 ||
                 v.type == msgpack::type::POSITIVE_INTEGER,
             "a number");
      m.time = v.as<double>();
      have_time = true;
    }
  }
  for (const auto& [have, name] : {std::pair{have_code, "code"}, std::pair{have_message, "message"},
                                   std::pair{have_time, "time"}}) {
    if (!have) {
      throw ProtocolError(ErrorCode::kMissingField, name,
                          std::string("required field '") + name + "' is missing");
    }
  }
  return m;
}

}  // namespace xasmap::protocol
