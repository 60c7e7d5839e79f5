#include <catch2/catch.hpp>
#include <msgpack.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "xasmap/protocol/control.hpp"
#include "xasmap/protocol/messages.hpp"

using namespace xasmap;
using namespace xasmap::protocol;

namespace {

std::vector<std::uint8_t> bytes_of(const msgpack::sbuffer& b) {
  const auto* p = reinterpret_cast<const std::uint8_t*>(b.data());
  return {p, p + b.size()};
}

// The field a decode_library_reply refusal names, or "" when it does not throw ProtocolError.
std::string refused_field(const std::vector<std::uint8_t>& bytes) {
  try {
    (void)decode_library_reply(bytes.data(), bytes.size());
  } catch (const ProtocolError& e) {
    return e.field();
  }
  return "";
}

}  // namespace

TEST_CASE("the library reply decodes to what was encoded", "[protocol][control]") {
  std::vector<ParameterInfo> parameters(3);
  parameters[0] = {"charge", true, {}};
  parameters[1] = {"tendq", false, {}};
  parameters[2] = {"symmetry", true, {"Oh", "D4h"}};
  const std::vector<std::string> labels{"Mn2_tendq0.9", "Mn3_tendq1.5", "Mn4_tendq2.1"};
  const std::vector<std::vector<double>> values{{2, 0.9, 0}, {3, 1.5, 1}, {4, 2.1, 0}};
  Eigen::MatrixXd map(3, 2);
  map << 0.25, -1.5, 3.0, 0.125, -2.0, 1e-3;
  const auto bytes = encode_library_reply(parameters, labels, values, map, "lmds");

  const LibraryReply r = decode_library_reply(bytes.data(), bytes.size());
  CHECK(r.method == "lmds");
  REQUIRE(r.parameters.size() == 3);
  CHECK(r.parameters[0].name == "charge");
  CHECK(r.parameters[0].categorical);
  CHECK_FALSE(r.parameters[1].categorical);
  CHECK(r.parameters[2].category_names == std::vector<std::string>{"Oh", "D4h"});
  REQUIRE(r.spectra.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    INFO("spectrum " << i);
    CHECK(r.spectra[i].label == labels[i]);
    // A text category travels by its name only (its index is not on the wire).
    const ParamMap sent = to_param_map(parameters, values[i]);
    REQUIRE(r.spectra[i].params.size() == sent.size());
    for (std::size_t k = 0; k < sent.size(); ++k) {
      CHECK(r.spectra[i].params[k].first == sent[k].first);
      CHECK(r.spectra[i].params[k].second.text == sent[k].second.text);
      if (sent[k].second.text.empty()) {
        CHECK(r.spectra[i].params[k].second.number == sent[k].second.number);
        CHECK(r.spectra[i].params[k].second.integer == sent[k].second.integer);
      }
    }
    REQUIRE(r.spectra[i].map.size() == 2);
    CHECK(r.spectra[i].map[0] == map(static_cast<Eigen::Index>(i), 0));  // doubles on the wire: exact
    CHECK(r.spectra[i].map[1] == map(static_cast<Eigen::Index>(i), 1));
  }
  // The charge travels as an integer, the symmetry by name.
  CHECK(r.spectra[1].params[0].second.integer);
  CHECK(r.spectra[1].params[2].second.text == "D4h");
}

TEST_CASE("a refused or malformed library reply is an error naming the field", "[protocol][control]") {
  SECTION("the daemon's refusal carries its reason") {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(2);
    pk.pack("ok");
    pk.pack(false);
    pk.pack("error");
    pk.pack("no model yet");
    const auto bytes = bytes_of(b);
    CHECK_THROWS_AS(decode_library_reply(bytes.data(), bytes.size()), ControlReplyError);
    CHECK_THROWS_WITH(decode_library_reply(bytes.data(), bytes.size()), Catch::Contains("no model yet"));
  }
  // A reply with one spectrum whose map holds `coordinates` numbers (map_dims 2), and optionally
  // no label.
  const auto reply = [](int coordinates, bool label) {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(5);
    pk.pack("ok");
    pk.pack(true);
    pk.pack("method");
    pk.pack("lmds");
    pk.pack("map_dims");
    pk.pack(2);
    pk.pack("parameters");
    pk.pack_array(0);
    pk.pack("spectra");
    pk.pack_array(1);
    pk.pack_map(label ? 3 : 2);
    if (label) {
      pk.pack("label");
      pk.pack("a");
    }
    pk.pack("params");
    pk.pack_map(0);
    pk.pack("map");
    pk.pack_array(static_cast<std::uint32_t>(coordinates));
    for (int i = 0; i < coordinates; ++i) pk.pack(0.5 * i);
    return bytes_of(b);
  };
  CHECK(refused_field(reply(2, true)).empty());  // the well-formed one decodes
  CHECK(refused_field(reply(3, true)) == "spectra[0].map");
  CHECK(refused_field(reply(2, false)) == "spectra[0].label");
  const std::vector<std::uint8_t> not_a_map{0x93, 0x01, 0x02, 0x03};  // [1, 2, 3]
  CHECK_THROWS_AS(decode_library_reply(not_a_map.data(), not_a_map.size()), ProtocolError);
}

TEST_CASE("a control request is read as a map with a string cmd, each key once", "[protocol][control]") {
  // A map of `entries` entries, packed by `pack`.
  const auto request = [](std::uint32_t entries, auto&& pack) {
    msgpack::sbuffer b;
    msgpack::packer<msgpack::sbuffer> pk(b);
    pk.pack_map(entries);
    pack(pk);
    return bytes_of(b);
  };
  // The request's refusal text, or "" when it decodes.
  const auto refusal = [](const std::vector<std::uint8_t>& bytes) -> std::string {
    try {
      (void)decode_control_request(bytes.data(), bytes.size(), 65536);
    } catch (const ControlRequestError& e) {
      return e.what();
    }
    return "";
  };
  const auto status = request(2, [](auto& pk) {
    pk.pack("cmd");
    pk.pack("status");
    pk.pack("extra");
    pk.pack(1);
  });
  CHECK(refusal(status).empty());
  CHECK(decode_control_request(status.data(), status.size(), 65536).cmd == "status");
  CHECK_THROWS_WITH(decode_control_request(status.data(), status.size(), status.size() - 1),
                    Catch::Contains("control.max_request_bytes"));
  CHECK(refusal(request(1, [](auto& pk) {
          pk.pack("cmd");
          pk.pack(1);
        })) == "field 'cmd' is an integer, expected a string");
  CHECK(refusal(request(2, [](auto& pk) {
          pk.pack("cmd");
          pk.pack("status");
          pk.pack(7);
          pk.pack("x");
        })) == "a key of frame 1 is an integer, not a string");
  CHECK(refusal(request(2, [](auto& pk) {
          pk.pack("cmd");
          pk.pack("bogus");
          pk.pack("cmd");
          pk.pack("status");
        })) == "key 'cmd' appears more than once in the request");
  CHECK(refusal(request(1, [](auto& pk) {
          pk.pack("command");
          pk.pack("status");
        })).rfind("field 'cmd' is missing", 0) == 0);
}
