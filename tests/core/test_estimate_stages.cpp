// The estimator's stages on their own (core/include/xasmap/core/estimate_stages.hpp), each against
// answers worked out by hand.

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "xasmap/core/estimate_stages.hpp"

using namespace xasmap;
using namespace xasmap::stages;

TEST_CASE("candidate search: the net is wider on a partial window, and bounded by the library", "[stages]") {
  CHECK(candidate_spectra(true, 4, DistanceKind::kCorrelation) == 6);   // wanted + 2 on the whole grid
  CHECK(candidate_spectra(true, 4, DistanceKind::kEuclidean) == 6);
  CHECK(candidate_spectra(false, 4, DistanceKind::kCorrelation) == 8);  // twice on a partial window
  CHECK(candidate_spectra(false, 4, DistanceKind::kEuclidean) == 16);   // four times with the others
  CHECK(candidate_spectra(false, 4, DistanceKind::kWasserstein) == 16);
  CHECK(candidate_rows(6, 3, 1000) == 18);  // every shifted copy of each spectrum
  CHECK(candidate_rows(6, 3, 10) == 10);    // no more rows than the library holds
  CHECK(candidate_rows(0, 3, 10) == 1);     // at least one
}

TEST_CASE("ranking: a shifted copy pays the offset prior, and each spectrum counts once", "[stages]") {
  const double scale = shift_penalty_scale(0.5, 0.2, 0.05);
  CHECK(scale == Approx(2.0).epsilon(1e-12));
  CHECK(ranked_distance2(0.3, 0.1, scale) == Approx(0.09 + 0.04).epsilon(1e-12));
  CHECK(penalised_distance2(0.09, -0.1, scale) == Approx(0.13).epsilon(1e-12));  // the sign does not matter
  CHECK(shift_penalty_scale(0.5, 0.2, 0.0) == Approx(0.5 * 0.2 / 1e-9).epsilon(1e-12));  // no division by zero

  // Spectrum 7's closest copy is shifted 0.2 eV: with the prior it ranks behind spectrum 3's
  // unshifted copy, although its distance is smaller.
  std::vector<RankedCandidate> all;
  const auto add = [&](int spectrum, double distance, double shift) {
    RankedCandidate c;
    c.spectrum = spectrum;
    c.row = static_cast<int>(all.size());
    c.distance = distance;
    c.shift_ev = shift;
    c.ranked = ranked_distance2(distance, shift, scale);
    all.push_back(c);
  };
  add(7, 0.10, 0.20);  // 0.01 + 0.16 = 0.17
  add(3, 0.30, 0.00);  // 0.09
  add(7, 0.35, 0.00);  // 0.1225: spectrum 7's best-ranked copy
  add(5, 0.40, 0.05);  // 0.16 + 0.01 = 0.17, tied with row 0 (spectrum 7's worse copy)
  add(9, 0.41, 0.00);  // 0.1681
  std::vector<std::size_t> order, chosen;
  select_neighbors(all, 3, order, chosen);
  CHECK(chosen == std::vector<std::size_t>{1, 2, 4});
  select_neighbors(all, 10, order, chosen);  // more wanted than spectra: each spectrum once
  CHECK(chosen == std::vector<std::size_t>{1, 2, 4, 3});
  // A tie goes to the earlier candidate.
  all[3].ranked = all[4].ranked = 0.17;
  select_neighbors(all, 4, order, chosen);
  CHECK(chosen == std::vector<std::size_t>{1, 2, 3, 4});
  select_neighbors({}, 3, order, chosen);
  CHECK(chosen.empty());
}

TEST_CASE("novelty: the distance beyond the noise, in library spacings", "[stages]") {
  CHECK(novelty(0.34, 0.09, 1.0, 0.25) == Approx(2.0).epsilon(1e-12));  // sqrt(0.25) / 0.25
  CHECK(novelty(0.05, 0.09, 1.0, 0.25) == 0.0);                        // the noise explains it all
  CHECK(novelty(0.34, 0.09, 4.0, 0.25) == Approx(4.0).epsilon(1e-12)); // a quarter of the grid: x2
  // Weights: inverse distance beyond the noise, softened.
  CHECK(neighbor_weight(0.3, 0.09, 1.0, 0.01) == Approx(100.0).epsilon(1e-12));  // all noise: 1 / soft
  CHECK(neighbor_weight(0.5, 0.09, 1.0, 0.01) == Approx(1.0 / 0.41).epsilon(1e-12));
}

