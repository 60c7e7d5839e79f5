// The session offset: preprocessing on a shifted energy scale, and the tracker's median.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "xasmap/core/preprocess.hpp"
#include "xasmap/core/session_offset.hpp"

using namespace xasmap;

namespace {

// Two Lorentzian lines (an L3 and an L2) on 630-665 eV in 0.05 eV steps, moved up by `offset_ev`.
Spectrum two_lines(double offset_ev) {
  Spectrum s;
  const int n = 701;
  s.energy_ev.resize(n);
  s.intensity.resize(n);
  for (int i = 0; i < n; ++i) {
    const double e = 630.0 + 0.05 * i;
    const double x = e - offset_ev;
    s.energy_ev[i] = e;
    s.intensity[i] = 1.0 / (1.0 + std::pow((x - 641.0) / 0.5, 2)) + 0.5 / (1.0 + std::pow((x - 652.0) / 0.7, 2));
  }
  return s;
}

Estimate confident(double shift_ev, double p = 0.95, bool in_library = true) {
  Estimate e;
  e.energy_shift_ev = shift_ev;
  e.in_library = in_library;
  e.class_probability = {p, 1.0 - p, 0.0};
  return e;
}

}  // namespace

TEST_CASE("preprocessing on a session offset reads the spectrum on the library's energy scale", "[session]") {
  PreprocessOptions o;
  o.grid = EnergyGrid::from_range(635.0, 660.0, 0.1);
  const Prepared reference = preprocess(two_lines(0.0), o);
  // Measured 0.7 eV high (a multiple of the sampling step: the interpolation is exact).
  const Prepared corrected = preprocess(two_lines(0.7), o, 0.7);
  const Prepared uncorrected = preprocess(two_lines(0.7), o);
  REQUIRE(corrected.window.first == reference.window.first);
  REQUIRE(corrected.window.last == reference.window.last);
  const float scale = reference.values.cwiseAbs().maxCoeff();
  CHECK((corrected.values - reference.values).cwiseAbs().maxCoeff() <= 1e-4f * scale);
  // Without the offset the two differ by far more: the check above is not trivially met.
  CHECK((uncorrected.values - reference.values).cwiseAbs().maxCoeff() >= 0.1f * scale);
}

TEST_CASE("a session offset does not cost a scan the grid it covers on its own scale", "[session]") {
  PreprocessOptions o;
  o.grid = EnergyGrid::from_range(635.0, 660.0, 0.1);
  // A scan over exactly the grid, read 0.3 eV up and 0.3 eV down: the grid point at 660 (at 635)
  // lies 0.3 eV beyond its last (first) sample, and is given that sample's value.
  Spectrum scan;
  const int n = 251;
  scan.energy_ev.resize(n);
  scan.intensity.resize(n);
  for (int i = 0; i < n; ++i) {
    scan.energy_ev[i] = 635.0 + 0.1 * i;
    scan.intensity[i] = 0.2 + 0.01 * i + 1.0 / (1.0 + std::pow((scan.energy_ev[i] - 641.0) / 0.5, 2));
  }
  for (const double offset : {0.3, -0.3}) {
    Window w;
    RowVectorXf raw;
    EnergyGrid read_at = o.grid;
    read_at.emin_ev += offset;
    resample_into(scan.energy_ev, scan.intensity, read_at, w, raw, nullptr, std::max(0.0, -offset), std::max(0.0, offset));
    CHECK(w.first == 0);
    CHECK(w.last == o.grid.size - 1);
    const int end = offset > 0 ? o.grid.size - 1 : 0;
    CHECK(raw[end] == Approx(scan.intensity[offset > 0 ? n - 1 : 0]).epsilon(1e-6));
    const Prepared p = preprocess(scan, o, offset);
    CHECK(p.coverage == Approx(1.0));
    // Without the extension the same reading covers 3 points fewer.
    resample_into(scan.energy_ev, scan.intensity, read_at, w, raw);
    CHECK(w.size() == o.grid.size - 3);
  }
  // Only by the offset: a scan that stops 0.5 eV short of the grid, read 0.3 eV up, stays partial.
  Spectrum short_scan = scan;
  short_scan.energy_ev.conservativeResize(n - 5);
  short_scan.intensity.conservativeResize(n - 5);
  CHECK(preprocess(short_scan, o, 0.3).coverage == Approx(0.98));  // 635-659.5 eV of 635-660
}

