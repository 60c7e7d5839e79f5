// The `spectrum` message of protocol v1: round trips in every encoding, and every class of
// malformed message refused with its stable code, the field and (when readable) the id.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <msgpack.hpp>

#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/results.hpp"

using namespace xasmap::protocol;

namespace {

SpectrumMessage sample() {
  SpectrumMessage m;
  m.id = "scan-7/point-12";
  for (int i = 0; i < 5; ++i) {
    m.energy.push_back(640.0 + 0.5 * i);
    m.intensity.push_back(0.1 * i + 0.05);
  }
  m.time = 1795000000.125;
  return m;
}

// Packs a map from a builder callback, for hand-made malformed messages.
template <class F>
std::vector<std::uint8_t> pack_map(std::uint32_t n, F&& body) {
  msgpack::sbuffer buffer;
  msgpack::packer<msgpack::sbuffer> pk(buffer);
  pk.pack_map(n);
  body(pk);
  const auto* b = reinterpret_cast<const std::uint8_t*>(buffer.data());
  return {b, b + buffer.size()};
}

ProtocolError refusal(const std::vector<std::uint8_t>& bytes, const DecodeLimits& limits = {}) {
  try {
    decode_spectrum(bytes.data(), bytes.size(), limits);
  } catch (const ProtocolError& e) {
    return e;
  }
  FAIL("the message was accepted");
  throw;
}

}  // namespace

TEST_CASE("spectrum messages round-trip as arrays, f8 and f4 bin", "[protocol]") {
  SpectrumMessage m = sample();
  msgpack::sbuffer meta;
  msgpack::packer<msgpack::sbuffer> pk(meta);
  pk.pack_map(2);
  pk.pack("sample");
  pk.pack("MnO");
  pk.pack("pixel");
  pk.pack_array(2);
  pk.pack(3);
  pk.pack(4);
  m.meta.assign(reinterpret_cast<const std::uint8_t*>(meta.data()),
                reinterpret_cast<const std::uint8_t*>(meta.data()) + meta.size());
  for (const std::string dtype : {"", "f8", "f4"}) {
    INFO("dtype '" << dtype << "'");
    const auto bytes = encode(m, dtype);
    const SpectrumMessage back = decode_spectrum(bytes.data(), bytes.size());
    CHECK(back.id == m.id);
    CHECK(back.time == m.time);
    CHECK(back.meta == m.meta);  // echoed byte for byte
    REQUIRE(back.energy.size() == 5);
    for (std::size_t i = 0; i < 5; ++i) {
      const double tol = dtype == "f4" ? 1e-4 : 0.0;
      CHECK(back.energy[i] == Approx(m.energy[i]).margin(tol));
      const double y = dtype == "f4" ? back.intensity_f4.at(i) : back.intensity.at(i);
      CHECK(y == Approx(m.intensity[i]).margin(tol));
    }
  }
}

TEST_CASE("stacks carry a shape and pixel-major intensities", "[protocol]") {
  SpectrumMessage m = sample();
  m.stack = true;
  m.shape = {2, 3, 5};
  m.intensity.clear();
  for (int p = 0; p < 6; ++p) {
    for (int i = 0; i < 5; ++i) m.intensity.push_back(p + 0.01 * i);
  }
  const auto bytes = encode(m, "f4");
  const SpectrumMessage back = decode_spectrum(bytes.data(), bytes.size());
  CHECK(back.stack);
  CHECK(back.shape == std::vector<std::int64_t>{2, 3, 5});
  CHECK(back.pixels() == 6);
  CHECK(back.intensity_f4[5 * 4 + 2] == Approx(4.02).margin(1e-5));
  // [n_pixels, n_energy] works as well.
  m.shape = {6, 5};
  const auto flat = encode(m);
  CHECK(decode_spectrum(flat.data(), flat.size()).pixels() == 6);
}

