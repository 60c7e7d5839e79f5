#include "msgpack_detail.hpp"
#include "xasmap/protocol/messages.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
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

bool is_valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xbf;  // the allowed range of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3;
      if (c == 0xe0) lo = 0xa0;  // overlong
      if (c == 0xed) hi = 0x9f;  // surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4;
      if (c == 0xf0) lo = 0x90;  // overlong
      if (c == 0xf4) hi = 0x8f;  // past U+10FFFF
    } else {
      return false;  // a continuation byte, an overlong lead (c0, c1) or f5..ff
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

std::string quote_text(std::string_view text, std::size_t max_bytes) {
  std::string out;
  const std::size_t n = std::min(text.size(), max_bytes);
  for (std::size_t i = 0; i < n;) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // The longest valid sequence starting here (at most 4 bytes), kept whole when it fits.
      std::size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
      if (i + len <= n && is_valid_utf8(text.substr(i, len))) {
        out.append(text.substr(i, len));
        i += len;
        continue;
      }
    } else if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    char hex[8];
    std::snprintf(hex, sizeof hex, "\\x%02x", c);
    out += hex;
    ++i;
  }
  if (text.size() > max_bytes) out += "...";
  return out;
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
  // Decoders refuse text that is not UTF-8, so none should reach here; if some does, it goes out
  // escaped (an id that is not UTF-8 as nil) rather than as a string strict readers reject.
  pk.pack("id");
  if (m.id && is_valid_utf8(*m.id)) {
    pk.pack(*m.id);
  } else {
    pk.pack_nil();
  }
  pk.pack("code");
  pk.pack(std::string(to_string(m.code)));
  pk.pack("field");
  pk.pack(is_valid_utf8(m.field) ? m.field : quote_text(m.field, m.field.size()));
  pk.pack("message");
  pk.pack(is_valid_utf8(m.message) ? m.message : quote_text(m.message, m.message.size()));
  pk.pack("time");
  pk.pack_double(m.time);
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(buffer.data());
  return {bytes, bytes + buffer.size()};
}

ErrorMessage decode_error_message(const std::uint8_t* data, std::size_t size) {
  const msgpack::object_handle handle = detail::unpack_frame(data, size);
  const detail::MapView v(handle.get(), "");
  ErrorMessage m;
  if (const msgpack::object* id = v.find("id"); id != nullptr && id->type != msgpack::type::NIL) {
    if (id->type != msgpack::type::STR) v.wrong("id", *id, "a string or nil");
    m.id = v.str("id", *id);
  }
  const std::string code = v.str("code");
  const auto known = error_code_from_string(code);
  if (!known) v.fail(ErrorCode::kOutOfRange, "code", "field 'code' holds unknown code '" + quote_text(code) + "'");
  m.code = *known;
  if (const auto field = v.optional_str("field")) m.field = *field;
  m.message = v.str("message");
  m.time = v.num("time");
  return m;
}

}  // namespace xasmap::protocol
