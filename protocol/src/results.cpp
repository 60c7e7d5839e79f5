// Encoders and decoders of the daemon's output messages (docs/protocol.md).

#include "xasmap/protocol/results.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "msgpack_detail.hpp"
#include "xasmap/protocol/messages.hpp"

namespace xasmap::protocol {

namespace {

static_assert(std::endian::native == std::endian::little, "bin arrays are little-endian");

using detail::is_number;
using detail::number;
using detail::type_name;
using detail::unpack_frame;
using detail::MapView;
using detail::read_number_array;
using detail::read_params;
// The packer's stream: appends to a byte vector the caller owns, so that an encoder reusing the
// vector's capacity does not allocate.
struct ByteSink {
  std::vector<std::uint8_t>& bytes;
  void write(const char* p, std::size_t n) {
    const auto* b = reinterpret_cast<const std::uint8_t*>(p);
    bytes.insert(bytes.end(), b, b + n);
  }
  std::size_t size() const { return bytes.size(); }
};
using Packer = msgpack::packer<ByteSink>;

using detail::pack_value;

void pack_params(Packer& pk, const ParamMap& params) {
  pk.pack_map(static_cast<std::uint32_t>(params.size()));
  for (const auto& [name, v] : params) {
    pk.pack(name);
    pack_value(pk, v);
  }
}

void pack_numbers(Packer& pk, const NumberMap& map) {
  pk.pack_map(static_cast<std::uint32_t>(map.size()));
  for (const auto& [name, v] : map) {
    pk.pack(name);
    pk.pack_double(v);
  }
}

void pack_floats_bin(Packer& pk, const std::vector<float>& v) {
  const auto size = static_cast<std::uint32_t>(v.size() * sizeof(float));
  pk.pack_bin(size);
  pk.pack_bin_body(reinterpret_cast<const char*>(v.data()), size);
}

void pack_float_maps(Packer& pk, const std::vector<std::pair<std::string, std::vector<float>>>& maps) {
  pk.pack_map(static_cast<std::uint32_t>(maps.size()));
  for (const auto& [name, v] : maps) {
    pk.pack(name);
    pack_floats_bin(pk, v);
  }
}

void write_big_endian(std::uint8_t* p, std::uint64_t bits) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<std::uint8_t>(bits & 0xff);
    bits >>= 8;
  }
}

// A float64 written at fixed width (0xcb + 8 bytes), so that stamp() can overwrite it in place.
// (The packer's pack_double() writes integral values as integers.) Returns its offset.
std::size_t fixed_double(ByteSink& buffer, double v) {
  const std::size_t at = buffer.size();
  std::uint8_t bytes[9];
  bytes[0] = 0xcb;
  write_big_endian(bytes + 1, std::bit_cast<std::uint64_t>(v));
  buffer.write(reinterpret_cast<const char*>(bytes), sizeof bytes);
  return at;
}

// Writes `latency` with placeholders for service and end_to_end.
void pack_latency(ByteSink& buffer, Packer& pk, const Latency& l, StampOffsets& off) {
  pk.pack_map(l.end_to_end ? 5 : 4);
  pk.pack("queue");
  pk.pack_double(l.queue);
  pk.pack("decode");
  pk.pack_double(l.decode);
  pk.pack("compute");
  pk.pack_double(l.compute);
  pk.pack("service");
  off.service = fixed_double(buffer, l.service);
  if (l.end_to_end) {
    pk.pack("end_to_end");
    off.end_to_end = fixed_double(buffer, *l.end_to_end);
  }
}

void pack_meta(ByteSink& buffer, Packer& pk, const std::vector<std::uint8_t>& meta) {
  pk.pack("meta");
  if (meta.empty()) {
    pk.pack_nil();
  } else {
    buffer.write(reinterpret_cast<const char*>(meta.data()), meta.size());
  }
}

// A number that is an integral value (a charge) as an integer, anything else as a float.
void pack_number(Packer& pk, double v) {
  if (std::isfinite(v) && v == std::round(v) && std::abs(v) < 9e15) {
    pk.pack(static_cast<std::int64_t>(v));
  } else {
    pk.pack_double(v);
  }
}

