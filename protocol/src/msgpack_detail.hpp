#pragma once
// Small msgpack helpers shared by the protocol's decoders.

#include <msgpack.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
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
// from the frame: "mixture.components[1].charge"). The result and control-reply decoders read their
// maps through it.
class MapView {
 public:
  MapView(const msgpack::object& o, std::string path) : path_(std::move(path)) {
    if (o.type != msgpack::type::MAP) {
      throw ProtocolError(ErrorCode::kNotAMap, path_,
                          (path_.empty() ? std::string("frame 1") : "field '" + path_ + "'") + " is " +
                              type_name(o.type) + ", not a map");
    }
    map_ = &o.via.map;
    for (std::uint32_t i = 0; i < map_->size; ++i) {
      if (map_->ptr[i].key.type != msgpack::type::STR) {
        throw ProtocolError(ErrorCode::kBadType, path_, "a key of " + where() + " is not a string");
      }
    }
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
    if (!o) {
      throw ProtocolError(ErrorCode::kMissingField, name(key),
                          "required field '" + name(key) + "' is missing");
    }
    return *o;
  }
  [[noreturn]] void wrong(std::string_view key, const msgpack::object& o, const char* expected) const {
    throw ProtocolError(ErrorCode::kBadType, name(key),
                        "field '" + name(key) + "' is " + type_name(o.type) + ", expected " + expected);
  }
  double num(std::string_view key) const {
    const msgpack::object& o = get(key);
    if (!is_number(o)) wrong(key, o, "a number");
    return number(o);
  }
  std::uint64_t count(std::string_view key) const {
    const msgpack::object& o = get(key);
    if (o.type != msgpack::type::POSITIVE_INTEGER) wrong(key, o, "a non-negative integer");
    return o.via.u64;
  }
  std::string str(std::string_view key) const {
    const msgpack::object& o = get(key);
    if (o.type != msgpack::type::STR) wrong(key, o, "a string");
    return {o.via.str.ptr, o.via.str.size};
  }
  bool boolean(std::string_view key) const {
    const msgpack::object& o = get(key);
    if (o.type != msgpack::type::BOOLEAN) wrong(key, o, "a boolean");
    return o.via.boolean;
  }
  MapView map(std::string_view key) const { return MapView(get(key), name(key)); }
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
