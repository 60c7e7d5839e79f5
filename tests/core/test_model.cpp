// The model on a synthetic library with known answers: Gaussian lines whose centre and width are
// the continuous parameters, and a categorical "kind" (one line, or a line with a satellite).

#include <catch2/catch.hpp>

#include <atomic>
#include <tuple>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <vector>

#include "xasmap/core/error.hpp"
#include "xasmap/core/distance.hpp"
#include "xasmap/core/model.hpp"

using namespace xasmap;

namespace {

Spectrum line_spectrum(double centre, double width, int kind, double lo = 630, double hi = 665,
                       double step = 0.05) {
  const auto n = static_cast<Eigen::Index>(std::round((hi - lo) / step)) + 1;
  Spectrum s;
  s.energy_ev = Eigen::VectorXd::LinSpaced(n, lo, lo + step * static_cast<double>(n - 1));
  s.intensity.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) {
    const double x = (s.energy_ev[i] - centre) / width;
    double v = std::exp(-0.5 * x * x);
    if (kind == 1) {
      const double y = (s.energy_ev[i] - centre - 4.0) / width;
      v += 0.6 * std::exp(-0.5 * y * y);
    }
    s.intensity[i] = v + 0.01;
  }
  return s;
}

Library synthetic_library() {
  Library lib;
  lib.parameters = {{"kind", true, {}}, {"centre", false, {}}, {"width", false, {}}};
  for (int kind = 0; kind < 2; ++kind) {
    for (int c = 0; c <= 20; ++c) {
      for (int w = 0; w <= 4; ++w) {
        const double centre = 640.0 + 0.5 * c, width = 0.8 + 0.2 * w;
        lib.spectra.push_back(line_spectrum(centre, width, kind));
        lib.values.push_back({static_cast<double>(kind), centre, width});
        lib.labels.push_back("k" + std::to_string(kind) + "_c" + std::to_string(c) + "_w" + std::to_string(w));
      }
    }
  }
  return lib;
}

ModelOptions options(EmbeddingKind method = EmbeddingKind::kLmds) {
  ModelOptions o;
  o.preprocess.grid = EnergyGrid::from_range(635, 660, 0.1);
  o.method = method;
  o.landmarks = 40;
  o.estimate_dims = 6;
  o.max_shift_ev = 0;  // no shifted copies
  o.threads = 2;
  return o;
}

const Model& model() {
  static const Model m = Model::fit(synthetic_library(), options());
  return m;
}

}  // namespace

TEST_CASE("a library spectrum projected out of sample lands on its own coordinates", "[core][model]") {
  const Library lib = synthetic_library();
  const Eigen::MatrixXd map = model().library_map();
  for (std::size_t i : {0ul, 37ul, 104ul, 209ul}) {
    const Estimate e = model().estimate(lib.spectra[i]);
    INFO(lib.labels[i]);
    CHECK((e.map.transpose() - map.row(static_cast<Eigen::Index>(i))).cwiseAbs().maxCoeff() <=
          1e-4 * std::max(1.0, map.cwiseAbs().maxCoeff()));
    CHECK(e.neighbors.front().label == lib.labels[i]);
    CHECK(e.neighbors.front().distance < 1e-3);
    CHECK(e.values[0] == lib.values[i][0]);
    CHECK(e.values[1] == Approx(lib.values[i][1]).margin(0.05));
  }
}

TEST_CASE("parameters between library points are interpolated", "[core][model]") {
  for (const auto& [kind, centre, width] : {std::tuple{0, 643.25, 1.1}, std::tuple{1, 646.75, 1.3},
                                            std::tuple{0, 648.1, 0.9}}) {
    const Estimate e = model().estimate(line_spectrum(centre, width, kind));
    INFO("kind " << kind << " centre " << centre << " width " << width);
    CHECK(e.values[0] == kind);
    CHECK(e.confidence[0] > 0.9);
    CHECK(std::isnan(e.uncertainty[0]));
    CHECK(e.values[1] == Approx(centre).margin(0.15));
    CHECK(e.values[2] == Approx(width).margin(0.1));
    CHECK(e.uncertainty[1] >= 0.0);
    CHECK(e.in_library);
  }
}

