#include <catch2/catch.hpp>

#include <msgpack.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "xasmap/protocol/messages.hpp"
#include "xasmap/core/mixture.hpp"
#include "xasmap/protocol/results.hpp"

using namespace xasmap::protocol;

namespace {

EstimateMessage sample_estimate() {
  EstimateMessage m;
  m.id = "scan-3/px-17";
  m.seq = 0;
  m.params = {{"charge", {2.0, "", true}}, {"tendq", {0.92, "", false}}, {"site", {0.0, "Oh", false}}};  // a text value carries no number
  m.uncertainty = {{"tendq", 0.07}};
  m.confidence = {{"charge", 0.98}, {"site", 1.0}};
  m.embedding = {0.25, -1.5};
  m.neighbors = {{"Mn2_tendq0.9", {{"charge", {2.0, "", true}}, {"tendq", {0.9, "", false}}}, 0.013, 0.05}};
  m.novelty = 0.8;
  m.in_library = true;
  m.energy_shift_ev = -0.1;
  m.coverage = 0.7;
  m.edge_step = 0.18;
  m.latency = {12.5, 3.25, 20.0, 0.0, 0.0};
  m.time_published = 0.0;
  msgpack::sbuffer meta;
  msgpack::packer<msgpack::sbuffer> pk(meta);
  pk.pack_map(1);
  pk.pack("pixel");
  pk.pack_array(2);
  pk.pack(3);
  pk.pack(4);
  m.meta.assign(meta.data(), meta.data() + meta.size());
  return m;
}

// `m`, one of whose per-pixel arrays (`field`) is a pixel short, is refused on decoding as a
// length mismatch naming that array.
void refused_as_short(const EstimateMapMessage& m, const std::string& field) {
  const Encoded bytes = encode(m);
  try {
    decode_estimate_map(bytes.bytes.data(), bytes.bytes.size());
    FAIL("a short " << field << " array was accepted");
  } catch (const ProtocolError& err) {
    CHECK(err.code() == ErrorCode::kLengthMismatch);
    CHECK(err.field() == field);
  }
}

}  // namespace

TEST_CASE("estimate messages round-trip and stamp() fills seq and times and latencies", "[protocol]") {
  EstimateMessage m = sample_estimate();
  Encoded e = encode(m);
  REQUIRE(e.offsets.seq > 0);
  REQUIRE(e.offsets.service > 0);
  REQUIRE(e.offsets.end_to_end > 0);
  REQUIRE(e.offsets.time_published > 0);
  CHECK(decode_estimate(e.bytes.data(), e.bytes.size()) == m);

  const std::size_t size_before = e.bytes.size();
  stamp(e, 4711, 1795000000.5, 250.0, 1800.0);
  CHECK(e.bytes.size() == size_before);  // in place
  const EstimateMessage back = decode_estimate(e.bytes.data(), e.bytes.size());
  CHECK(back.seq == 4711);
  CHECK(back.time_published == 1795000000.5);
  CHECK(back.latency.service == 250.0);
  REQUIRE(back.latency.end_to_end.has_value());
  CHECK(*back.latency.end_to_end == 1800.0);
  CHECK(back.params == m.params);
  CHECK(back.meta == m.meta);

  // Without an acquisition time there is no end_to_end, and stamping leaves it out.
  m.latency.end_to_end.reset();
  m.meta.clear();
  Encoded e2 = encode(m);
  CHECK(e2.offsets.end_to_end == 0);
  stamp(e2, 1, 2.0, 3.0, 99.0);
  const EstimateMessage back2 = decode_estimate(e2.bytes.data(), e2.bytes.size());
  CHECK_FALSE(back2.latency.end_to_end.has_value());
  CHECK(back2.meta.empty());
  CHECK(back2.latency.service == 3.0);
}

TEST_CASE("categorical numbers go out as integers and text categories by name", "[protocol]") {
  std::vector<xasmap::ParameterInfo> info(3);
  info[0] = {"charge", true, {}};
  info[1] = {"tendq", false, {}};
  info[2] = {"site", true, {"Oh", "Td"}};
  const ParamMap p = to_param_map(info, {3.0, 1.2, 1.0});
  REQUIRE(p.size() == 3);
  CHECK(p[0].second.integer);
  CHECK(p[0].second.number == 3.0);
  CHECK_FALSE(p[1].second.integer);
  CHECK(p[2].second.text == "Td");

  EstimateMessage m = sample_estimate();
  m.params = p;
  const Encoded e = encode(m);
  const msgpack::object_handle h =
      msgpack::unpack(reinterpret_cast<const char*>(e.bytes.data()), e.bytes.size());
  bool saw_charge = false;
  for (const auto& kv : h.get().via.map) {
    if (kv.key.as<std::string>() != "params") continue;
    for (const auto& pv : kv.val.via.map) {
      if (pv.key.as<std::string>() == "charge") {
        CHECK(pv.val.type == msgpack::type::POSITIVE_INTEGER);
        CHECK(pv.val.via.u64 == 3);
        saw_charge = true;
      }
      if (pv.key.as<std::string>() == "site") CHECK(pv.val.as<std::string>() == "Td");
    }
  }
  CHECK(saw_charge);
}

