#pragma once
// Small msgpack helpers shared by the protocol's decoders.

#include <msgpack.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// A msgpack map with string keys, read field by field with errors that name the field (its path
// from the frame: "mixture.components[1].charge"). Every decoder reads its maps through it: the
// spectrum, error, estimate, estimate_map and metrics messages, the control request and the
// library reply. Errors carry the message's id once tag() has been given it.
class MapView {
 public:
  MapView(const msgpack::object& o, std::string path, std::optional<std::string> id = std::nullopt)
      : path_(std::move(path)), id_(std::move(id)) {
    if (o.type != msgpack::type::MAP) {
      fail(ErrorCode::kNotAMap, path_, where() + " is " + type_name(o.type) + ", not a map");
    }
    map_ = &o.via.map;
    for (std::uint32_t i = 0; i < map_->size; ++i) {
      if (map_->ptr[i].key.type != msgpack::type::STR) {
        fail(ErrorCode::kBadType, path_.empty() ? std::string("(key)") : path_,
             "a key of " + where() + " is " + type_name(map_->ptr[i].key.type) + ", not a string");
      }
    }
  }

  // From here on, errors name the message `id` (ProtocolError::id()).
  void tag(std::string id) { id_ = std::move(id); }
  const std::optional<std::string>& id() const { return id_; }

  [[noreturn]] void fail(ErrorCode code, const std::string& field, const std::string& message) const {
    throw ProtocolError(code, field, message, id_);
  }

  const msgpack::object* find(std::string_view key) const {
    for (std::uint32_t i = 0; i < map_->size; ++i) {
      const auto& k = map_->ptr[i].key.via.str;
      if (std::string_view(k.ptr, k.size) == key) return &map_->ptr[i].val;
    }
    return nullptr;
  }
  const msgpack::object& get(std::string_view key) const {
    const msgpack::object* o = find(key);
    if (!o) fail(ErrorCode::kMissingField, name(key), "required field '" + name(key) + "' is missing");
    return *o;
  }
  [[noreturn]] void wrong(std::string_view key, const msgpack::object& o, const char* expected) const {
    fail(ErrorCode::kBadType, name(key),
         "field '" + name(key) + "' is " + type_name(o.type) + ", expected " + expected);
  }
  double num(std::string_view key) const { return num(key, get(key)); }
  double num(std::string_view key, const msgpack::object& o) const {
    if (!is_number(o)) wrong(key, o, "a number");
    return number(o);
  }
  std::uint64_t count(std::string_view key) const {
    const msgpack::object& o = get(key);
    if (o.type != msgpack::type::POSITIVE_INTEGER) wrong(key, o, "a non-negative integer");
    return o.via.u64;
  }
  std::string str(std::string_view key) const { return str(key, get(key)); }
  std::string str(std::string_view key, const msgpack::object& o) const {
    if (o.type != msgpack::type::STR) wrong(key, o, "a string");
    return {o.via.str.ptr, o.via.str.size};
  }
  // The string under `key`, or nothing when the key is absent.
  std::optional<std::string> optional_str(std::string_view key) const {
    const msgpack::object* o = find(key);
    if (!o) return std::nullopt;
    return str(key, *o);
  }
  bool boolean(std::string_view key) const {
    const msgpack::object& o = get(key);
    if (o.type != msgpack::type::BOOLEAN) wrong(key, o, "a boolean");
    return o.via.boolean;
  }
  MapView map(std::string_view key) const { return MapView(get(key), name(key), id_); }
  std::vector<std::uint8_t> raw_map_or_nil(std::string_view key) const {
    const msgpack::object& o = get(key);
    if (o.type == msgpack::type::NIL) return {};
    if (o.type != msgpack::type::MAP) wrong(key, o, "a map or nil");
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, o);
    const auto* p = reinterpret_cast<const std::uint8_t*>(buffer.data());
    return {p, p + buffer.size()};
  }
  std::vector<float> floats(std::string_view key, const msgpack::object& o) const {
    if (o.type != msgpack::type::BIN || o.via.bin.size % 4 != 0) wrong(key, o, "bin of float32");
    std::vector<float> v(o.via.bin.size / 4);
    if (!v.empty()) std::memcpy(v.data(), o.via.bin.ptr, o.via.bin.size);
    return v;
  }

  // The first key that appears more than once, if any.
  std::optional<std::string> repeated_key() const {
    for (std::uint32_t i = 0; i < map_->size; ++i) {
      const auto& a = map_->ptr[i].key.via.str;
      for (std::uint32_t j = 0; j < i; ++j) {
        const auto& b = map_->ptr[j].key.via.str;
        if (std::string_view(a.ptr, a.size) == std::string_view(b.ptr, b.size)) return std::string(a.ptr, a.size);
      }
    }
    return std::nullopt;
  }

  // Every entry, as (key, value).
  template <class F>
  void each(F&& f) const {
    for (std::uint32_t i = 0; i < map_->size; ++i) {
      const auto& k = map_->ptr[i].key.via.str;
      f(std::string(k.ptr, k.size), map_->ptr[i].val);
    }
  }
  std::string name(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

 private:
  std::string where() const { return path_.empty() ? "frame 1" : "field '" + path_ + "'"; }
  const msgpack::object_map* map_ = nullptr;
  std::string path_;
  std::optional<std::string> id_;
};

// The array of numbers under `key`.
inline std::vector<double> read_number_array(const MapView& v, std::string_view key) {
  const msgpack::object& o = v.get(key);
  if (o.type != msgpack::type::ARRAY) v.wrong(key, o, "an array of numbers");
  std::vector<double> out;
  for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
    if (!is_number(o.via.array.ptr[i])) v.wrong(key, o.via.array.ptr[i], "an array of numbers");
    out.push_back(number(o.via.array.ptr[i]));
  }
  return out;
}

inline ParamMap read_params(const MapView& v) {
  ParamMap out;
  v.each([&](const std::string& key, const msgpack::object& o) {
    ParamValue p;
    if (o.type == msgpack::type::STR) {
      p.text.assign(o.via.str.ptr, o.via.str.size);
    } else if (o.type == msgpack::type::POSITIVE_INTEGER || o.type == msgpack::type::NEGATIVE_INTEGER) {
      p.number = number(o);
      p.integer = true;
    } else if (is_number(o)) {
      p.number = number(o);
    } else {
      v.wrong(key, o, "a number or a string");
    }
    out.emplace_back(key, std::move(p));
  });
  return out;
}

}  // namespace xasmap::protocol::detail
