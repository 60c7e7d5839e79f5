#pragma once
// Small msgpack helpers shared by the protocol's decoders.

#include <msgpack.hpp>

#include <cmath>
#include <cstdint>
#include <string>

#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/msgpack_limits.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::protocol::detail {

// What a msgpack value is, for "field 'x' is ..., expected ..." messages.
inline const char* type_name(msgpack::type::object_type t) {
  switch (t) {
    case msgpack::type::NIL:
      return "nil";
    case msgpack::type::BOOLEAN:
      return "a boolean";
    case msgpack::type::POSITIVE_INTEGER:
    case msgpack::type::NEGATIVE_INTEGER:
      return "an integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return "a float";
    case msgpack::type::STR:
      return "a string";
    case msgpack::type::BIN:
      return "bin";
    case msgpack::type::ARRAY:
      return "an array";
    case msgpack::type::MAP:
      return "a map";
    case msgpack::type::EXT:
      return "ext";
  }
  return "an unknown type";
}

inline bool is_number(const msgpack::object& o) {
  return o.type == msgpack::type::POSITIVE_INTEGER || o.type == msgpack::type::NEGATIVE_INTEGER ||
         o.type == msgpack::type::FLOAT32 || o.type == msgpack::type::FLOAT64;
}

// The value of a number (is_number(o) must hold).
inline double number(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::POSITIVE_INTEGER:
      return static_cast<double>(o.via.u64);
    case msgpack::type::NEGATIVE_INTEGER:
      return static_cast<double>(o.via.i64);
    default:
      return o.via.f64;
  }
}

// Unpacks one frame that must hold exactly one msgpack value; ProtocolError(bad_msgpack) otherwise.
inline msgpack::object_handle unpack_frame(const std::uint8_t* data, std::size_t size) {
  std::size_t offset = 0;
  msgpack::object_handle handle;
  try {
    handle = msgpack::unpack(reinterpret_cast<const char*>(data), size, offset, nullptr, nullptr, protocol::frame_limits(size));
  } catch (const std::exception& e) {  // msgpack's own errors, its size_overflow and depth_size_overflow, bad_alloc
    throw ProtocolError(ErrorCode::kBadMsgpack, "", std::string("undecodable msgpack: ") + e.what());
  }
  if (offset != size) {
    throw ProtocolError(ErrorCode::kBadMsgpack, "",
                        std::to_string(size - offset) + " trailing bytes after the msgpack map");
  }
  return handle;
}

// A parameter value: its category name, an integer for integral categories, else a float.
template <class Packer>
void pack_value(Packer& pk, const ParamValue& v) {
  if (!v.text.empty()) {
    pk.pack(v.text);
  } else if (v.integer) {
    pk.pack(static_cast<std::int64_t>(std::llround(v.number)));
  } else {
    pk.pack_double(v.number);
  }
}

}  // namespace xasmap::protocol::detail
