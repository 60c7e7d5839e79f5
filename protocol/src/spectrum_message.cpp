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

// Element i of the array `field` is not a number (kept out of the loop that reads the numbers).
[[noreturn, gnu::cold, gnu::noinline]] void not_a_number(const detail::MapView& v, const std::string& field,
                                                        std::uint32_t i, const msgpack::object& x) {
  v.fail(ErrorCode::kBadType, field,
         "field '" + field + "'[" + std::to_string(i) + "] is " + type_name(x.type) + ", expected a number");
}

// An array of numbers, or bin of little-endian floats of `dtype` ("f4" or "f8"), as `Value`s; at
// most `max_count` of them.
template <class Value = double>
std::vector<Value> read_numbers(const detail::MapView& v, const std::string& field, const std::string* dtype,
                                std::size_t max_count) {
  const msgpack::object& o = v.get(field);
  std::vector<Value> out;
  if (o.type == msgpack::type::ARRAY) {
    if (o.via.array.size > max_count) {
      v.fail(ErrorCode::kTooLarge, field,
             "field '" + field + "' has " + std::to_string(o.via.array.size) + " values; the limit is " +
                 std::to_string(max_count));
    }
    out.reserve(o.via.array.size);
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
      const msgpack::object& x = o.via.array.ptr[i];
      if (!is_number(x)) not_a_number(v, field, i, x);
      out.push_back(static_cast<Value>(number(x)));
    }
    return out;
  }
  if (o.type == msgpack::type::BIN) {
    if (!dtype) {
      v.fail(ErrorCode::kMissingField, "dtype",
             "field '" + field + "' is bin, so field 'dtype' (\"f4\" or \"f8\") is required");
    }
    const std::size_t width = *dtype == "f4" ? 4 : 8;
    if (o.via.bin.size % width != 0) {
      v.fail(ErrorCode::kLengthMismatch, field,
             "field '" + field + "' holds " + std::to_string(o.via.bin.size) + " bytes, not a whole number of " +
                 *dtype + " values");
    }
    const std::size_t count = o.via.bin.size / width;
    if (count > max_count) {
      v.fail(ErrorCode::kTooLarge, field,
             "field '" + field + "' has " + std::to_string(count) + " values; the limit is " + std::to_string(max_count));
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
  v.wrong(field, o, "an array of numbers or bin");
}

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
  detail::MapView v(handle.get(), "");
  // id first, so that every later error can name the message.
  SpectrumMessage m;
  m.id = v.str("id");
  if (!is_valid_utf8(m.id)) {
    v.fail(ErrorCode::kBadType, "id", "field 'id' is not valid UTF-8 ('" + quote_text(m.id) + "'); msgpack strings must be");
  }
  v.tag(m.id);

  if (const auto kind = v.optional_str("kind")) {
    if (*kind != "spectrum" && *kind != "stack") {
      v.fail(ErrorCode::kOutOfRange, "kind", "field 'kind' is '" + quote_text(*kind) + "', expected \"spectrum\" or \"stack\"");
    }
    m.stack = *kind == "stack";
  }
  std::string dtype;  // empty when absent
  const msgpack::object* dtype_object = v.find("dtype");
  if (dtype_object) {
    if (dtype_object->type != msgpack::type::STR) v.wrong("dtype", *dtype_object, "\"f4\" or \"f8\"");
    dtype = v.str("dtype", *dtype_object);
    if (dtype != "f4" && dtype != "f8") {
      v.fail(ErrorCode::kOutOfRange, "dtype", "field 'dtype' is '" + quote_text(dtype) + "', expected \"f4\" or \"f8\"");
    }
  }
  v.get("energy");  // both required, and named before the stack's shape is checked
  const msgpack::object& intensity = v.get("intensity");

  std::size_t pixels = 1;
  if (m.stack) {
    const msgpack::object* shape = v.find("shape");
    if (!shape) v.fail(ErrorCode::kMissingField, "shape", "a stack needs field 'shape'");
    const msgpack::object& s = *shape;
    if (s.type != msgpack::type::ARRAY || (s.via.array.size != 2 && s.via.array.size != 3)) {
      v.fail(ErrorCode::kBadType, "shape", "field 'shape' must be [rows, cols, n_energy] or [n_pixels, n_energy]");
    }
    for (std::uint32_t i = 0; i < s.via.array.size; ++i) {
      const msgpack::object& x = s.via.array.ptr[i];
      if (x.type != msgpack::type::POSITIVE_INTEGER && x.type != msgpack::type::NEGATIVE_INTEGER) {
        v.fail(ErrorCode::kBadType, "shape", "field 'shape'[" + std::to_string(i) + "] is " + type_name(x.type) +
                                                 ", expected a positive integer");
      }
      if (x.type == msgpack::type::NEGATIVE_INTEGER || x.via.u64 == 0) {
        v.fail(ErrorCode::kOutOfRange, "shape", "field 'shape'[" + std::to_string(i) + "] must be positive");
      }
      // Every extent, and the pixel count as it grows, is checked against the limits before the
      // next multiplication, so the product cannot wrap.
      const bool energy_axis = i + 1 == s.via.array.size;
      const std::uint64_t limit = energy_axis ? limits.max_points : limits.max_stack_pixels / pixels;
      if (x.via.u64 > limit) {
        v.fail(ErrorCode::kTooLarge, "shape",
               energy_axis ? "field 'shape' says " + std::to_string(x.via.u64) + " energies; the limit is " +
                                 std::to_string(limits.max_points)
                           : "the stack has more pixels than the limit of " + std::to_string(limits.max_stack_pixels));
      }
      if (!energy_axis) pixels *= static_cast<std::size_t>(x.via.u64);
      m.shape.push_back(static_cast<std::int64_t>(x.via.u64));
    }
  }
  const std::string* dt = dtype_object ? &dtype : nullptr;
  m.energy = read_numbers(v, "energy", dt, limits.max_points);
  if (dtype == "f4" && intensity.type == msgpack::type::BIN) {
    m.intensity_f4 = read_numbers<float>(v, "intensity", dt, limits.max_points * pixels);
  } else {
    m.intensity = read_numbers(v, "intensity", dt, limits.max_points * pixels);
  }
  if (m.stack && static_cast<std::size_t>(m.shape.back()) != m.energy.size()) {
    v.fail(ErrorCode::kLengthMismatch, "shape", "field 'shape' says " + std::to_string(m.shape.back()) +
                                                    " energies, field 'energy' has " + std::to_string(m.energy.size()));
  }
  const std::size_t intensities = m.intensity_count();
  if (intensities != m.energy.size() * pixels) {
    v.fail(ErrorCode::kLengthMismatch, "intensity",
           "field 'intensity' has " + std::to_string(intensities) + " values, expected " +
               std::to_string(m.energy.size() * pixels) + (m.stack ? " (pixels x energies)" : " (one per energy)"));
  }
  if (m.energy.size() < 2) v.fail(ErrorCode::kTooFewPoints, "energy", "field 'energy' needs at least 2 values");
  for (std::size_t i = 0; i < m.energy.size(); ++i) {
    if (!std::isfinite(m.energy[i])) v.fail(ErrorCode::kNonFinite, "energy", "energy[" + std::to_string(i) + "] is not finite");
    if (i > 0 && !(m.energy[i] > m.energy[i - 1])) {
      v.fail(ErrorCode::kNonMonotonicEnergy, "energy", "energy is not strictly increasing at index " + std::to_string(i));
    }
  }
  for (std::size_t i = 0; i < intensities; ++i) {
    if (!std::isfinite(m.intensity_f4.empty() ? m.intensity[i] : m.intensity_f4[i])) {
      v.fail(ErrorCode::kNonFinite, "intensity", "intensity[" + std::to_string(i) + "] is not finite");
    }
  }
  if (const msgpack::object* time = v.find("time")) {
    const double t = v.num("time", *time);
    if (!std::isfinite(t)) v.fail(ErrorCode::kNonFinite, "time", "field 'time' is not finite");
    if (t < 0) v.fail(ErrorCode::kOutOfRange, "time", "field 'time' is negative");
    m.time = t;
  }
  if (const msgpack::object* meta = v.find("meta")) {
    if (meta->type != msgpack::type::MAP) v.wrong("meta", *meta, "a map");
    if (const auto bad = invalid_utf8_in(*meta)) {
      v.fail(ErrorCode::kBadType, "meta",
             "field 'meta' holds a string that is not valid UTF-8 ('" + quote_text(*bad) +
                 "'); msgpack strings must be (send bytes as bin)");
    }
    msgpack::sbuffer buffer;
    msgpack::pack(buffer, *meta);
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(buffer.data());
    m.meta.assign(bytes, bytes + buffer.size());
  }
  return m;
}

