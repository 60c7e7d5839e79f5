#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "xasmap/protocol/messages.hpp"

using namespace xasmap::protocol;

TEST_CASE("every error code round-trips through its string", "[protocol]") {
  for (const auto code :
       {ErrorCode::kBadFrames, ErrorCode::kBadMsgpack, ErrorCode::kNotAMap,
        ErrorCode::kMissingField, ErrorCode::kBadType, ErrorCode::kLengthMismatch,
        ErrorCode::kNonMonotonicEnergy, ErrorCode::kNonFinite, ErrorCode::kOutOfRange,
        ErrorCode::kTooFewPoints, ErrorCode::kInsufficientOverlap, ErrorCode::kFlatSpectrum,
        ErrorCode::kEnergyUnit, ErrorCode::kNoEdge,
        ErrorCode::kTooLarge, ErrorCode::kOverloaded, ErrorCode::kInternal}) {
    const auto back = error_code_from_string(to_string(code));
    REQUIRE(back.has_value());
    CHECK(*back == code);
  }
  CHECK(to_string(ErrorCode::kNonMonotonicEnergy) == "non_monotonic_energy");
  CHECK(to_string(ErrorCode::kNoEdge) == "no_edge");
  CHECK(to_string(ErrorCode::kEnergyUnit) == "energy_unit");
  CHECK_FALSE(error_code_from_string("no_such_code").has_value());
}

TEST_CASE("error messages round-trip, with and without an id", "[protocol]") {
  ErrorMessage m;
  m.id = "scan-17/pixel-3";
  m.code = ErrorCode::kLengthMismatch;
  m.field = "intensity";
  m.message = "field 'intensity' has 99 values, 'energy' has 100";
  m.time = 1795000000.25;
  const auto bytes = encode(m);
  CHECK(decode_error_message(bytes.data(), bytes.size()) == m);

  m.id.reset();
  m.code = ErrorCode::kBadMsgpack;
  const auto bytes2 = encode(m);
  const ErrorMessage back = decode_error_message(bytes2.data(), bytes2.size());
  CHECK_FALSE(back.id.has_value());
  CHECK(back == m);
}

TEST_CASE("malformed error messages are refused with a code and the field", "[protocol]") {
  SECTION("truncated msgpack") {
    ErrorMessage m;
    m.message = "x";
    auto bytes = encode(m);
    bytes.resize(bytes.size() - 3);
    try {
      decode_error_message(bytes.data(), bytes.size());
      FAIL("truncated message was accepted");
    } catch (const ProtocolError& e) {
      CHECK(e.code() == ErrorCode::kBadMsgpack);
    }
  }
  SECTION("not a map") {
    const std::vector<std::uint8_t> array{0x92, 0x01, 0x02};  // [1, 2]
    try {
      decode_error_message(array.data(), array.size());
      FAIL("array was accepted");
    } catch (const ProtocolError& e) {
      CHECK(e.code() == ErrorCode::kNotAMap);
    }
  }
  SECTION("missing field") {
    // {"code": "internal"}
    const std::vector<std::uint8_t> map{0x81, 0xa4, 'c', 'o', 'd', 'e', 0xa8,
                                        'i',  'n',  't', 'e', 'r', 'n', 'a', 'l'};
    try {
      decode_error_message(map.data(), map.size());
      FAIL("map without message was accepted");
    } catch (const ProtocolError& e) {
      CHECK(e.code() == ErrorCode::kMissingField);
      CHECK(e.field() == "message");
    }
  }
  SECTION("wrong type") {
    // {"code": 5}
    const std::vector<std::uint8_t> map{0x81, 0xa4, 'c', 'o', 'd', 'e', 0x05};
    try {
      decode_error_message(map.data(), map.size());
      FAIL("integer code was accepted");
    } catch (const ProtocolError& e) {
      CHECK(e.code() == ErrorCode::kBadType);
      CHECK(e.field() == "code");
      CHECK(std::string(e.what()).find("'code'") != std::string::npos);
    }
  }
}