TEST_CASE("noise: a noisy library spectrum is not novel, a foreign shape is", "[core][model]") {
  std::mt19937_64 rng(4);
  std::normal_distribution<double> noise(0.0, 1.0 / 30.0);  // SNR 30 on a unit peak
  Spectrum s = line_spectrum(645.0, 1.2, 0);
  for (Eigen::Index i = 0; i < s.intensity.size(); ++i) s.intensity[i] += noise(rng);
  const Estimate noisy = model().estimate(s);
  CHECK(noisy.noise_sigma > 0);
  CHECK(noisy.values[1] == Approx(645.0).margin(0.25));
  CHECK(noisy.in_library);
  // Two equal lines 12 eV apart are no library shape.
  Spectrum foreign = line_spectrum(641.0, 0.8, 0);
  const Spectrum second = line_spectrum(653.0, 0.8, 0);
  foreign.intensity += second.intensity;
  const Estimate f = model().estimate(foreign);
  CHECK(f.novelty > model().options().novelty_threshold);
  CHECK_FALSE(f.in_library);
}

TEST_CASE("a spectrum on part of the grid is judged on that window", "[core][model]") {
  // 70% of the grid, with the line inside: compared on the overlap only.
  const Estimate e = model().estimate(line_spectrum(646.0, 1.0, 1, 638.0, 655.5, 0.07));
  CHECK(e.coverage == Approx(0.7).margin(0.02));
  CHECK(e.values[0] == 1);
  CHECK(e.values[1] == Approx(646.0).margin(0.25));
  // Too little overlap is refused with its reason.
  try {
    model().estimate(line_spectrum(646.0, 1.0, 0, 640.0, 648.0));
    FAIL("a 32% window was judged");
  } catch (const PreprocessError& err) {
    CHECK(err.reason() == RejectReason::kTooLittleOverlap);
    CHECK_THAT(
        err.what(),
        Catch::Contains(
            "the spectrum (640.0-648.0 eV) covers 32% of the library's grid 635.0-660.0 eV") &&
            Catch::Contains("at least 60%"));
  }
}

TEST_CASE("bad spectra are rejected with a precise reason", "[core][model]") {
  Spectrum nan = line_spectrum(645, 1, 0);
  nan.intensity[100] = std::numeric_limits<double>::quiet_NaN();
  Spectrum backwards = line_spectrum(645, 1, 0);
  std::swap(backwards.energy_ev[10], backwards.energy_ev[11]);
  Spectrum few;
  few.energy_ev = Eigen::VectorXd::LinSpaced(5, 640, 650);
  few.intensity = Eigen::VectorXd::Ones(5);
  Spectrum flat = line_spectrum(645, 1, 0);
  flat.intensity.setConstant(2.0);
  const std::vector<std::pair<Spectrum, RejectReason>> cases{
      {nan, RejectReason::kNonFinite},
      {backwards, RejectReason::kNonMonotonic},
      {few, RejectReason::kTooFewPoints},
      {flat, RejectReason::kFlat}};
  for (const auto& [s, reason] : cases) {
    try {
      model().estimate(s);
      FAIL("accepted");
    } catch (const PreprocessError& e) {
      CHECK(e.reason() == reason);
    }
  }
}