TEST_CASE("estimate maps round-trip with float32 pixel arrays", "[protocol]") {
  EstimateMapMessage m;
  m.id = "stack-9";
  m.shape = {2, 3, 220};
  const float nan = std::nanf("");
  m.params = {{"charge", {2, 2, 4, 4, nan, 2}}, {"tendq", {0.9f, 0.8f, 2.0f, 2.1f, nan, 1.0f}}};
  m.uncertainty = {{"tendq", {0.1f, 0.1f, 0.2f, 0.1f, nan, 0.3f}}};
  m.confidence = {{"charge", {1, 1, 0.9f, 1, nan, 0.5f}}};
  m.novelty = {0.5f, 0.6f, 0.7f, 0.8f, nan, 1.0f};
  m.rejected_pixels = 1;
  m.latency = {1, 2, 3, 4, 5};
  Encoded e = encode(m);
  stamp(e, 12, 1795000001.0, 44.0, 55.0);
  const EstimateMapMessage back = decode_estimate_map(e.bytes.data(), e.bytes.size());
  CHECK(back.seq == 12);
  CHECK(back.latency.service == 44.0);
  CHECK(back.shape == m.shape);
  REQUIRE(back.params.size() == 2);
  CHECK(back.params[0].second[3] == 4.0f);
  CHECK(std::isnan(back.params[1].second[4]));
  CHECK(back.rejected_pixels == 1);
  CHECK(back.novelty.size() == 6);
  CHECK(back.fractions.empty());  // estimation.mixture off

  // With mixtures: the mean valence beside the parameters and a fraction map per charge.
  m.params.emplace_back("valence", std::vector<float>{2.0f, 2.3f, 3.5f, 4.0f, nan, 2.0f});
  m.uncertainty.emplace_back("valence", std::vector<float>{0.0f, 0.1f, 0.1f, 0.0f, nan, 0.0f});
  m.fractions = {{"2", {1.0f, 0.7f, 0.0f, 0.0f, nan, 1.0f}},
                 {"3", {0.0f, 0.3f, 0.5f, 0.0f, nan, 0.0f}},
                 {"4", {0.0f, 0.0f, 0.5f, 1.0f, nan, 0.0f}}};
  const Encoded with = encode(m);
  const EstimateMapMessage mixed = decode_estimate_map(with.bytes.data(), with.bytes.size());
  REQUIRE(mixed.fractions.size() == 3);
  CHECK(mixed.fractions[1].first == "3");
  CHECK(mixed.fractions[1].second[1] == 0.3f);
  CHECK(mixed.params.back().first == "valence");
  m.fractions[2].second.pop_back();
  const Encoded short_fraction = encode(m);
  CHECK_THROWS_AS(decode_estimate_map(short_fraction.bytes.data(), short_fraction.bytes.size()), ProtocolError);
  m.fractions[2].second.push_back(0.0f);
  m.fractions.clear();

  // The edge-step continuum per pixel (absent when the fit is off), its length checked too.
  CHECK(back.edge_step.empty());
  m.edge_step = {0.0f, 0.21f, 0.0f, 0.3f, nan, 0.0f};
  const Encoded stepped = encode(m);
  const EstimateMapMessage with_step = decode_estimate_map(stepped.bytes.data(), stepped.bytes.size());
  REQUIRE(with_step.edge_step.size() == 6);
  CHECK(with_step.edge_step[1] == 0.21f);
  CHECK(std::isnan(with_step.edge_step[4]));
  m.edge_step.pop_back();
  refused_as_short(m, "edge_step");
  m.edge_step.clear();

  // A map whose arrays disagree with its shape is refused, naming the array.
  m.novelty.pop_back();
  refused_as_short(m, "novelty");
}

TEST_CASE("estimates carry a mixture: charges as integers, NaN 10Dq kept, absent when off", "[protocol][mixture]") {
  EstimateMessage m = sample_estimate();
  CHECK(decode_estimate(encode(m).bytes.data(), encode(m).bytes.size()).mixture == std::nullopt);
  MixtureEntry x;
  x.mean_valence = 3.4;
  x.mean_valence_sd = 0.06;
  x.single_phase = false;
  x.components = {{4.0, 0.6, 0.03, 2.05}, {2.0, 0.4, 0.03, std::nan("")}};
  m.mixture = x;
  const Encoded e = encode(m);
  const EstimateMessage back = decode_estimate(e.bytes.data(), e.bytes.size());
  REQUIRE(back.mixture.has_value());
  CHECK(*back.mixture == x);
  CHECK(back == m);
  // On the wire: mixture.components[i].charge is an integer, as params.charge is.
  const msgpack::object_handle h = msgpack::unpack(reinterpret_cast<const char*>(e.bytes.data()), e.bytes.size());
  const msgpack::object* mixture = nullptr;
  for (const auto& kv : h.get().via.map) {
    if (kv.key.as<std::string>() == "mixture") mixture = &kv.val;
  }
  REQUIRE(mixture != nullptr);
  for (const auto& kv : mixture->via.map) {
    if (kv.key.as<std::string>() != "components") continue;
    const auto& first = kv.val.via.array.ptr[0];
    for (const auto& c : first.via.map) {
      if (c.key.as<std::string>() == "charge") {
        CHECK(c.val.type == msgpack::type::POSITIVE_INTEGER);
        CHECK(c.val.via.u64 == 4);
      }
    }
    // A mistyped component field is refused, naming its path.
    msgpack::object text;
    text.type = msgpack::type::STR;
    text.via.str.ptr = "most";
    text.via.str.size = 4;
    const_cast<msgpack::object&>(first.via.map.ptr[1].val) = text;
  }
  msgpack::sbuffer damaged;
  msgpack::pack(damaged, h.get());
  try {
    decode_estimate(reinterpret_cast<const std::uint8_t*>(damaged.data()), damaged.size());
    FAIL("a string fraction was accepted");
  } catch (const ProtocolError& err) {
    CHECK(err.code() == ErrorCode::kBadType);
    CHECK(err.field() == "mixture.components[0].fraction");
  }
}