TEST_CASE("the session tracker keeps the start until enough confident estimates counted", "[session]") {
  SessionTrackerOptions o;
  o.window = 16;
  o.min_samples = 4;
  SessionOffsetTracker t(0.25, o);
  CHECK_FALSE(t.observe(confident(0.8, 0.6)));          // not confident
  CHECK_FALSE(t.observe(confident(0.8, 0.99, false)));  // outside the library
  for (int i = 0; i < 3; ++i) CHECK(t.observe(confident(0.8)));
  CHECK(t.tracked_ev() == 0.25);
  CHECK(t.observe(confident(0.8)));
  CHECK(t.tracked_ev() == Approx(0.8).margin(1e-12));
  const auto s = t.snapshot();
  CHECK(s.observed == 6);
  CHECK(s.counted == 4);
  CHECK(s.samples == 4);
}

TEST_CASE("the session tracker is the median of its window: outliers do not move it, a new session does", "[session]") {
  SessionTrackerOptions o;
  o.window = 9;
  o.min_samples = 5;
  SessionOffsetTracker t(0.0, o);
  for (double v : {0.58, 0.60, 0.62, 0.59, 0.61, 0.60, 1.9, -1.9}) t.observe(confident(v));
  CHECK(t.tracked_ev() == Approx(0.60).margin(1e-9));
  CHECK(t.snapshot().spread_ev < 0.05);
  // Outliers are bounded to +-max_abs_ev; a whole window of a new offset replaces the old.
  t.observe(confident(7.0));
  CHECK(t.tracked_ev() == Approx(0.60).margin(1e-9));
  for (int i = 0; i < 9; ++i) t.observe(confident(-0.4));
  CHECK(t.tracked_ev() == Approx(-0.4).margin(1e-9));
}

TEST_CASE("the session tracker's median and spread are those of its last window, as it rolls", "[session]") {
  // The tracker keeps its window sorted as values enter and leave; checked against the median and
  // the median absolute deviation of the last `window` values taken afresh, with repeated values.
  SessionTrackerOptions o;
  o.window = 7;
  o.min_samples = 1;
  SessionOffsetTracker t(0.0, o);
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> step(-6, 6);
  std::vector<double> seen;
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 == 0 ? 0.5 * (v[m - 1] + v[m]) : v[m];
  };
  for (int i = 0; i < 60; ++i) {
    const double v = 0.05 * step(rng);  // a coarse set of values, so that many repeat
    seen.push_back(v);
    REQUIRE(t.observe(confident(v)));
    const std::size_t from = seen.size() > 7 ? seen.size() - 7 : 0;
    const std::vector<double> last(seen.begin() + static_cast<long>(from), seen.end());
    const double m = median(last);
    std::vector<double> deviations;
    for (const double x : last) deviations.push_back(std::abs(x - m));
    INFO("after " << i + 1 << " values");
    CHECK(t.tracked_ev() == Approx(m).margin(1e-12));
    CHECK(t.snapshot().spread_ev == Approx(1.4826 * median(deviations)).margin(1e-12));
    CHECK(t.snapshot().samples == static_cast<int>(last.size()));
  }
}