TEST_CASE("out of the library's domain: refused with the reason, not estimated", "[core][model]") {
  const auto reason_of = [](const Spectrum& s) -> std::pair<RejectReason, std::string> {
    try {
      model().estimate(s);
    } catch (const PreprocessError& e) {
      return {e.reason(), e.what()};
    }
    FAIL("estimated");
    return {};
  };
  std::mt19937_64 rng(9);
  std::normal_distribution<double> n01;
  SECTION("noise alone") {
    Spectrum s = line_spectrum(645, 1, 0);
    for (Eigen::Index i = 0; i < s.intensity.size(); ++i) s.intensity[i] = 1.0 + 0.1 * n01(rng);
    const auto [reason, text] = reason_of(s);
    CHECK(reason == RejectReason::kNoEdge);
    CHECK_THAT(text, Catch::Contains("times its noise"));
  }
  SECTION("a sloping background with a little noise") {
    Spectrum s = line_spectrum(645, 1, 0);
    for (Eigen::Index i = 0; i < s.intensity.size(); ++i) {
      s.intensity[i] = 0.3 + 0.001 * (s.energy_ev[i] - 630) + 0.002 * n01(rng);
    }
    CHECK(reason_of(s).first == RejectReason::kNoEdge);
  }
  SECTION("another element's edge: a scan over Fe L2,3 names it") {
    // Noiseless, so only the shape can refuse it: the window holds the rising tail of Fe L3.
    Spectrum s = line_spectrum(708.8, 0.5, 0, 630, 730);
    for (Eigen::Index i = 0; i < s.intensity.size(); ++i) {
      const double x3 = (s.energy_ev[i] - 708.8) / 0.5, x2 = (s.energy_ev[i] - 721.6) / 0.8;
      s.intensity[i] = 2.0 / (1 + x3 * x3) + 1.0 / (1 + x2 * x2);
    }
    const auto [reason, text] = reason_of(s);
    CHECK(reason == RejectReason::kNoEdge);
    CHECK_THAT(text, Catch::Contains("708.8 eV") && Catch::Contains("Fe L3 (706.8 eV)"));
  }
  SECTION("a scan wholly on another element's edge names that edge, energies to 0.1 eV") {
    Spectrum s = line_spectrum(708.8, 0.5, 0, 700, 747);
    for (Eigen::Index i = 0; i < s.intensity.size(); ++i) {
      const double x3 = (s.energy_ev[i] - 708.8) / 0.5, x2 = (s.energy_ev[i] - 721.6) / 0.8;
      s.intensity[i] = 2.0 / (1 + x3 * x3) + 1.0 / (1 + x2 * x2);
    }
    const auto [reason, text] = reason_of(s);
    CHECK(reason == RejectReason::kTooLittleOverlap);
    CHECK_THAT(text,
               Catch::StartsWith("the spectrum (700.0-747.0 eV) covers 0% of the library's grid"));
    CHECK_THAT(text, Catch::Contains("strongest peak lies at 708.8 eV, near Fe L3 (706.8 eV)"));
    CHECK_THAT(text, !Catch::Contains("000000"));
  }
  SECTION("energies in keV") {
    Spectrum s = line_spectrum(645, 1, 0);
    s.energy_ev /= 1000.0;
    const auto [reason, text] = reason_of(s);
    CHECK(reason == RejectReason::kEnergyUnit);
    CHECK_THAT(text, Catch::Contains("look like keV"));
  }
  SECTION("a real edge at SNR 10 on part of the grid still passes") {
    Spectrum s = line_spectrum(646.0, 1.0, 1, 638.0, 655.5, 0.07);
    for (Eigen::Index i = 0; i < s.intensity.size(); ++i) s.intensity[i] += 0.1 * n01(rng);
    CHECK_NOTHROW(model().estimate(s));
  }
  CHECK(nearest_edge(641.0) == "Mn L3 (638.7 eV)");
  CHECK(nearest_edge(540.0) == "O K (543.1 eV)");
  CHECK(nearest_edge(1200.0).empty());
}

TEST_CASE("every method and distance fits and estimates", "[core][model]") {
  const Library lib = synthetic_library();
  const Spectrum probe = line_spectrum(644.25, 1.1, 1);
  for (EmbeddingKind method : {EmbeddingKind::kMds, EmbeddingKind::kLmds, EmbeddingKind::kIsomap}) {
    for (DistanceKind distance : {DistanceKind::kEuclidean, DistanceKind::kCorrelation,
                                  DistanceKind::kDerivative, DistanceKind::kWasserstein}) {
      ModelOptions o = options(method);
      o.distance = distance;
      o.isomap_neighbors = 10;
      INFO(to_string(method) << " / " << to_string(distance));
      const Model m = Model::fit(lib, o);
      const Estimate e = m.estimate(probe);
      CHECK(e.values[0] == 1);
      CHECK(e.values[1] == Approx(644.25).margin(0.3));
      CHECK(e.map.size() == 2);
    }
  }
}

TEST_CASE("shifted copies estimate a calibration offset", "[core][model]") {
  ModelOptions o = options();
  o.max_shift_ev = 0.5;
  o.shift_step_ev = 0.05;
  const Model m = Model::fit(synthetic_library(), o);
  CHECK(m.rows() == 21 * static_cast<std::int64_t>(m.library_size()));
  // A two-line spectrum whose lines both sit 0.3 eV high: the pair's shape fixes the offset.
  Spectrum s = line_spectrum(645.3, 1.0, 1);
  const Estimate e = m.estimate(s);
  CHECK(e.values[0] == 1);
  CHECK(e.energy_shift_ev + e.values[1] == Approx(645.3).margin(0.15));
}