TEST_CASE("mixture entries from a model's Mixture, and fraction map keys", "[protocol][mixture]") {
  std::vector<xasmap::ParameterInfo> info(2);
  info[0] = {"charge", true, {}};
  info[1] = {"tendq", false, {}};
  xasmap::Mixture x;
  x.single_phase = false;
  x.mean_value = 2.5;
  x.mean_value_sd = 0.1;
  x.components = {{3.0, 0.5, 0.05, 7, 0.52, {3.0, 1.45}}, {2.0, 0.5, 0.05, 2, 0.48, {2.0, 0.85}}};
  const MixtureEntry e = to_mixture_entry(info, x);
  CHECK_FALSE(e.single_phase);
  CHECK(e.mean_valence == 2.5);
  REQUIRE(e.components.size() == 2);
  CHECK(e.components[0].charge == 3.0);
  CHECK(e.components[0].tendq == 1.45);
  CHECK(e.components[1].tendq == 0.85);
  // Without a parameter named tendq, the components' 10Dq is NaN.
  info[1].name = "dq";
  CHECK(std::isnan(to_mixture_entry(info, x).components[0].tendq));
  CHECK(fraction_key(2.0) == "2");
  CHECK(fraction_key(-1.0) == "-1");
  CHECK(fraction_key(2.5) == "2.5");
}

TEST_CASE("metrics round-trip", "[protocol]") {
  MetricsMessage m;
  m.time = 1795000000.0;
  m.uptime_s = 12.5;
  m.interval_s = 1.0;
  m.received = 1032;
  m.published = 1000;
  m.rejected = 30;
  m.dropped = 2;
  m.queue_depth = 0;
  m.rate_hz = 998.5;
  m.latency_us = {40.0, 80.0, 150.0, 900.0, 1000};
  m.library = {78, 64, 12, "lmds"};
  m.model_generation = 2;
  m.session_offset = {"apply", 0.25, 0.61, 0.61, 0.12, 64, 900, 1.0};
  const auto bytes = encode(m);
  CHECK(decode_metrics(bytes.data(), bytes.size()) == m);
}

TEST_CASE("decoders name the missing or mistyped field", "[protocol]") {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(2);
  pk.pack("time");
  pk.pack(1.0);
  pk.pack("uptime_s");
  pk.pack("long");
  const auto* p = reinterpret_cast<const std::uint8_t*>(buffer.data());
  try {
    decode_metrics(p, buffer.size());
    FAIL("accepted");
  } catch (const ProtocolError& e) {
    CHECK(e.code() == ErrorCode::kBadType);
    CHECK(e.field() == "uptime_s");
  }
  const std::uint8_t garbage[] = {0xc1, 0x00};
  CHECK_THROWS_AS(decode_estimate(garbage, sizeof garbage), ProtocolError);
}

TEST_CASE("peek_id finds the id of a spectrum message without decoding it", "[protocol]") {
  SpectrumMessage s;
  s.id = "needle";
  s.energy = {1, 2, 3};
  s.intensity = {4, 5, 6};
  s.meta = {0x81, 0xa2, 'i', 'd', 0xa4, 'f', 'a', 'k', 'e'};  // {"id": "fake"} nested in meta
  const auto bytes = encode(s, "f4");
  CHECK(peek_id(bytes.data(), bytes.size()) == std::optional<std::string>("needle"));
  // The nested "id" inside meta is not mistaken for the message's, wherever it comes.
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_map(2);
  pk.pack("meta");
  pk.pack_map(1);
  pk.pack("id");
  pk.pack("inner");
  pk.pack("id");
  pk.pack("outer");
  CHECK(peek_id(reinterpret_cast<const std::uint8_t*>(b.data()), b.size()) == std::optional<std::string>("outer"));
  const std::uint8_t no_id[] = {0x80};
  CHECK_FALSE(peek_id(no_id, sizeof no_id).has_value());
  const std::uint8_t garbage[] = {0xc1};
  CHECK_FALSE(peek_id(garbage, sizeof garbage).has_value());
}
