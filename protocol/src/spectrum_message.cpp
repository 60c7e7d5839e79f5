// Decoding and encoding of the `spectrum` message of protocol v1 (docs/protocol.md, issue #5).

#include <msgpack.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <new>

#include "msgpack_detail.hpp"
#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::protocol {

namespace {

static_assert(std::endian::native == std::endian::little, "bin arrays are little-endian");

constexpr std::size_t kMaxMapEntries = 4096;  // the message map and `meta`'s maps
constexpr std::size_t kMaxDepth = 32;         // nesting levels, `meta` included

using detail::is_number;
using detail::number;
using detail::type_name;

// The first string (map keys included) in `o` that is not valid UTF-8. `o` is bounded in depth by
// the unpack limits, so the recursion is too.
std::optional<std::string> invalid_utf8_in(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::STR: {
      const std::string_view s(o.via.str.ptr, o.via.str.size);
      if (!is_valid_utf8(s)) return std::string(s);
      return std::nullopt;
    }
    case msgpack::type::ARRAY:
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        if (auto bad = invalid_utf8_in(o.via.array.ptr[i])) return bad;
      }
      return std::nullopt;
    case msgpack::type::MAP:
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        if (auto bad = invalid_utf8_in(o.via.map.ptr[i].key)) return bad;
        if (auto bad = invalid_utf8_in(o.via.map.ptr[i].val)) return bad;
      }
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

class Decoder {
 public:
  std::optional<std::string> id;

  [[noreturn]] void fail(ErrorCode code, const std::string& field, const std::string& message) const {
    throw ProtocolError(code, field, message, id);
  }

  // An array of numbers, or bin of little-endian floats of `dtype` ("f4" or "f8"), as `Value`s.
  template <class Value = double>
  std::vector<Value> numbers(const msgpack::object& o, const std::string& field,
                             const std::string* dtype, std::size_t max_count) const {
    std::vector<Value> out;
    if (o.type == msgpack::type::ARRAY) {
      if (o.via.array.size > max_count) {
        fail(ErrorCode::kTooLarge, field,
             "field '" + field + "' has " + std::to_string(o.via.array.size) +
                 " values; the limit is " + std::to_string(max_count));
      }
      out.reserve(o.via.array.size);
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        const msgpack::object& v = o.via.array.ptr[i];
        if (!is_number(v)) {
          fail(ErrorCode::kBadType, field,
               "field '" + field + "'[" + std::to_string(i) + "] is " + type_name(v.type) +
                   ", expected a number");
        }
        out.push_back(static_cast<Value>(number(v)));
      }
      return out;
    }
    if (o.type == msgpack::type::BIN) {
      if (!dtype) {
        fail(ErrorCode::kMissingField, "dtype",
             "field '" + field + "' is bin, so field 'dtype' (\"f4\" or \"f8\") is required");
      }
      const std::size_t width = *dtype == "f4" ? 4 : 8;
      if (o.via.bin.size % width != 0) {
        fail(ErrorCode::kLengthMismatch, field,
             "field '" + field + "' holds " + std::to_string(o.via.bin.size) +
                 " bytes, not a whole number of " + *dtype + " values");
      }
      const std::size_t count = o.via.bin.size / width;
      if (count > max_count) {
        fail(ErrorCode::kTooLarge, field,
             "field '" + field + "' has " + std::to_string(count) + " values; the limit is " +
                 std::to_string(max_count));
      }
      out.resize(count);
      for (std::size_t i = 0; i < count; ++i) {
        if (width == 4) {
          float f = 0;
          std::memcpy(&f, o.via.bin.ptr + i * 4, 4);
          out[i] = static_cast<Value>(f);
        } else {
          double x = 0;
          std::memcpy(&x, o.via.bin.ptr + i * 8, 8);
          out[i] = static_cast<Value>(x);
        }
      }
      return out;
    }
    fail(ErrorCode::kBadType, field,
         "field '" + field + "' is " + type_name(o.type) + ", expected an array of numbers or bin");
  }
};

}  // namespace