TEST_CASE("model files round-trip and refuse what is not theirs", "[core][model]") {
  const auto dir = std::filesystem::temp_directory_path();
  const auto file = dir / "xasmap_test_model.xasm";
  model().save(file);
  const Model loaded = Model::load(file);
  const Spectrum probe = line_spectrum(647.3, 1.2, 0);
  const Estimate a = model().estimate(probe);
  const Estimate b = loaded.estimate(probe);
  CHECK(a.values == b.values);
  CHECK((a.coordinates - b.coordinates).cwiseAbs().maxCoeff() == 0.0);
  CHECK(loaded.labels() == model().labels());
  CHECK(loaded.parameters() == model().parameters());
  // A loaded model knows its file's payload checksum (its provenance); a fitted one has none.
  CHECK(loaded.file_checksum() == Model::check_file(file).checksum);
  CHECK_FALSE(model().file_checksum().has_value());

  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto write = [&](const std::string& name, const std::string& content) {
    const auto path = dir / name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  };
  std::string other_version = bytes;
  other_version[8] = 7;  // format version 7
  CHECK_THROWS_WITH(Model::load(write("xasmap_v7.xasm", other_version)),
                    Catch::Contains("format version 7") && Catch::Contains("refit it"));
  CHECK_THROWS_WITH(Model::load(write("xasmap_cut.xasm", bytes.substr(0, bytes.size() / 2))),
                    Catch::Contains("truncated model file"));
  std::string flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x5A);
  CHECK_THROWS_WITH(Model::load(write("xasmap_flip.xasm", flipped)),
                    Catch::Contains("corrupt model file (checksum mismatch)"));
  CHECK_THROWS_WITH(Model::load(write("xasmap_text.xasm", "library: {}\n")),
                    Catch::Contains("not an xasmap model file"));
  CHECK_THROWS_WITH(Model::load(dir / "xasmap_no_such.xasm"), Catch::Contains("cannot read"));
  for (const char* name : {"xasmap_test_model.xasm", "xasmap_v7.xasm", "xasmap_cut.xasm",
                           "xasmap_flip.xasm", "xasmap_text.xasm"}) {
    std::filesystem::remove(dir / name);
  }
}