void pack_mixture(Packer& pk, const MixtureEntry& m) {
  pk.pack_map(4);
  pk.pack("mean_valence");
  pk.pack_double(m.mean_valence);
  pk.pack("mean_valence_sd");
  pk.pack_double(m.mean_valence_sd);
  pk.pack("single_phase");
  pk.pack(m.single_phase);
  pk.pack("components");
  pk.pack_array(static_cast<std::uint32_t>(m.components.size()));
  for (const MixtureComponentEntry& c : m.components) {
    pk.pack_map(4);
    pk.pack("charge");
    pack_number(pk, c.charge);
    pk.pack("fraction");
    pk.pack_double(c.fraction);
    pk.pack("fraction_sd");
    pk.pack_double(c.fraction_sd);
    pk.pack("tendq");
    pk.pack_double(c.tendq);
  }
}

void write_double(std::vector<std::uint8_t>& bytes, std::size_t at, double v) {
  if (at == 0 || at + 9 > bytes.size() || bytes[at] != 0xcb) return;
  write_big_endian(bytes.data() + at + 1, std::bit_cast<std::uint64_t>(v));
}

// ---- decoding -------------------------------------------------------------------------------

NumberMap read_numbers(const MapView& v) {
  NumberMap out;
  v.each([&](const std::string& key, const msgpack::object& o) {
    if (!is_number(o)) v.wrong(key, o, "a number");
    out.emplace_back(key, number(o));
  });
  return out;
}

std::vector<std::pair<std::string, std::vector<float>>> read_float_maps(const MapView& v) {
  std::vector<std::pair<std::string, std::vector<float>>> out;
  v.each([&](const std::string& key, const msgpack::object& o) { out.emplace_back(key, v.floats(key, o)); });
  return out;
}

Latency read_latency(const MapView& v) {
  Latency l;
  l.queue = v.num("queue");
  l.decode = v.num("decode");
  l.compute = v.num("compute");
  l.service = v.num("service");
  if (v.find("end_to_end")) l.end_to_end = v.num("end_to_end");
  return l;
}

MixtureEntry read_mixture(const MapView& v) {
  MixtureEntry m;
  m.mean_valence = v.num("mean_valence");
  m.mean_valence_sd = v.num("mean_valence_sd");
  m.single_phase = v.boolean("single_phase");
  const msgpack::object& c = v.get("components");
  if (c.type != msgpack::type::ARRAY) v.wrong("components", c, "an array of maps");
  for (std::uint32_t i = 0; i < c.via.array.size; ++i) {
    const MapView e(c.via.array.ptr[i], v.name("components[" + std::to_string(i) + "]"));
    m.components.push_back({e.num("charge"), e.num("fraction"), e.num("fraction_sd"), e.num("tendq")});
  }
  return m;
}

// Finds the top-level "id" string of a map without materialising anything else.
class IdVisitor : public msgpack::null_visitor {
 public:
  std::optional<std::string> id;
  bool start_map(std::uint32_t) {
    ++depth_;
    return true;
  }
  bool end_map() {
    --depth_;
    return true;
  }
  bool start_array(std::uint32_t) {
    ++depth_;
    return true;
  }
  bool end_array() {
    --depth_;
    return true;
  }
  bool start_map_key() {
    in_key_ = true;
    return true;
  }
  bool end_map_key() {
    in_key_ = false;
    return true;
  }
  bool visit_str(const char* p, std::uint32_t n) {
    if (depth_ != 1) return true;
    if (in_key_) {
      next_is_id_ = std::string_view(p, n) == "id";
      return true;
    }
    if (next_is_id_) {
      id = std::string(p, n);
      return false;  // found: stop parsing
    }
    return true;
  }
  bool end_map_value() {
    if (depth_ == 1) next_is_id_ = false;
    return true;
  }

 private:
  int depth_ = 0;
  bool in_key_ = false;
  bool next_is_id_ = false;
};

}  // namespace

ParamMap to_param_map(const std::vector<ParameterInfo>& info, const std::vector<double>& values) {
  ParamMap out;
  to_param_map_into(info, values, out);
  return out;
}

void to_param_map_into(const std::vector<ParameterInfo>& info, const std::vector<double>& values, ParamMap& out) {
  const std::size_t n = std::min(info.size(), values.size());
  out.resize(n);
  for (std::size_t p = 0; p < n; ++p) {
    out[p].first.assign(info[p].name);
    ParamValue& v = out[p].second;
    v.number = values[p];
    v.text.clear();
    v.integer = false;
    if (!info[p].category_names.empty()) {
      const double index = values[p];
      if (index >= 0 && index < static_cast<double>(info[p].category_names.size())) {
        v.text.assign(info[p].category_names[static_cast<std::size_t>(index)]);
      }
    } else if (info[p].categorical && std::isfinite(values[p]) && values[p] == std::round(values[p])) {
      v.integer = true;
    }
  }
}