SpectrumMessage decode_spectrum(const std::uint8_t* data, std::size_t size,
                                const DecodeLimits& limits) {
  msgpack::object_handle handle;
  std::size_t offset = 0;
  // Decoded msgpack takes ~24 bytes an element whatever its size on the wire, so arrays, maps and
  // nesting are bounded while unpacking, before any of it is built.
  const msgpack::unpack_limit bounds(std::max(limits.max_points, limits.max_array_elements), kMaxMapEntries,
                                     0xffffffff, 0xffffffff, 0xffffffff, kMaxDepth);
  try {
    handle = msgpack::unpack(reinterpret_cast<const char*>(data), size, offset, nullptr, nullptr, bounds);
  } catch (const msgpack::size_overflow&) {
    throw ProtocolError(ErrorCode::kTooLarge, "",
                        "an array of more than " + std::to_string(std::max(limits.max_points, limits.max_array_elements)) +
                            " elements, a map of more than " + std::to_string(kMaxMapEntries) +
                            " entries, or nesting deeper than " + std::to_string(kMaxDepth) +
                            " levels (send large stacks as bin)",
                        peek_id(data, size));
  } catch (const std::bad_alloc&) {
    throw ProtocolError(ErrorCode::kTooLarge, "", "decoding the message needs more memory than is available",
                        peek_id(data, size));
  } catch (const std::exception& e) {
    throw ProtocolError(ErrorCode::kBadMsgpack, "", std::string("undecodable msgpack: ") + e.what());
  }
  if (offset != size) {
    throw ProtocolError(ErrorCode::kBadMsgpack, "",
                        std::to_string(size - offset) + " trailing bytes after the msgpack map");
  }
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::MAP) {
    throw ProtocolError(ErrorCode::kNotAMap, "",
                        std::string("frame 1 is ") + type_name(root.type) + ", not a map");
  }
  Decoder d;
  const msgpack::object* fields[7] = {};  // id, energy, intensity, time, meta, kind, shape
  const char* const names[7] = {"id", "energy", "intensity", "time", "meta", "kind", "shape"};
  const msgpack::object* dtype_object = nullptr;
  for (std::uint32_t i = 0; i < root.via.map.size; ++i) {
    const auto& kv = root.via.map.ptr[i];
    if (kv.key.type != msgpack::type::STR) {
      throw ProtocolError(ErrorCode::kBadType, "(key)",
                          std::string("a key is ") + type_name(kv.key.type) + ", not a string");
    }
    const std::string key(kv.key.via.str.ptr, kv.key.via.str.size);
    if (key == "dtype") dtype_object = &kv.val;
    for (int f = 0; f < 7; ++f) {
      if (key == names[f]) fields[f] = &kv.val;
    }
  }
  // id first, so that every later error can name the message.
  if (!fields[0]) throw ProtocolError(ErrorCode::kMissingField, "id", "required field 'id' is missing");
  if (fields[0]->type != msgpack::type::STR) {
    throw ProtocolError(ErrorCode::kBadType, "id",
                        std::string("field 'id' is ") + type_name(fields[0]->type) + ", expected a string");
  }
  SpectrumMessage m;
  m.id.assign(fields[0]->via.str.ptr, fields[0]->via.str.size);
  if (!is_valid_utf8(m.id)) {
    throw ProtocolError(ErrorCode::kBadType, "id",
                        "field 'id' is not valid UTF-8 ('" + quote_text(m.id) + "'); msgpack strings must be");
  }
  d.id = m.id;

  if (fields[5]) {
    if (fields[5]->type != msgpack::type::STR) {
      d.fail(ErrorCode::kBadType, "kind", std::string("field 'kind' is ") + type_name(fields[5]->type) + ", expected a string");
    }
    const std::string kind(fields[5]->via.str.ptr, fields[5]->via.str.size);
    if (kind != "spectrum" && kind != "stack") {
      d.fail(ErrorCode::kOutOfRange, "kind",
             "field 'kind' is '" + quote_text(kind) + "', expected \"spectrum\" or \"stack\"");
    }
    m.stack = kind == "stack";
  }
  std::string dtype;
  if (dtype_object) {
    if (dtype_object->type != msgpack::type::STR) {
      d.fail(ErrorCode::kBadType, "dtype", std::string("field 'dtype' is ") + type_name(dtype_object->type) + ", expected \"f4\" or \"f8\"");
    }
    dtype.assign(dtype_object->via.str.ptr, dtype_object->via.str.size);
    if (dtype != "f4" && dtype != "f8") {
      d.fail(ErrorCode::kOutOfRange, "dtype",
             "field 'dtype' is '" + quote_text(dtype) + "', expected \"f4\" or \"f8\"");
    }
  }
  for (int f : {1, 2}) {
    if (!fields[f]) d.fail(ErrorCode::kMissingField, names[f], std::string("required field '") + names[f] + "' is missing");
  }

  std::size_t pixels = 1;
  if (m.stack) {
    if (!fields[6]) d.fail(ErrorCode::kMissingField, "shape", "a stack needs field 'shape'");
    const msgpack::object& s = *fields[6];
    if (s.type != msgpack::type::ARRAY || (s.via.array.size != 2 && s.via.array.size != 3)) {
      d.fail(ErrorCode::kBadType, "shape", "field 'shape' must be [rows, cols, n_energy] or [n_pixels, n_energy]");
    }
    for (std::uint32_t i = 0; i < s.via.array.size; ++i) {
      const msgpack::object& v = s.via.array.ptr[i];
      if (v.type != msgpack::type::POSITIVE_INTEGER && v.type != msgpack::type::NEGATIVE_INTEGER) {
        d.fail(ErrorCode::kBadType, "shape", "field 'shape'[" + std::to_string(i) + "] is " +
                                                 type_name(v.type) + ", expected a positive integer");
      }
      if (v.type == msgpack::type::NEGATIVE_INTEGER || v.via.u64 == 0) {
        d.fail(ErrorCode::kOutOfRange, "shape", "field 'shape'[" + std::to_string(i) + "] must be positive");
      }
      // Every extent, and the pixel count as it grows, is checked against the limits before the
      // next multiplication, so the product cannot wrap.
      const bool energy_axis = i + 1 == s.via.array.size;
      const std::uint64_t limit = energy_axis ? limits.max_points : limits.max_stack_pixels / pixels;
      if (v.via.u64 > limit) {
        d.fail(ErrorCode::kTooLarge, "shape",
               energy_axis ? "field 'shape' says " + std::to_string(v.via.u64) +
                                 " energies; the limit is " + std::to_string(limits.max_points)
                           : "the stack has more pixels than the limit of " +
                                 std::to_string(limits.max_stack_pixels));
      }
      if (!energy_axis) pixels *= static_cast<std::size_t>(v.via.u64);
      m.shape.push_back(static_cast<std::int64_t>(v.via.u64));
    }
  }
  const std::string* dt = dtype_object ? &dtype : nullptr;
  m.energy = d.numbers(*fields[1], "energy", dt, limits.max_points);
  if (dtype == "f4" && fields[2]->type == msgpack::type::BIN) {
    m.intensity_f4 = d.numbers<float>(*fields[2], "intensity", dt, limits.max_points * pixels);
  } else {
    m.intensity = d.numbers(*fields[2], "intensity", dt, limits.max_points * pixels);
  }
  if (m.stack && static_cast<std::size_t>(m.shape.back()) != m.energy.size()) {
    d.fail(ErrorCode::kLengthMismatch, "shape", "field 'shape' says " + std::to_string(m.shape.back()) +
                                                    " energies, field 'energy' has " + std::to_string(m.energy.size()));
  }
  const std::size_t intensities = m.intensity_count();
  if (intensities != m.energy.size() * pixels) {
    d.fail(ErrorCode::kLengthMismatch, "intensity",
           "field 'intensity' has " + std::to_string(intensities) + " values, expected " +
               std::to_string(m.energy.size() * pixels) +
               (m.stack ? " (pixels x energies)" : " (one per energy)"));
  }
  if (m.energy.size() < 2) d.fail(ErrorCode::kTooFewPoints, "energy", "field 'energy' needs at least 2 values");
  for (std::size_t i = 0; i < m.energy.size(); ++i) {
    if (!std::isfinite(m.energy[i])) d.fail(ErrorCode::kNonFinite, "energy", "energy[" + std::to_string(i) + "] is not finite");
    if (i > 0 && !(m.energy[i] > m.energy[i - 1])) {
      d.fail(ErrorCode::kNonMonotonicEnergy, "energy",
             "energy is not strictly increasing at index " + std::to_string(i));
    }
  }
  for (std::size_t i = 0; i < intensities; ++i) {
    if (!std::isfinite(m.intensity_f4.empty() ? m.intensity[i] : m.intensity_f4[i])) {
      d.fail(ErrorCode::kNonFinite, "intensity", "intensity[" + std::to_string(i) + "] is not finite");
    }
  }
  if (fields[3]) {
    if (!is_number(*fields[3])) {
      d.fail(ErrorCode::kBadType, "time", std::string("field 'time' is ") + type_name(fields[3]->type) + ", expected a number");
    }
    const double t = number(*fields[3]);
    if (!std::isfinite(t)) d.fail(ErrorCode::kNonFinite, "time", "field 'time' is not finite");
    if (t < 0) d.fail(ErrorCode::kOutOfRange, "time", "field 'time' is negative");
    m.time = t;
  }
  if (fields[4]) {
    if (fields[4]->type != msgpack::type::MAP) {
      d.fail(ErrorCode::kBadType, "meta", std::string("field 'meta' is ") + type_name(fields[4]->type) + ", expected a map");
    }
    if (const auto bad = invalid_utf8_in(*fields[4])) {
      d.fail(ErrorCode::kBadType, "meta",
             "field 'meta' holds a string that is not valid UTF-8 ('" + quote_text(*bad) +
                 "'); msgpack strings must be (send bytes as bin)");
    }
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, *fields[4]);
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(buffer.data());
    m.meta.assign(bytes, bytes + buffer.size());
  }
  return m;
}