TEST_CASE("libraries load from a folder with a manifest", "[core][library]") {
  const auto dir = std::filesystem::temp_directory_path() / "xasmap_test_library";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream manifest(dir / "manifest.csv");
  manifest << "file,charge,tendq,site\n";
  for (int i = 0; i < 3; ++i) {
    const Spectrum s = line_spectrum(642 + i, 1, 0);
    std::ofstream f(dir / ("s" + std::to_string(i) + ".xy"));
    f << "# written by the test\n";
    for (Eigen::Index k = 0; k < s.energy_ev.size(); ++k) f << s.energy_ev[k] << "  " << s.intensity[k] << "\n";
    manifest << "s" << i << ".xy," << 2 + i << "," << 0.5 * i << "," << (i == 1 ? "Td" : "Oh") << "\n";
  }
  manifest.close();
  const Library lib = load_library(dir);
  REQUIRE(lib.size() == 3);
  CHECK(lib.parameters[0].categorical);        // charge
  CHECK_FALSE(lib.parameters[1].categorical);  // tendq
  CHECK(lib.parameters[2].categorical);        // text values
  CHECK(lib.parameters[2].category_names == std::vector<std::string>{"Oh", "Td"});
  CHECK(lib.values[1] == std::vector<double>{3, 0.5, 1});
  CHECK(lib.labels[2] == "s2");
  std::ofstream(dir / "manifest.csv", std::ios::app) << "missing.csv,5,1.0,Oh\n";
  CHECK_THROWS_WITH(load_library(dir), Catch::Contains("manifest.csv:5") && Catch::Contains("missing.csv"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("distance2 and dot_pair agree with double-precision sums on every window length", "[model]") {
  // Both sum sixteen lanes at a time and the rest one by one: windows of every length 1-80 and
  // starting points that leave the lanes unaligned, against sums taken in double one by one.
  std::mt19937_64 rng(3);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> a(120), b(120), c(120);
  for (std::size_t i = 0; i < a.size(); ++i) {
    a[i] = g(rng);
    b[i] = g(rng);
    c[i] = g(rng);
  }
  for (int first = 0; first < 5; ++first) {
    for (int n = 1; n <= 80; ++n) {
      const Window w{first, first + n - 1};
      double squares = 0, absolute = 0, ab = 0, ac = 0, scale = 0;
      for (int i = w.first; i <= w.last; ++i) {
        const double d = static_cast<double>(a[i]) - b[i];
        squares += d * d;
        absolute += std::abs(d);
        ab += static_cast<double>(a[i]) * b[i];
        ac += static_cast<double>(a[i]) * c[i];
        scale += std::abs(static_cast<double>(a[i]) * b[i]) + std::abs(static_cast<double>(a[i]) * c[i]);
      }
      INFO("window " << w.first << "-" << w.last);
      CHECK(distance2(a.data(), b.data(), w, 0.1, DistanceKind::kEuclidean) == Approx(squares).epsilon(1e-5));
      CHECK(distance2(a.data(), b.data(), w, 0.1, DistanceKind::kWasserstein) ==
            Approx(absolute * 0.1 * absolute * 0.1).epsilon(1e-5));
      const DotPair dots = dot_pair(a.data() + first, b.data() + first, c.data() + first, n);
      // Against the sum of magnitudes: a dot product near 0 has no relative precision of its own.
      CHECK(std::abs(dots.x - ab) <= 1e-6 * scale);
      CHECK(std::abs(dots.y - ac) <= 1e-6 * scale);
    }
  }
}

TEST_CASE("the windowed correlation distance equals processing the row on the window", "[model]") {
  // Rows with a peak, a slope and an offset; windows of every kind of overlap; every background and
  // normalisation the shortcut covers, compared with apply_window() + transform() + distance2().
  PreprocessOptions o;
  o.grid = EnergyGrid::from_range(635.0, 660.0, 0.1);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const auto random_row = [&] {
    RowVectorXf r(o.grid.size);
    const double centre = 640 + 10 * u(rng), width = 0.5 + u(rng), slope = 0.02 * (u(rng) - 0.5);
    for (int i = 0; i < o.grid.size; ++i) {
      const double e = o.grid.at(i);
      r[i] = static_cast<float>(std::exp(-0.5 * std::pow((e - centre) / width, 2)) + 0.3 * u(rng) * 0.1 +
                                slope * (e - 635) + 0.2);
    }
    return r;
  };
  int compared = 0;
  for (const auto background : {BackgroundKind::kPrePostLine, BackgroundKind::kNone}) {
    for (const auto normalize : {NormalizationKind::kArea, NormalizationKind::kMax, NormalizationKind::kEdgeStep,
                                 NormalizationKind::kNone}) {
      o.background = background;
      o.normalize = normalize;
      for (int trial = 0; trial < 20; ++trial) {
        Window w;
        w.first = static_cast<int>(u(rng) * 60);
        w.last = o.grid.size - 1 - static_cast<int>(u(rng) * 60);
        const RowVectorXf row = random_row();
        const RowVectorXf query = random_row();
        RowVectorXf zq, zr;
        try {
          zq = transform(apply_window(query, w, o), w, o.grid.step_ev, DistanceKind::kCorrelation);
          zr = transform(apply_window(row, w, o), w, o.grid.step_ev, DistanceKind::kCorrelation);
        } catch (const PreprocessError&) {
          continue;  // nothing to normalise: the shortcut refuses those too
        }
        const double slow = distance2(zq.data(), zr.data(), w, o.grid.step_ev, DistanceKind::kCorrelation);
        const auto fast = windowed_correlation_distance2(zq.data(), row.data(), w, o);
        REQUIRE(fast.has_value());
        CHECK(*fast == Approx(slow).margin(2e-5));
        ++compared;
      }
    }
  }
  CHECK(compared >= 100);
  // Smoothing and the edge-step background are outside the shortcut.
  o.smooth_fwhm_ev = 0.3;
  const RowVectorXf row = random_row();
  CHECK_FALSE(windowed_correlation_distance2(row.data(), row.data(), Window{10, 200}, o).has_value());
}

TEST_CASE("partial windows: cached row terms give what a fresh computation gives", "[core][model]") {
  // Two models (the second with another landmark count, so different landmarks and rows are
  // touched) and two windows, interleaved: each estimate must equal the same estimate made first,
  // when nothing was cached for its model and window yet.
  const Model& a = model();
  ModelOptions o = options();
  o.landmarks = 25;
  const Model b = Model::fit(synthetic_library(), o);
  const Spectrum one = line_spectrum(646.0, 1.0, 1, 638.0, 655.5, 0.07);
  const Spectrum two = line_spectrum(643.5, 1.2, 0, 641.0, 658.0, 0.1);
  const Estimate a1 = a.estimate(one), b1 = b.estimate(one), a2 = a.estimate(two), b2 = b.estimate(two);
  for (int round = 0; round < 3; ++round) {
    for (const auto& [m, s, first] : {std::tuple{&a, &one, &a1}, std::tuple{&b, &two, &b2},
                                      std::tuple{&a, &two, &a2}, std::tuple{&b, &one, &b1}}) {
      const Estimate again = m->estimate(*s);
      CHECK(again.values == first->values);
      CHECK(again.coordinates == first->coordinates);
      REQUIRE(again.neighbors.size() == first->neighbors.size());
      for (std::size_t i = 0; i < again.neighbors.size(); ++i) {
        CHECK(again.neighbors[i].label == first->neighbors[i].label);
        CHECK(again.neighbors[i].distance == first->neighbors[i].distance);
      }
    }
  }
  // And right: the windowed distance itself is checked against the long way above.
  CHECK(a1.values[0] == 1);
  CHECK(a1.values[1] == Approx(646.0).margin(0.3));
}

TEST_CASE("a fit asked to stop gives up with FitCancelled at its next check", "[core][model][cancel]") {
  const Library lib = synthetic_library();
  // The checks a whole fit makes (between stages and inside its loops, from both threads).
  std::atomic<int> checks{0};
  const Model whole = Model::fit(lib, options(), nullptr, [&] {
    ++checks;
    return false;
  });
  const int total = checks.load();
  CHECK(whole.library_size() == lib.spectra.size());
  REQUIRE(total > 6);  // at least one a stage
  // Cancelled at the first, a middle or the last check: each time the fit throws, never returns.
  for (const int answered_false : {0, 1, total / 2, total - 1}) {
    INFO("cancelled after " << answered_false << " of " << total << " checks");
    std::atomic<int> calls{0};
    CHECK_THROWS_AS(Model::fit(lib, options(), nullptr, [&] { return ++calls > answered_false; }),
                    FitCancelled);
  }
}

TEST_CASE("an interval is never wider than the library's range of its parameter", "[core][model]") {
  // "setting" takes two values whose spectra are identical: nothing in a spectrum tells them apart.
  Library lib;
  lib.parameters = {{"centre", false, {}}, {"setting", false, {}}};
  for (int c = 0; c <= 20; ++c) {
    for (const double setting : {20.0, 300.0}) {
      lib.spectra.push_back(line_spectrum(640.0 + 0.5 * c, 1.2, 0));
      lib.values.push_back({640.0 + 0.5 * c, setting});
      lib.labels.push_back("c" + std::to_string(c) + "_s" + std::to_string(static_cast<int>(setting)));
    }
  }
  ModelOptions o = options();
  o.landmarks = 16;  // 21 distinct spectra
  const Model m = Model::fit(lib, o);
  // A spectrum between the library's centres and broader than its lines.
  const Estimate e = m.estimate(line_spectrum(645.25, 2.5, 0));
  REQUIRE(e.values.size() == 2);
  // The setting's interval, widened by its grid step (280, as wide as the range) and the novelty,
  // would exceed half the range; it stops there, which spans the library's settings from the middle.
  const double r = m.options().interval_residual;
  CHECK(e.grid_step[1] == Approx(280.0));
  CHECK(e.spread[1] * e.spread[1] + e.grid_step[1] * e.grid_step[1] * r * r * e.novelty * e.novelty > 140.0 * 140.0);
  CHECK(e.uncertainty[1] == Approx(140.0).epsilon(1e-12));
  // The centre's interval is set by its neighbours, far inside its range of 10 eV.
  CHECK(e.uncertainty[0] < 2.0);
}