namespace {
bool same_number(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }
}  // namespace

bool MixtureComponentEntry::operator==(const MixtureComponentEntry& o) const {
  return same_number(charge, o.charge) && same_number(fraction, o.fraction) &&
         same_number(fraction_sd, o.fraction_sd) && same_number(tendq, o.tendq);
}

bool MixtureEntry::operator==(const MixtureEntry& o) const {
  return same_number(mean_valence, o.mean_valence) && same_number(mean_valence_sd, o.mean_valence_sd) &&
         single_phase == o.single_phase && components == o.components;
}

std::string fraction_key(double charge) {
  if (std::isfinite(charge) && charge == std::round(charge) && std::abs(charge) < 1e9) {
    return std::to_string(static_cast<long long>(charge));
  }
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", charge);
  return text;
}

MixtureEntry to_mixture_entry(const std::vector<ParameterInfo>& params, const Mixture& mixture) {
  MixtureEntry out;
  to_mixture_entry_into(params, mixture, out);
  return out;
}

void to_mixture_entry_into(const std::vector<ParameterInfo>& params, const Mixture& mixture, MixtureEntry& out) {
  std::size_t tendq = params.size();
  for (std::size_t p = 0; p < params.size(); ++p) {
    if (params[p].name == "tendq") tendq = p;
  }
  out.mean_valence = mixture.mean_value;
  out.mean_valence_sd = mixture.mean_value_sd;
  out.single_phase = mixture.single_phase;
  out.components.resize(mixture.components.size());
  for (std::size_t i = 0; i < mixture.components.size(); ++i) {
    const MixtureComponent& c = mixture.components[i];
    MixtureComponentEntry& e = out.components[i];
    e.charge = c.class_value;
    e.fraction = c.fraction;
    e.fraction_sd = c.fraction_sd;
    e.tendq = tendq < c.values.size() ? c.values[tendq] : std::numeric_limits<double>::quiet_NaN();
  }
}

void to_estimate_message(const std::vector<ParameterInfo>& params, const Estimate& e, EstimateMessage& out) {
  to_param_map_into(params, e.values, out.params);
  out.confidence.resize(0);
  out.uncertainty.resize(0);
  for (std::size_t p = 0; p < params.size(); ++p) {
    auto& target = params[p].categorical ? out.confidence : out.uncertainty;
    target.emplace_back(params[p].name, params[p].categorical ? e.confidence[p] : e.uncertainty[p]);
  }
  out.embedding.assign(e.map.data(), e.map.data() + e.map.size());
  out.neighbors.resize(e.neighbors.size());
  for (std::size_t i = 0; i < e.neighbors.size(); ++i) {
    const Neighbor& n_in = e.neighbors[i];
    NeighborEntry& n_out = out.neighbors[i];
    n_out.label.assign(n_in.label);
    to_param_map_into(params, n_in.values, n_out.params);
    n_out.distance = n_in.distance;
    n_out.shift_ev = n_in.shift_ev;
  }
  out.novelty = e.novelty;
  out.in_library = e.in_library;
  out.energy_shift_ev = e.energy_shift_ev;
  out.coverage = e.coverage;
  out.edge_step = e.edge_step;
}

void stamp(Encoded& message, std::uint64_t seq, double time_published, double service_us,
           std::optional<double> end_to_end_us) {
  auto& b = message.bytes;
  const std::size_t at = message.offsets.seq;
  if (at != 0 && at + 9 <= b.size() && b[at] == 0xcf) write_big_endian(b.data() + at + 1, seq);
  write_double(b, message.offsets.time_published, time_published);
  write_double(b, message.offsets.service, service_us);
  if (end_to_end_us) write_double(b, message.offsets.end_to_end, *end_to_end_us);
}

Encoded encode(const EstimateMessage& m) {
  Encoded out;
  encode_into(m, out);
  return out;
}