std::vector<std::uint8_t> encode(const SpectrumMessage& m, const std::string& raw_dtype) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  const bool raw = !raw_dtype.empty();
  std::uint32_t entries = 3 + (raw ? 1 : 0) + (m.time ? 1 : 0) + (m.meta.empty() ? 0 : 1) +
                          (m.stack ? 2 : 0);
  pk.pack_map(entries);
  pk.pack("id");
  pk.pack(m.id);
  const auto pack_numbers = [&](const auto& v) {
    if (!raw) {
      pk.pack_array(static_cast<std::uint32_t>(v.size()));
      for (double x : v) pk.pack_double(x);
      return;
    }
    const std::size_t width = raw_dtype == "f4" ? 4 : 8;
    pk.pack_bin(static_cast<std::uint32_t>(v.size() * width));
    std::vector<char> bytes(v.size() * width);
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (width == 4) {
        const auto f = static_cast<float>(v[i]);
        std::memcpy(bytes.data() + i * 4, &f, 4);
      } else {
        const auto x = static_cast<double>(v[i]);
        std::memcpy(bytes.data() + i * 8, &x, 8);
      }
    }
    pk.pack_bin_body(bytes.data(), static_cast<std::uint32_t>(bytes.size()));
  };
  pk.pack("energy");
  pack_numbers(m.energy);
  pk.pack("intensity");
  if (m.intensity_f4.empty()) {
    pack_numbers(m.intensity);
  } else {
    pack_numbers(m.intensity_f4);
  }
  if (raw) {
    pk.pack("dtype");
    pk.pack(raw_dtype);
  }
  if (m.time) {
    pk.pack("time");
    pk.pack_double(*m.time);
  }
  if (!m.meta.empty()) {
    pk.pack("meta");
    buffer.write(reinterpret_cast<const char*>(m.meta.data()), m.meta.size());
  }
  if (m.stack) {
    pk.pack("kind");
    pk.pack("stack");
    pk.pack("shape");
    pk.pack_array(static_cast<std::uint32_t>(m.shape.size()));
    for (auto s : m.shape) pk.pack(s);
  }
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(buffer.data());
  return {bytes, bytes + buffer.size()};
}

}  // namespace xasmap::protocol