TEST_CASE("an f4 stack decodes to float storage with the same values", "[protocol][f4]") {
  SpectrumMessage m = sample();
  m.stack = true;
  m.shape = {4, 3, 5};
  m.intensity.clear();
  // Values that float holds exactly and values it rounds: either way the decoded floats are the
  // very floats that were sent, bit for bit.
  std::vector<float> sent;
  for (int p = 0; p < 12; ++p) {
    for (int i = 0; i < 5; ++i) sent.push_back(static_cast<float>(p * 0.37 + 0.1 * i + 1e-3 / (1 + i)));
  }
  m.intensity_f4 = sent;
  const auto bytes = encode(m, "f4");
  const SpectrumMessage back = decode_spectrum(bytes.data(), bytes.size());
  CHECK(back.intensity.empty());  // not widened to double
  REQUIRE(back.intensity_f4.size() == sent.size());
  CHECK(back.intensity_f4.capacity() == sent.size());  // 4 bytes a value, nothing more
  CHECK(back.intensity_count() == sent.size());
  CHECK(back.pixels() == 12);
  for (std::size_t i = 0; i < sent.size(); ++i) {
    CHECK(std::memcmp(&back.intensity_f4[i], &sent[i], sizeof(float)) == 0);
  }
  // f8 and arrays of numbers still decode to double.
  for (const std::string dtype : {"", "f8"}) {
    const auto wide = encode(m, dtype);
    const SpectrumMessage w = decode_spectrum(wide.data(), wide.size());
    CHECK(w.intensity_f4.empty());
    REQUIRE(w.intensity.size() == sent.size());
    CHECK(w.intensity[7] == static_cast<double>(sent[7]));
  }
  // A non-finite float is still refused, naming the field.
  m.intensity_f4[9] = std::numeric_limits<float>::infinity();
  const auto bad = encode(m, "f4");
  try {
    decode_spectrum(bad.data(), bad.size());
    FAIL("an infinite f4 intensity was accepted");
  } catch (const ProtocolError& e) {
    CHECK(e.code() == ErrorCode::kNonFinite);
    CHECK(e.field() == "intensity");
  }
}

TEST_CASE("malformed spectrum messages are refused with code, field and id", "[protocol]") {
  const auto good = encode(sample());

  SECTION("undecodable and non-map frames") {
    std::vector<std::uint8_t> cut(good.begin(), good.begin() + 7);
    CHECK(refusal(cut).code() == ErrorCode::kBadMsgpack);
    std::vector<std::uint8_t> trailing = good;
    trailing.push_back(0xc0);
    CHECK(refusal(trailing).code() == ErrorCode::kBadMsgpack);
    const std::vector<std::uint8_t> array{0x91, 0x01};
    CHECK(refusal(array).code() == ErrorCode::kNotAMap);
    const std::vector<std::uint8_t> garbage{0xc1};  // never used in msgpack
    CHECK(refusal(garbage).code() == ErrorCode::kBadMsgpack);
  }
  SECTION("missing and mistyped fields") {
    const auto no_id = pack_map(1, [](auto& pk) { pk.pack("energy"); pk.pack_array(0); });
    const ProtocolError e1 = refusal(no_id);
    CHECK(e1.code() == ErrorCode::kMissingField);
    CHECK(e1.field() == "id");
    CHECK_FALSE(e1.id().has_value());
    const auto int_id = pack_map(1, [](auto& pk) { pk.pack("id"); pk.pack(5); });
    CHECK(refusal(int_id).code() == ErrorCode::kBadType);
    const auto no_energy = pack_map(1, [](auto& pk) { pk.pack("id"); pk.pack("a"); });
    const ProtocolError e2 = refusal(no_energy);
    CHECK(e2.code() == ErrorCode::kMissingField);
    CHECK(e2.field() == "energy");
    CHECK(e2.id() == std::optional<std::string>("a"));
    const auto text_value = pack_map(3, [](auto& pk) {
      pk.pack("id"); pk.pack("b");
      pk.pack("energy"); pk.pack_array(2); pk.pack(640.0); pk.pack("x");
      pk.pack("intensity"); pk.pack_array(2); pk.pack(1.0); pk.pack(2.0);
    });
    const ProtocolError e3 = refusal(text_value);
    CHECK(e3.code() == ErrorCode::kBadType);
    CHECK_THAT(e3.what(), Catch::Contains("'energy'[1] is a string"));
    const auto bin_no_dtype = pack_map(3, [](auto& pk) {
      pk.pack("id"); pk.pack("c");
      pk.pack("energy"); pk.pack_bin(8); pk.pack_bin_body("\0\0\0\0\0\0\0\0", 8);
      pk.pack("intensity"); pk.pack_bin(8); pk.pack_bin_body("\0\0\0\0\0\0\0\0", 8);
    });
    const ProtocolError e4 = refusal(bin_no_dtype);
    CHECK(e4.code() == ErrorCode::kMissingField);
    CHECK(e4.field() == "dtype");
    const auto key_int = pack_map(1, [](auto& pk) { pk.pack(1); pk.pack(2); });
    CHECK(refusal(key_int).code() == ErrorCode::kBadType);
  }
  SECTION("lengths, values and limits") {
    SpectrumMessage m = sample();
    m.intensity.pop_back();
    const ProtocolError length = refusal(encode(m));
    CHECK(length.code() == ErrorCode::kLengthMismatch);
    CHECK(length.field() == "intensity");
    CHECK(length.id() == std::optional<std::string>("scan-7/point-12"));

    m = sample();
    m.energy[3] = m.energy[1];
    CHECK(refusal(encode(m)).code() == ErrorCode::kNonMonotonicEnergy);
    m = sample();
    m.intensity[2] = std::numeric_limits<double>::quiet_NaN();
    const ProtocolError nan = refusal(encode(m));
    CHECK(nan.code() == ErrorCode::kNonFinite);
    CHECK_THAT(nan.what(), Catch::Contains("intensity[2]"));
    m = sample();
    m.energy[0] = std::numeric_limits<double>::infinity();
    CHECK(refusal(encode(m)).code() == ErrorCode::kNonFinite);
    m = sample();
    m.time = -1.0;
    CHECK(refusal(encode(m)).code() == ErrorCode::kOutOfRange);

    DecodeLimits small;
    small.max_points = 4;
    CHECK(refusal(encode(sample()), small).code() == ErrorCode::kTooLarge);
    CHECK(refusal(encode(sample(), "f8"), small).code() == ErrorCode::kTooLarge);

    SpectrumMessage stack = sample();
    stack.stack = true;
    stack.shape = {3, 5};
    stack.intensity.resize(15, 0.5);
    DecodeLimits two_pixels;
    two_pixels.max_stack_pixels = 2;
    CHECK(refusal(encode(stack), two_pixels).code() == ErrorCode::kTooLarge);
    stack.shape = {3, 4};
    const ProtocolError shape = refusal(encode(stack));
    CHECK(shape.code() == ErrorCode::kLengthMismatch);
    CHECK(shape.field() == "shape");
  }
  SECTION("kind and dtype values") {
    const auto odd_kind = pack_map(4, [](auto& pk) {
      pk.pack("id"); pk.pack("d");
      pk.pack("kind"); pk.pack("movie");
      pk.pack("energy"); pk.pack_array(0);
      pk.pack("intensity"); pk.pack_array(0);
    });
    CHECK(refusal(odd_kind).code() == ErrorCode::kOutOfRange);
    const auto odd_dtype = pack_map(4, [](auto& pk) {
      pk.pack("id"); pk.pack("e");
      pk.pack("dtype"); pk.pack("i4");
      pk.pack("energy"); pk.pack_array(0);
      pk.pack("intensity"); pk.pack_array(0);
    });
    const ProtocolError e = refusal(odd_dtype);
    CHECK(e.code() == ErrorCode::kOutOfRange);
    CHECK(e.field() == "dtype");
  }
  SECTION("unknown keys are ignored") {
    const auto extra = pack_map(4, [](auto& pk) {
      pk.pack("id"); pk.pack("f");
      pk.pack("energy"); pk.pack_array(2); pk.pack(640.0); pk.pack(641.0);
      pk.pack("intensity"); pk.pack_array(2); pk.pack(1.0); pk.pack(2.0);
      pk.pack("detector"); pk.pack("TEY");
    });
    CHECK(decode_spectrum(extra.data(), extra.size()).id == "f");
  }
}