void encode_into(const EstimateMessage& m, Encoded& out) {
  out.bytes.clear();
  out.offsets = {};
  ByteSink buffer{out.bytes};
  Packer pk(buffer);
  pk.pack_map(m.mixture ? 16 : 15);
  pk.pack("id");
  pk.pack(m.id);
  pk.pack("seq");
  out.offsets.seq = buffer.size();
  pk.pack_fix_uint64(m.seq);
  pk.pack("params");
  pack_params(pk, m.params);
  pk.pack("uncertainty");
  pack_numbers(pk, m.uncertainty);
  pk.pack("confidence");
  pack_numbers(pk, m.confidence);
  pk.pack("embedding");
  pk.pack_array(static_cast<std::uint32_t>(m.embedding.size()));
  for (double x : m.embedding) pk.pack_double(x);
  pk.pack("neighbors");
  pk.pack_array(static_cast<std::uint32_t>(m.neighbors.size()));
  for (const NeighborEntry& n : m.neighbors) {
    pk.pack_map(4);
    pk.pack("label");
    pk.pack(n.label);
    pk.pack("params");
    pack_params(pk, n.params);
    pk.pack("distance");
    pk.pack_double(n.distance);
    pk.pack("shift_ev");
    pk.pack_double(n.shift_ev);
  }
  pk.pack("novelty");
  pk.pack_double(m.novelty);
  pk.pack("in_library");
  pk.pack(m.in_library);
  pk.pack("energy_shift_ev");
  pk.pack_double(m.energy_shift_ev);
  pk.pack("coverage");
  pk.pack_double(m.coverage);
  pk.pack("edge_step");
  pk.pack_double(m.edge_step);
  if (m.mixture) {
    pk.pack("mixture");
    pack_mixture(pk, *m.mixture);
  }
  pk.pack("latency_us");
  pack_latency(buffer, pk, m.latency, out.offsets);
  pk.pack("time_published");
  out.offsets.time_published = fixed_double(buffer, m.time_published);
  pack_meta(buffer, pk, m.meta);
}

Encoded encode(const EstimateMapMessage& m) {
  Encoded out;
  out.bytes.reserve(4096 + m.novelty.size() * 4 *
                             (2 + m.params.size() + m.uncertainty.size() + m.confidence.size() + m.fractions.size()));
  ByteSink buffer{out.bytes};
  Packer pk(buffer);
  pk.pack_map(13 + (m.fractions.empty() ? 0 : 1) + (m.edge_step.empty() ? 0 : 1));
  pk.pack("id");
  pk.pack(m.id);
  pk.pack("seq");
  out.offsets.seq = buffer.size();
  pk.pack_fix_uint64(m.seq);
  pk.pack("shape");
  pk.pack_array(static_cast<std::uint32_t>(m.shape.size()));
  for (auto s : m.shape) pk.pack(s);
  pk.pack("dtype");
  pk.pack("f4");
  pk.pack("params");
  pack_float_maps(pk, m.params);
  pk.pack("uncertainty");
  pack_float_maps(pk, m.uncertainty);
  pk.pack("confidence");
  pack_float_maps(pk, m.confidence);
  pk.pack("categories");
  pk.pack_map(static_cast<std::uint32_t>(m.categories.size()));
  for (const auto& [name, names] : m.categories) {
    pk.pack(name);
    pk.pack(names);
  }
  pk.pack("novelty");
  pack_floats_bin(pk, m.novelty);
  if (!m.fractions.empty()) {
    pk.pack("fractions");
    pack_float_maps(pk, m.fractions);
  }
  if (!m.edge_step.empty()) {
    pk.pack("edge_step");
    pack_floats_bin(pk, m.edge_step);
  }
  pk.pack("rejected_pixels");
  pk.pack(m.rejected_pixels);
  pk.pack("latency_us");
  pack_latency(buffer, pk, m.latency, out.offsets);
  pk.pack("time_published");
  out.offsets.time_published = fixed_double(buffer, m.time_published);
  pack_meta(buffer, pk, m.meta);
  return out;
}