std::vector<std::uint8_t> encode(const SpectrumMessage& m, const std::string& raw_dtype) {
  const bool raw = !raw_dtype.empty();
  // Packed straight into the vector returned, with room for the arrays at once (9 bytes a value
  // at most): a stack is written once, not copied while a buffer grows and again at the end.
  struct VectorWriter {
    std::vector<std::uint8_t>& out;
    void write(const char* p, std::size_t n) {
      const auto* b = reinterpret_cast<const std::uint8_t*>(p);
      out.insert(out.end(), b, b + n);
    }
  };
  std::vector<std::uint8_t> bytes_out;
  bytes_out.reserve(256 + m.id.size() + m.meta.size() + 9 * (m.energy.size() + m.intensity_count()));
  VectorWriter buffer{bytes_out};
  msgpack::packer<VectorWriter> pk(buffer);
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
    using Value = typename std::decay_t<decltype(v)>::value_type;
    if constexpr (std::endian::native == std::endian::little) {
      if (sizeof(Value) == width) {  // already the wire's type and byte order: as it is
        pk.pack_bin_body(reinterpret_cast<const char*>(v.data()), static_cast<std::uint32_t>(v.size() * width));
        return;
      }
    }
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
  return bytes_out;
}

}  // namespace xasmap::protocol