TEST_CASE("stack shapes whose pixel count would overflow are too large and not wrapped", "[protocol]") {
  SpectrumMessage stack;
  stack.id = "huge";
  stack.stack = true;
  stack.energy = {1, 2, 3, 4, 5};
  stack.intensity = {};
  stack.shape = {std::int64_t{1} << 32, std::int64_t{1} << 32, 5};
  const auto bytes = encode(stack);
  try {
    decode_spectrum(bytes.data(), bytes.size());
    FAIL("a 2^64-pixel stack was accepted");
  } catch (const ProtocolError& e) {
    CHECK(e.code() == ErrorCode::kTooLarge);
    CHECK(e.field() == "shape");
    CHECK(e.id() == std::optional<std::string>("huge"));
  }
  stack.shape = {0, 5};
  const auto zero = encode(stack);
  try {
    decode_spectrum(zero.data(), zero.size());
    FAIL("a zero extent was accepted");
  } catch (const ProtocolError& e) {
    CHECK(e.code() == ErrorCode::kOutOfRange);
    CHECK(e.detail().find("must be positive") != std::string::npos);
  }
}

TEST_CASE("arrays and nesting beyond the decoder's bounds are too large before they are built", "[protocol]") {
  // A 13-byte message announcing a 2^31-element intensity array.
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_map(2);
  pk.pack("id");
  pk.pack("x");
  pk.pack("intensity");
  b.write("\xdd\x80\x00\x00\x00", 5);  // array32 header, no elements
  try {
    decode_spectrum(reinterpret_cast<const std::uint8_t*>(b.data()), b.size());
    FAIL("accepted");
  } catch (const ProtocolError& e) {
    CHECK(e.code() == ErrorCode::kTooLarge);
  }
  // `meta` nested 100 deep.
  msgpack::sbuffer d;
  msgpack::packer<msgpack::sbuffer> pd(d);
  pd.pack_map(4);
  pd.pack("id");
  pd.pack("deep");
  pd.pack("energy");
  pd.pack(std::vector<double>{1, 2, 3});
  pd.pack("intensity");
  pd.pack(std::vector<double>{1, 2, 3});
  pd.pack("meta");
  for (int i = 0; i < 100; ++i) {
    pd.pack_map(1);
    pd.pack("m");
  }
  pd.pack_nil();
  try {
    decode_spectrum(reinterpret_cast<const std::uint8_t*>(d.data()), d.size());
    FAIL("accepted");
  } catch (const ProtocolError& e) {
    CHECK(e.code() == ErrorCode::kTooLarge);
    CHECK(e.detail().find("nesting") != std::string::npos);
  }
  // Within the bounds, meta nests fine.
  SpectrumMessage m;
  m.id = "ok";
  m.energy = {1, 2, 3};
  m.intensity = {1, 2, 3};
  m.meta = {0x81, 0xa1, 'a', 0x81, 0xa1, 'b', 0x01};  // {"a": {"b": 1}}
  const auto ok = encode(m);
  CHECK(decode_spectrum(ok.data(), ok.size()).meta == m.meta);
}