namespace {

// Two lines, an "L3" and an "L2" 11 eV above it, of width w, at `offset_ev` above where `kind`
// puts them: kind 0 at 641 eV with 2:1 intensities, kind 1 1.5 eV higher with 1:1 (a charge state
// whose lines sit higher and whose shape differs). The grid is 635-660 eV.
Spectrum two_kinds(int kind, double width, double offset_ev, double lo = 628.0, double hi = 667.0) {
  const int n = static_cast<int>(std::round((hi - lo) / 0.05)) + 1;
  Spectrum s;
  s.energy_ev.resize(n);
  s.intensity.resize(n);
  const double l3 = (kind == 0 ? 641.0 : 642.5) + offset_ev, ratio = kind == 0 ? 0.5 : 1.0;
  for (int i = 0; i < n; ++i) {
    const double e = lo + 0.05 * i;
    s.energy_ev[i] = e;
    s.intensity[i] = 1.0 / (1.0 + std::pow((e - l3) / width, 2)) + ratio / (1.0 + std::pow((e - l3 - 11.0) / width, 2));
  }
  return s;
}

const Model& two_kind_model() {
  static const Model m = [] {
    Library lib;
    lib.parameters = {{"kind", true, {}}, {"width", false, {}}};
    for (int kind = 0; kind < 2; ++kind) {
      for (int w = 0; w <= 8; ++w) {
        const double width = 0.6 + 0.1 * w;
        lib.spectra.push_back(two_kinds(kind, width, 0.0));
        lib.values.push_back({static_cast<double>(kind), width});
        lib.labels.push_back("k" + std::to_string(kind) + "_w" + std::to_string(w));
      }
    }
    ModelOptions o;
    o.preprocess.grid = EnergyGrid::from_range(635, 660, 0.1);
    o.landmarks = 20;
    o.estimate_dims = 6;
    o.threads = 1;
    o.max_shift_ev = 0.5;
    o.shift_step_ev = 0.05;
    return Model::fit(lib, o);
  }();
  return m;
}

}  // namespace

TEST_CASE("the session offset search finds a spectrum beyond the per-spectrum search", "[session]") {
  const Model& m = two_kind_model();
  // Kind 0 measured 1.0 eV up: the per-spectrum search (+-0.5 eV) cannot reach it, and kind 1
  // 0.5 eV down puts its lines where kind 0's are.
  const Spectrum up = two_kinds(0, 1.0, 1.0);
  const Estimate plain = m.estimate(up, 0.0);
  const Estimate searched = estimate_over_offsets(m, up, 0.0, 1.0);
  CHECK(searched.values[0] == 0.0);
  CHECK(searched.confidence[0] >= 0.9);
  CHECK(searched.energy_shift_ev == Approx(1.0).margin(0.1));
  CHECK(searched.values[1] == Approx(1.0).margin(0.1));
  // Each class keeps its best distance over every offset tried, the start's included.
  REQUIRE(searched.class_distance2.size() == plain.class_distance2.size());
  for (std::size_t c = 0; c < plain.class_distance2.size(); ++c) {
    CHECK(searched.class_distance2[c] <= plain.class_distance2[c] + 1e-12);
  }
  // Not searched, the same spectrum is read as the other kind, 0.5 eV down, and matches worse.
  CHECK(plain.values[0] == 1.0);
  CHECK(plain.novelty > searched.novelty + 1.0);

  // Without a range it is the plain estimate on the session offset.
  const Estimate none = estimate_over_offsets(m, up, 0.4, 0.0);
  const Estimate at = m.estimate(up, 0.4);
  CHECK(none.class_probability == at.class_probability);
  CHECK(none.values == at.values);
  CHECK(none.energy_shift_ev == Approx(at.energy_shift_ev));

  // A spectrum the start refuses is refused for that reason, whatever another offset would cover.
  const Spectrum short_scan = two_kinds(0, 1.0, 0.0, 650.0, 660.0);
  try {
    (void)estimate_over_offsets(m, short_scan, 0.0, 1.0);
    FAIL("accepted");
  } catch (const PreprocessError& e) {
    CHECK(e.reason() == RejectReason::kTooLittleOverlap);
  }
}