std::vector<std::uint8_t> encode(const MetricsMessage& m) {
  std::vector<std::uint8_t> bytes;
  bytes.reserve(512);
  ByteSink buffer{bytes};
  Packer pk(buffer);
  pk.pack_map(14);
  pk.pack("time");
  pk.pack_double(m.time);
  pk.pack("uptime_s");
  pk.pack_double(m.uptime_s);
  pk.pack("interval_s");
  pk.pack_double(m.interval_s);
  pk.pack("received");
  pk.pack(m.received);
  pk.pack("published");
  pk.pack(m.published);
  pk.pack("rejected");
  pk.pack(m.rejected);
  pk.pack("dropped");
  pk.pack(m.dropped);
  pk.pack("queue_depth");
  pk.pack(m.queue_depth);
  pk.pack("rate_hz");
  pk.pack_double(m.rate_hz);
  pk.pack("latency_us");
  pk.pack_map(5);
  pk.pack("p50");
  pk.pack_double(m.latency_us.p50);
  pk.pack("p90");
  pk.pack_double(m.latency_us.p90);
  pk.pack("p99");
  pk.pack_double(m.latency_us.p99);
  pk.pack("max");
  pk.pack_double(m.latency_us.max);
  pk.pack("count");
  pk.pack(m.latency_us.count);
  pk.pack("library");
  pk.pack_map(4);
  pk.pack("size");
  pk.pack(m.library.size);
  pk.pack("landmarks");
  pk.pack(m.library.landmarks);
  pk.pack("dims");
  pk.pack(m.library.dims);
  pk.pack("method");
  pk.pack(m.library.method);
  pk.pack("model_generation");
  pk.pack(m.model_generation);
  pk.pack("session_offset");
  pk.pack_map(8);
  pk.pack("mode");
  pk.pack(m.session_offset.mode);
  pk.pack("start_ev");
  pk.pack_double(m.session_offset.start_ev);
  pk.pack("tracked_ev");
  pk.pack_double(m.session_offset.tracked_ev);
  pk.pack("applied_ev");
  pk.pack_double(m.session_offset.applied_ev);
  pk.pack("spread_ev");
  pk.pack_double(m.session_offset.spread_ev);
  pk.pack("samples");
  pk.pack(m.session_offset.samples);
  pk.pack("counted");
  pk.pack(m.session_offset.counted);
  pk.pack("search_ev");
  pk.pack_double(m.session_offset.search_ev);
  pk.pack("protocol");
  pk.pack(kProtocolVersion);
  return bytes;
}

EstimateMessage decode_estimate(const std::uint8_t* data, std::size_t size) {
  const auto handle = unpack_frame(data, size);
  const MapView v(handle.get(), "");
  EstimateMessage m;
  m.id = v.str("id");
  m.seq = v.count("seq");
  m.params = read_params(v.map("params"));
  m.uncertainty = read_numbers(v.map("uncertainty"));
  m.confidence = read_numbers(v.map("confidence"));
  m.embedding = read_number_array(v, "embedding");
  const msgpack::object& n = v.get("neighbors");
  if (n.type != msgpack::type::ARRAY) v.wrong("neighbors", n, "an array of maps");
  for (std::uint32_t i = 0; i < n.via.array.size; ++i) {
    const MapView e(n.via.array.ptr[i], "neighbors[" + std::to_string(i) + "]");
    NeighborEntry entry;
    entry.label = e.str("label");
    entry.params = read_params(e.map("params"));
    entry.distance = e.num("distance");
    entry.shift_ev = e.num("shift_ev");
    m.neighbors.push_back(std::move(entry));
  }
  m.novelty = v.num("novelty");
  m.in_library = v.boolean("in_library");
  m.energy_shift_ev = v.num("energy_shift_ev");
  m.coverage = v.num("coverage");
  if (v.find("edge_step") != nullptr) m.edge_step = v.num("edge_step");  // since 2026-12-07
  if (v.find("mixture") != nullptr) m.mixture = read_mixture(v.map("mixture"));  // since 2026-12-06
  m.latency = read_latency(v.map("latency_us"));
  m.time_published = v.num("time_published");
  m.meta = v.raw_map_or_nil("meta");
  return m;
}