TEST_CASE("weighted mean and spread", "[stages]") {
  const std::vector<double> v{1, 2, 3}, w{1, 1, 2};
  const MeanSpread m = weighted_mean(v, w, 4.0);
  CHECK(m.mean == Approx(2.25).epsilon(1e-12));
  CHECK(m.spread == Approx(std::sqrt((1.5625 + 0.0625 + 2 * 0.5625) / 4.0)).epsilon(1e-12));
}

TEST_CASE("local-linear fit: exact on a plane, clamped one spacing beyond its neighbours", "[stages]") {
  LocalLinearFit fit;
  SECTION("values linear in two coordinates give the intercept at the query") {
    // Five neighbours around the query (offsets), values 1 + 2 x + 3 y, unequal weights.
    Eigen::MatrixXd offsets(5, 3);
    offsets << 0.1, 0.0, 0.01, -0.1, 0.05, 0.0, 0.0, -0.1, -0.01, 0.05, 0.1, 0.0, -0.05, -0.05, 0.0;
    std::vector<double> values, weights{1, 2, 1, 0.5, 3};
    for (Eigen::Index i = 0; i < offsets.rows(); ++i) values.push_back(1 + 2 * offsets(i, 0) + 3 * offsets(i, 1));
    REQUIRE(fit.fit(offsets, weights, 2));
    MeanSpread out;
    REQUIRE(fit.predict(values, 7.5, out));
    // The two leading directions span (x, y) only up to the small third coordinate.
    CHECK(out.mean == Approx(1.0).margin(2e-3));
    CHECK(out.spread < 5e-3);
    // The inverse-distance mean of the same neighbours is pulled off 1 by their uneven weights.
    CHECK(std::abs(weighted_mean(values, weights, 7.5).mean - 1.0) > 0.02);
  }
  SECTION("beyond the neighbours' range the estimate stops one spacing out") {
    // Neighbours at x = 1, 2, 3 (values x) seen from a query at x = -10: the line says -10; the
    // clamp allows 1 - (3 - 1) / 2 = 0.
    Eigen::MatrixXd offsets(3, 1);
    offsets << 11, 12, 13;
    const std::vector<double> values{1, 2, 3}, weights{1, 1, 1};
    REQUIRE(fit.fit(offsets, weights, 1));
    MeanSpread out;
    REQUIRE(fit.predict(values, 3.0, out));
    CHECK(out.mean == Approx(0.0).margin(1e-9));
    // Between them the line is exact.
    offsets << -1, 0, 1;
    REQUIRE(fit.fit(offsets, weights, 1));
    REQUIRE(fit.predict(values, 3.0, out));
    // (Up to the 1e-9 ridge on the normal equations.)
    CHECK(out.mean == Approx(2.0).epsilon(1e-7));
    CHECK(out.spread == Approx(0.0).margin(1e-7));
  }
  SECTION("scattered values leave a residual spread") {
    Eigen::MatrixXd offsets(4, 1);
    offsets << -1, 0, 1, 2;
    const std::vector<double> values{0, 1, 0, 1}, weights{1, 1, 1, 1};
    REQUIRE(fit.fit(offsets, weights, 1));
    MeanSpread out;
    REQUIRE(fit.predict(values, 4.0, out));
    // Least squares line through (-1,0),(0,1),(1,0),(2,1): slope 0.2, intercept 0.4; residuals
    // -0.2, 0.6, -0.6, 0.2: sum of squares 0.8, scaled by n / (n - 2) over the total weight.
    CHECK(out.mean == Approx(0.4).epsilon(1e-6));
    CHECK(out.spread == Approx(std::sqrt(0.8 / 4.0 * 4.0 / 2.0)).epsilon(1e-6));
  }
}