TEST_CASE("text that is not UTF-8 is refused at the decoder, naming the field", "[protocol][utf8]") {
  CHECK(is_valid_utf8("scan-7 \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  for (const char* bad : {"\xff\xfe", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3",
                          "\x80"}) {
    INFO(quote_text(bad));
    CHECK_FALSE(is_valid_utf8(bad));
    CHECK(is_valid_utf8(quote_text(bad)));
  }
  CHECK(quote_text("a\xff\xfe\xc3\xa9") == "a\\xff\\xfe\xc3\xa9");

  SpectrumMessage m = sample();
  m.id = "\xff\xfe";
  const ProtocolError e1 = refusal(encode(m));
  CHECK(e1.code() == ErrorCode::kBadType);
  CHECK(e1.field() == "id");
  CHECK_FALSE(e1.id().has_value());
  CHECK(is_valid_utf8(e1.detail()));
  CHECK(peek_id(encode(m).data(), encode(m).size()) == std::nullopt);

  m = sample();
  m.stack = true;
  m.shape = {1, 5};
  auto bytes = encode(m);
  // The packed "stack" (a5 73 74 61 63 6b) becomes "st\xff\xfek": same length, not UTF-8.
  const std::vector<std::uint8_t> stack{0xa5, 's', 't', 'a', 'c', 'k'};
  auto at = std::search(bytes.begin(), bytes.end(), stack.begin(), stack.end());
  REQUIRE(at != bytes.end());
  at[3] = 0xff;
  at[4] = 0xfe;
  const ProtocolError e2 = refusal(bytes);
  CHECK(e2.field() == "kind");
  CHECK(is_valid_utf8(e2.detail()));
  CHECK_THAT(e2.detail(), Catch::Contains("st\\xff\\xfek"));

  const auto dtype = pack_map(4, [](auto& pk) {
    pk.pack("id"); pk.pack("d");
    pk.pack("energy"); pk.pack_bin(8); pk.pack_bin_body("\0\0\0\0\0\0\0\0", 8);
    pk.pack("intensity"); pk.pack_bin(8); pk.pack_bin_body("\0\0\0\0\0\0\0\0", 8);
    pk.pack("dtype"); pk.pack(std::string("f\xff"));
  });
  const ProtocolError e3 = refusal(dtype);
  CHECK(e3.field() == "dtype");
  CHECK(is_valid_utf8(e3.detail()));

  m = sample();
  m.meta = pack_map(1, [](auto& pk) { pk.pack("note"); pk.pack(std::string("\xff")); });
  const ProtocolError e4 = refusal(encode(m));
  CHECK(e4.code() == ErrorCode::kBadType);
  CHECK(e4.field() == "meta");
  CHECK(e4.id() == std::optional<std::string>("scan-7/point-12"));

  ErrorMessage err;
  err.id = std::string("\xff\xfe");
  err.message = "quoted \xff";
  err.field = "f\xfe";
  const auto encoded = encode(err);
  const ErrorMessage back = decode_error_message(encoded.data(), encoded.size());
  CHECK_FALSE(back.id.has_value());
  CHECK(is_valid_utf8(back.message));
  CHECK(is_valid_utf8(back.field));
}