EstimateMapMessage decode_estimate_map(const std::uint8_t* data, std::size_t size) {
  const auto handle = unpack_frame(data, size);
  const MapView v(handle.get(), "");
  EstimateMapMessage m;
  m.id = v.str("id");
  m.seq = v.count("seq");
  for (double s : read_number_array(v, "shape")) {
    if (!(s >= 1 && s <= 2147483648.0) || s != std::floor(s)) {
      throw ProtocolError(ErrorCode::kOutOfRange, "shape", "field 'shape' must hold positive integers");
    }
    m.shape.push_back(static_cast<std::int64_t>(s));
  }
  if (v.str("dtype") != "f4") {
    throw ProtocolError(ErrorCode::kOutOfRange, "dtype", "field 'dtype' must be \"f4\"");
  }
  m.params = read_float_maps(v.map("params"));
  m.uncertainty = read_float_maps(v.map("uncertainty"));
  m.confidence = read_float_maps(v.map("confidence"));
  const MapView cats = v.map("categories");
  cats.each([&](const std::string& key, const msgpack::object& o) {
    if (o.type != msgpack::type::ARRAY) cats.wrong(key, o, "an array of strings");
    std::vector<std::string> names;
    for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
      if (o.via.array.ptr[i].type != msgpack::type::STR) cats.wrong(key, o.via.array.ptr[i], "a string");
      names.push_back(o.via.array.ptr[i].as<std::string>());
    }
    m.categories.emplace_back(key, std::move(names));
  });
  m.novelty = v.floats("novelty", v.get("novelty"));
  if (v.find("fractions") != nullptr) m.fractions = read_float_maps(v.map("fractions"));  // since 2026-12-06
  if (v.find("edge_step") != nullptr) m.edge_step = v.floats("edge_step", v.get("edge_step"));  // since 2026-12-07
  m.rejected_pixels = v.count("rejected_pixels");
  m.latency = read_latency(v.map("latency_us"));
  m.time_published = v.num("time_published");
  m.meta = v.raw_map_or_nil("meta");
  if (m.shape.size() < 2 || m.shape.size() > 3 ||
      std::any_of(m.shape.begin(), m.shape.end(), [](std::int64_t s) { return s <= 0 || s > (1LL << 31); })) {
    throw ProtocolError(ErrorCode::kOutOfRange, "shape", "field 'shape' must hold 2 or 3 positive extents");
  }
  std::int64_t pixels = 1;
  for (std::size_t i = 0; i + 1 < m.shape.size(); ++i) pixels *= m.shape[i];  // < 2^62: no overflow
  const auto check = [&](const std::string& field, std::size_t n) {
    if (static_cast<std::int64_t>(n) != pixels) {
      throw ProtocolError(ErrorCode::kLengthMismatch, field,
                          "field '" + field + "' has " + std::to_string(n) + " pixels, shape says " +
                              std::to_string(pixels));
    }
  };
  check("novelty", m.novelty.size());
  if (!m.edge_step.empty()) check("edge_step", m.edge_step.size());
  for (const auto* maps : {&m.params, &m.uncertainty, &m.confidence, &m.fractions}) {
    for (const auto& [name, values] : *maps) check(name, values.size());
  }
  return m;
}

MetricsMessage decode_metrics(const std::uint8_t* data, std::size_t size) {
  const auto handle = unpack_frame(data, size);
  const MapView v(handle.get(), "");
  MetricsMessage m;
  m.time = v.num("time");
  m.uptime_s = v.num("uptime_s");
  m.interval_s = v.num("interval_s");
  m.received = v.count("received");
  m.published = v.count("published");
  m.rejected = v.count("rejected");
  m.dropped = v.count("dropped");
  m.queue_depth = v.count("queue_depth");
  m.rate_hz = v.num("rate_hz");
  const MapView l = v.map("latency_us");
  m.latency_us = {l.num("p50"), l.num("p90"), l.num("p99"), l.num("max"), l.count("count")};
  const MapView lib = v.map("library");
  m.library = {lib.count("size"), lib.count("landmarks"), lib.count("dims"), lib.str("method")};
  m.model_generation = v.count("model_generation");
  const MapView so = v.map("session_offset");
  m.session_offset = {so.str("mode"),       so.num("start_ev"),  so.num("tracked_ev"), so.num("applied_ev"),
                      so.num("spread_ev"),  so.count("samples"), so.count("counted"),
                      so.find("search_ev") != nullptr ? so.num("search_ev") : 0.0};  // since 2026-12-06
  return m;
}

std::optional<std::string> peek_id(const std::uint8_t* data, std::size_t size) {
  IdVisitor visitor;
  std::size_t offset = 0;
  try {
    msgpack::parse(reinterpret_cast<const char*>(data), size, offset, visitor);
  } catch (const std::exception&) {
    // Whatever was found before the problem stands.
  }
  if (visitor.id && !is_valid_utf8(*visitor.id)) return std::nullopt;  // never published as text
  return visitor.id;
}

}  // namespace xasmap::protocol