TEST_CASE("vote: the heaviest value wins, a tie goes to the smaller value", "[stages]") {
  std::vector<std::pair<double, double>> tally;
  Vote vote;
  REQUIRE(weighted_vote(std::vector<double>{3, 2, 3, 4}, std::vector<double>{1, 1.5, 1, 0.5}, 4.0, tally, vote));
  CHECK(vote.value == 3);
  CHECK(vote.share == Approx(0.5).epsilon(1e-12));
  REQUIRE(weighted_vote(std::vector<double>{4, 2}, std::vector<double>{1, 1}, 2.0, tally, vote));
  CHECK(vote.value == 2);
  CHECK(vote.share == Approx(0.5).epsilon(1e-12));
  CHECK_FALSE(weighted_vote(std::vector<double>{}, std::vector<double>{}, 0.0, tally, vote));
}

TEST_CASE("intervals: spread and library granularity add in quadrature, capped at half the span", "[stages]") {
  const IntervalWidths w{0.39, 0.58, 0.2};
  CHECK(interval_sigma(0.0, 0.1, 0.0, 0.0, w, 2.5) == Approx(0.039).epsilon(1e-12));
  CHECK(interval_sigma(0.03, 0.1, 0.0, 0.0, w, 2.5) == Approx(std::hypot(0.03, 0.039)).epsilon(1e-12));
  // Novelty 2 and noise 1 spacing widen it.
  const double g2 = 0.01 * (0.39 * 0.39 + 0.58 * 0.58 * 4 + 0.2 * 0.2);
  CHECK(interval_sigma(0.03, 0.1, 2.0, 1.0, w, 2.5) == Approx(std::sqrt(0.0009 + g2)).epsilon(1e-12));
  // A setting swept over two values (grid step = its span) is capped at half the span.
  CHECK(interval_sigma(0.0, 280.0, 3.0, 0.0, w, 280.0) == Approx(140.0).epsilon(1e-12));
  CHECK(interval_sigma(0.0, 0.1, 0.0, 0.0, w, std::numeric_limits<double>::quiet_NaN()) ==
        Approx(0.039).epsilon(1e-12));
}

TEST_CASE("class probabilities: a Boltzmann weighting of each class's best distance", "[stages]") {
  std::vector<double> p;
  // Temperature from the residual alone: T = r2 = best - noise2 = 1.
  const ProbabilityTemperature residual_only{0.0, 1.0, 0.0};
  const double inf = std::numeric_limits<double>::infinity();
  std::size_t chosen = class_probabilities(std::vector<double>{1.0 + 2.0 * std::log(2.0), 1.0, inf}, 0.0, 100, 0.1,
                                           residual_only, p);
  CHECK(chosen == 1);
  REQUIRE(p.size() == 3);
  CHECK(p[0] == Approx(1.0 / 3.0).epsilon(1e-12));
  CHECK(p[1] == Approx(2.0 / 3.0).epsilon(1e-12));
  CHECK(p[2] == 0.0);  // a class with no candidate
  // A tie: equal probabilities, the first class chosen.
  chosen = class_probabilities(std::vector<double>{2.0, 2.0}, 0.0, 100, 0.1, residual_only, p);
  CHECK(chosen == 0);
  CHECK(p[0] == Approx(0.5).epsilon(1e-12));
  // Noise per window point: T = 120 * 0.5 / 100 = 0.6; a difference of 1.2 is a factor e.
  chosen = class_probabilities(std::vector<double>{0.5, 1.7}, 0.5, 100, 0.1, {120.0, 0.0, 0.0}, p);
  CHECK(chosen == 0);
  CHECK(p[0] / p[1] == Approx(std::exp(1.0)).epsilon(1e-12));
  // Every class at the best distance with zero temperature stays finite (the floor of 1e-300).
  chosen = class_probabilities(std::vector<double>{0.0, 1.0}, 0.0, 100, 0.0, {0.0, 0.0, 0.0}, p);
  CHECK(p[0] == 1.0);
  CHECK(p[1] == 0.0);
}
