#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "watch_view.hpp"

using namespace xasmap::service;
namespace protocol = xasmap::protocol;

namespace {

// An estimate of the default library: charge 2 at 98 %, tendq 0.91 +- 0.05.
protocol::EstimateMessage estimate(const std::string& id, std::uint64_t seq = 1) {
  protocol::EstimateMessage m;
  m.id = id;
  m.seq = seq;
  m.params = {{"charge", {2.0, "", true}}, {"tendq", {0.9123, "", false}}};
  m.confidence = {{"charge", 0.98}};
  m.uncertainty = {{"tendq", 0.0512}};
  m.novelty = 0.8;
  m.in_library = true;
  m.latency.end_to_end = 1234.0;
  return m;
}

protocol::ErrorMessage error(std::optional<std::string> id, protocol::ErrorCode code, const std::string& message) {
  protocol::ErrorMessage m;
  m.id = std::move(id);
  m.code = code;
  m.message = message;
  return m;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("plain lines of the four output messages", "[service][watch]") {
  CHECK(plain_line(make_estimate_row(estimate("s0001"))) ==
        "estimate s0001 charge=2 (98%) tendq=0.91+-0.05 novelty=0.8 e2e=1.2ms");

  auto outside = estimate("s0002");
  outside.novelty = 5.25;
  outside.in_library = false;
  outside.latency.end_to_end.reset();
  CHECK(plain_line(make_estimate_row(outside)) ==
        "estimate s0002 charge=2 (98%) tendq=0.91+-0.05 novelty=5.2* e2e=-");

  // With estimation.mixture auto: the mean valence, rounded to its sd's precision.
  auto mixed = estimate("s0003");
  mixed.mixture = protocol::MixtureEntry{2.3123, 0.0431, false, {{2.0, 0.69, 0.02, 0.9}, {3.0, 0.31, 0.02, 1.5}}};
  CHECK(plain_line(make_estimate_row(mixed)) ==
        "estimate s0003 charge=2 (98%) tendq=0.91+-0.05 valence=2.31+-0.04 novelty=0.8 e2e=1.2ms");

  // The decoding checks' messages start with the code, the others do not: both read the same.
  CHECK(plain_line(error("bad-x", protocol::ErrorCode::kMissingField,
                         "missing_field: required field 'energy' is missing")) ==
        "error bad-x missing_field: required field 'energy' is missing");
  CHECK(plain_line(error(std::nullopt, protocol::ErrorCode::kBadFrames, "expected 2 frames, got 3")) ==
        "error - bad_frames: expected 2 frames, got 3");

  protocol::MetricsMessage metrics;
  metrics.rate_hz = 998.14;
  metrics.latency_us.p50 = 45.2;
  metrics.latency_us.p99 = 2100;
  metrics.received = 10;
  metrics.published = 7;
  metrics.rejected = 2;
  metrics.dropped = 1;
  metrics.queue_depth = 0;
  CHECK(plain_line(metrics) ==
        "metrics rate=998.1/s p50=45us p99=2.1ms received=10 published=7 rejected=2 dropped=1 queue=0");
}

TEST_CASE("an estimate map line gives shares of categories and medians", "[service][watch]") {
  protocol::EstimateMapMessage m;
  m.id = "stack-1";
  m.shape = {2, 3, 200};
  const float nan = std::numeric_limits<float>::quiet_NaN();
  m.params = {{"charge", {2, 4, 2, 4, 4, nan}}, {"tendq", {1.0f, 1.5f, 1.4f, 2.0f, 1.6f, nan}}};
  m.confidence = {{"charge", {1, 1, 1, 1, 1, nan}}};
  m.uncertainty = {{"tendq", {0.1f, 0.1f, 0.1f, 0.1f, 0.1f, nan}}};
  m.rejected_pixels = 1;
  CHECK(plain_line(make_map_row(m)) == "estimate_map stack-1 2x3 charge: 2=40.0% 4=60.0% tendq median 1.5 rejected 1");
  const auto table = format_table({make_map_row(m), make_estimate_row(estimate("s1"))}, 80);
  REQUIRE(table.size() == 3);
  CHECK(table[1] == "stack-1  map 2x3 charge 2=40% 4=60% tendq median 1.5 rejected 1");

  m.shape = {6, 200};
  m.params = {{"phase", {0, 1, 1, 1, nan, nan}}};
  m.confidence = {{"phase", {1, 1, 1, 1, nan, nan}}};
  m.uncertainty.clear();
  m.categories = {{"phase", {"spinel", "rocksalt"}}};
  m.rejected_pixels = 2;
  CHECK(plain_line(make_map_row(m)) == "estimate_map stack-1 6px phase: spinel=25.0% rocksalt=75.0% rejected 2");
}

TEST_CASE("an estimate row fits widths of 120 and 60 columns", "[service][watch]") {
  const std::vector<TableEntry> short_id = {make_estimate_row(estimate("scan42-p0007"))};
  const auto wide = format_table(short_id, 120);
  REQUIRE(wide.size() == 2);
  CHECK(contains(wide[0], "charge"));
  CHECK(contains(wide[0], "tendq"));
  CHECK(contains(wide[0], "novelty"));
  CHECK(contains(wide[0], "e2e"));
  CHECK(contains(wide[1], "scan42-p0007"));
  CHECK(contains(wide[1], "2 (98%)"));
  CHECK(contains(wide[1], "0.91+-0.05"));
  CHECK(contains(wide[1], "0.8"));
  CHECK(contains(wide[1], "1.2ms"));

  // A long id is cut in its middle to 24 columns; at 60 the latency goes too.
  const std::string long_id = "beamtime-2025-10-sampleA-scan0042-point0007";
  const std::vector<TableEntry> long_row = {make_estimate_row(estimate(long_id))};
  const auto at120 = format_table(long_row, 120);
  CHECK(contains(at120[1], "beamtime-20~42-point0007"));
  CHECK(contains(at120[1], "1.2ms"));
  const auto at60 = format_table(long_row, 60);
  for (const auto& line : at60) CHECK(display_width(line) <= 60);
  CHECK(contains(at60[1], "beamtime-20~42-point0007"));
  CHECK(contains(at60[1], "2 (98%)"));
  CHECK(contains(at60[1], "0.91+-0.05"));
  CHECK_FALSE(contains(at60[0], "e2e"));
  CHECK_FALSE(contains(at60[1], "1.2ms"));

  // Narrower: the id shrinks to 16 then 12 columns, then the uncertainty and the confidence go.
  const auto at48 = format_table(long_row, 48);
  CHECK(contains(at48[1], "beamtim~oint0007"));
  const auto at36 = format_table(long_row, 36);
  for (const auto& line : at36) CHECK(display_width(line) <= 36);
  CHECK_FALSE(contains(at36[0], "e2e"));
  CHECK(contains(at36[1], "0.91"));
  CHECK_FALSE(contains(at36[1], "+-"));
  CHECK(contains(at36[1], "0.8"));

  // Too narrow for any layout: lines are cut, never longer than the width.
  for (const auto& line : format_table(long_row, 10)) CHECK(display_width(line) <= 10);
}

TEST_CASE("parameter columns come from the messages", "[service][watch]") {
  protocol::EstimateMessage m;
  m.id = "x";
  m.params = {{"phase", {0, "rocksalt", false}}, {"strain", {0.0123, "", false}}};
  m.confidence = {{"phase", 0.5}};
  m.uncertainty = {{"strain", 0.0021}};
  const auto lines = format_table({make_estimate_row(m)}, 100);
  CHECK(contains(lines[0], "phase"));
  CHECK(contains(lines[0], "strain"));
  CHECK(contains(lines[1], "rocksalt (50%)"));
  CHECK(contains(lines[1], "0.0123+-0.0021"));
}

TEST_CASE("errors are counted by code", "[service][watch]") {
  WatchState state(10);
  state.add(error("a", protocol::ErrorCode::kMissingField, "missing_field: required field 'energy' is missing"));
  state.add(error("b", protocol::ErrorCode::kNonFinite, "non_finite: intensity[3] is NaN"));
  state.add(error("c", protocol::ErrorCode::kMissingField, "missing_field: required field 'id' is missing"));
  CHECK(state.errors() == 3);
  CHECK(state.errors_by_code() == std::map<std::string, std::uint64_t>{{"missing_field", 2}, {"non_finite", 1}});
  REQUIRE(state.last_error());
  CHECK(*state.last_error() == "c missing_field: required field 'id' is missing");
  const auto lines = state.render({"tcp://127.0.0.1:5556", 1.0, 0.0, std::nullopt}, 80, 24);
  bool shown = false;
  for (const auto& line : lines) shown = shown || contains(line, "errors by code: missing_field 2  non_finite 1");
  CHECK(shown);
}

TEST_CASE("the rolling table keeps the newest rows first", "[service][watch]") {
  WatchState state(3);
  for (int i = 1; i <= 5; ++i) state.add(estimate("s" + std::to_string(i), static_cast<std::uint64_t>(i)));
  CHECK(state.estimates() == 5);
  REQUIRE(state.rows().size() == 3);
  CHECK(std::get<EstimateRow>(state.rows()[0]).id == "s5");
  CHECK(std::get<EstimateRow>(state.rows()[2]).id == "s3");
  CHECK(state.missed() == 0);
  state.add(estimate("s9", 9));
  CHECK(state.missed() == 3);
  CHECK(state.summary() == "watch: 6 estimates, 0 maps, 0 errors, 3 missed, no metrics");
}

TEST_CASE("the screen fits the terminal", "[service][watch]") {
  WatchState state(100);
  protocol::MetricsMessage metrics;
  metrics.uptime_s = 125;
  metrics.interval_s = 1;
  metrics.rate_hz = 12.5;
  metrics.model_generation = 1;
  metrics.session_offset.search_ev = 1.0;  // not yet known: searched
  state.add(metrics, 1000.0);
  for (int i = 1; i <= 50; ++i) state.add(estimate("s" + std::to_string(i), static_cast<std::uint64_t>(i)));
  state.add_malformed("estimate", "bad_msgpack: undecodable msgpack");
  const WatchState::ScreenInfo info{"tcp://127.0.0.1:5556", 65, 1001.0, std::nullopt};
  for (const auto& [width, height] : {std::pair<std::size_t, std::size_t>{80, 24}, {40, 12}, {20, 5}}) {
    const auto lines = state.render(info, width, height);
    CHECK(lines.size() == height);
    for (const auto& line : lines) CHECK(display_width(line) <= width);
  }
  const auto lines = state.render(info, 100, 24);
  CHECK(contains(lines[0], "elapsed 1m05s"));
  CHECK(contains(lines[0], "daemon up 2m06s"));
  CHECK(contains(lines[0], "model gen 1"));
  CHECK(contains(lines[1], "rate 12.5/s"));
  CHECK(contains(lines[1], "offset searched ±1.0 eV around +0.00"));
  // Once the offset is known, its value.
  protocol::MetricsMessage settled = metrics;
  settled.session_offset = {"apply", 0.0, 0.62, 0.62, 0.1, 32, 40, 0.0};
  WatchState known(100);
  known.add(settled, 1000.0);
  CHECK(contains(known.render(info, 100, 24)[1], "offset +0.62 eV"));
  CHECK(contains(lines[2], "daemon: received 0  published 0  rejected 0  dropped 0  queue 0"));
  CHECK(contains(lines[3], "seen: 50 estimates  0 maps  0 errors  1 malformed"));
  CHECK(contains(lines[4], "errors by code: none"));
  CHECK(contains(lines[5], "last malformed: estimate: bad_msgpack"));
  // Newest first: the table's first row is the last estimate.
  bool newest_first = false;
  for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
    if (contains(lines[i], "novelty")) newest_first = lines[i + 1].rfind("s50 ", 0) == 0;
  }
  CHECK(newest_first);
  // --rows caps the table.
  const auto capped = state.render({"ep", 1, 1001.0, std::size_t{2}}, 100, 24);
  CHECK(capped.size() < 24);
}

TEST_CASE("text from the wire cannot drive the terminal", "[service][watch]") {
  CHECK(sanitize("a\x1b[2Jb\n") == "a?[2Jb?");
  CHECK(sanitize("x\xc2\x9b" "1m") == "x?1m");
  CHECK(sanitize("Mn\xc3\xa9") == "Mn\xc3\xa9");
  CHECK(display_width("Mn\xc3\xa9") == 3);
  CHECK(truncate_end("Mn\xc3\xa9xyz", 4) == "Mn\xc3\xa9~");
  CHECK(truncate_middle("scan42-p0007", 8) == "sca~0007");
  CHECK(plain_line(make_estimate_row(estimate(""))).rfind("estimate \"\" ", 0) == 0);
}

TEST_CASE("latencies and durations read naturally", "[service][watch]") {
  CHECK(format_latency_us(45.2) == "45us");
  CHECK(format_latency_us(1234) == "1.2ms");
  CHECK(format_latency_us(250000) == "250ms");
  CHECK(format_latency_us(3.4e6) == "3.40s");
  CHECK(format_e2e_ms(std::nullopt) == "-");
  CHECK(format_e2e_ms(-800.0) == "-0.8ms");
  CHECK(format_duration_s(4.25) == "4.2s");
  CHECK(format_duration_s(3725) == "1h02m");
  CHECK(format_with_uncertainty(1.5436, 0.1107) == "1.54+-0.11");
  CHECK(format_with_uncertainty(1.5436, 0.45) == "1.5+-0.5");
  CHECK(format_with_uncertainty(1.5436, 0.0) == "1.54+-0");
  CHECK(format_with_uncertainty(0.4392, 0.0023) == "0.4392+-0.0023");
  CHECK(format_with_uncertainty(2.08426, 0.000016) == "2.084+-2e-05");
  CHECK(format_with_uncertainty(2.08426, 0.000016, false) == "2.084");
  CHECK(format_with_uncertainty(-0.0001, 0.009) == "0.000+-0.009");
}
