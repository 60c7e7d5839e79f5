// Classical MDS, Landmark MDS and landmark Isomap on data with known answers.

#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "xasmap/core/embedding.hpp"

using namespace xasmap;

namespace {

Eigen::MatrixXd squared_distances(const Eigen::MatrixXd& x) {
  const Eigen::Index n = x.rows();
  Eigen::MatrixXd d2(n, n);
  for (Eigen::Index i = 0; i < n; ++i) {
    for (Eigen::Index j = 0; j < n; ++j) d2(i, j) = (x.row(i) - x.row(j)).squaredNorm();
  }
  return d2;
}

double correlation(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  const Eigen::VectorXd da = a.array() - a.mean();
  const Eigen::VectorXd db = b.array() - b.mean();
  return da.dot(db) / (da.norm() * db.norm());
}

FeatureSpace space_of(const FeatureMatrix& rows) {
  FeatureSpace s;
  s.rows = &rows;
  s.window = Window{0, static_cast<int>(rows.cols()) - 1};
  s.step_ev = 1.0;
  s.kind = DistanceKind::kEuclidean;
  s.prepare();
  return s;
}

}  // namespace

TEST_CASE("LMDS with every point a landmark equals classical MDS", "[core][embedding]") {
  std::mt19937_64 rng(3);
  std::normal_distribution<double> n01;
  Eigen::MatrixXd x(60, 5);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = n01(rng) * (1 + i % 5);
  const Eigen::MatrixXd d2 = squared_distances(x);
  const ClassicalMds exact = classical_mds(d2, 3);
  const LandmarkMds lmds = fit_landmark_mds(d2, 3);
  double worst = 0;
  for (Eigen::Index i = 0; i < x.rows(); ++i) {
    const Eigen::VectorXd y = lmds.project(d2.col(i));
    worst = std::max(worst, (y.transpose() - exact.coordinates.row(i)).cwiseAbs().maxCoeff());
  }
  CHECK(worst <= 1e-9);
  // Eigenvalues of -1/2 H D H for points with no noise: the variance along each axis times n.
  CHECK(exact.eigenvalues[0] > exact.eigenvalues[1]);
}

TEST_CASE("classical MDS matches the NumPy reference", "[core][embedding]") {
  // tests/data/mds_reference.csv is written by tests/core/mds_reference.py (NumPy's eigh); the
  // ctest 'mds_reference_script' checks that the script still reproduces the file.
  std::ifstream in(std::string(XASMAP_TEST_DATA_DIR) + "/mds_reference.csv");
  REQUIRE(in);
  std::string line;
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line[0] == 'x') continue;
    std::stringstream ss(line);
    std::vector<double> v;
    std::string field;
    while (std::getline(ss, field, ',')) v.push_back(std::stod(field));
    rows.push_back(v);
  }
  REQUIRE(rows.size() == 40);
  Eigen::MatrixXd x(40, 4), reference(40, 2);
  for (Eigen::Index i = 0; i < 40; ++i) {
    for (int j = 0; j < 4; ++j) x(i, j) = rows[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
    for (int j = 0; j < 2; ++j) reference(i, j) = rows[static_cast<std::size_t>(i)][static_cast<std::size_t>(4 + j)];
  }
  const ClassicalMds ours = classical_mds(squared_distances(x), 2);
  // The script fixes signs the same way (largest-magnitude component positive).
  CHECK((ours.coordinates - reference).cwiseAbs().maxCoeff() <= 1e-9);
}

TEST_CASE("landmark Isomap unrolls a Swiss roll but LMDS does not", "[core][embedding]") {
  // 2000 points on the Swiss roll of Tenenbaum et al. (2000): angle t in [1.5 pi, 4.5 pi].
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u01;
  const int n = 2000;
  FeatureMatrix points(n, 3);
  Eigen::VectorXd angle(n);
  for (int i = 0; i < n; ++i) {
    const double t = 1.5 * M_PI * (1 + 2 * u01(rng));
    angle[i] = t;
    points(i, 0) = static_cast<float>(t * std::cos(t));
    points(i, 1) = static_cast<float>(21 * u01(rng));
    points(i, 2) = static_cast<float>(t * std::sin(t));
  }
  const FeatureSpace space = space_of(points);
  const std::vector<int> landmarks = select_landmarks(space, 60, LandmarkChoice::kMaxMin, 5, 0);
  const LandmarkEmbedding iso = embed_landmark_isomap(space, landmarks, 10, 2, 0);
  const LandmarkEmbedding flat = embed_landmark_mds(space, landmarks, 2, 0);
  const auto best_r = [&](const Eigen::MatrixXf& c) {
    return std::max(std::abs(correlation(c.col(0).cast<double>(), angle)),
                    std::abs(correlation(c.col(1).cast<double>(), angle)));
  };
  const double r_iso = best_r(iso.coordinates);
  const double r_lmds = best_r(flat.coordinates);
  INFO("|r| isomap " << r_iso << ", lmds " << r_lmds);
  CHECK(r_iso >= 0.99);
  // Documented contrast: a linear (Euclidean) embedding folds the roll onto itself.
  CHECK(r_lmds < 0.9);
}

TEST_CASE("MaxMin landmarks spread out and random ones are distinct", "[core][embedding]") {
  FeatureMatrix line(101, 1);
  for (int i = 0; i <= 100; ++i) line(i, 0) = static_cast<float>(i);
  const FeatureSpace space = space_of(line);
  for (std::uint64_t seed : {1u, 2u, 3u, 4u}) {
    const std::vector<int> lm = select_landmarks(space, 3, LandmarkChoice::kMaxMin, seed, 1);
    // From any start, the farthest point of a segment is one of its ends...
    CHECK((lm[1] == 0 || lm[1] == 100));
    // ...and greedy farthest-first covers within twice the optimal radius (100/6 for 3 centres).
    int radius = 0;
    for (int i = 0; i <= 100; ++i) {
      int nearest = 1000;
      for (int l : lm) nearest = std::min(nearest, std::abs(i - l));
      radius = std::max(radius, nearest);
    }
    CHECK(radius <= 2 * 100 / 6 + 1);
  }
  std::vector<int> rnd = select_landmarks(space, 50, LandmarkChoice::kRandom, 9, 1);
  std::sort(rnd.begin(), rnd.end());
  CHECK(std::adjacent_find(rnd.begin(), rnd.end()) == rnd.end());
  CHECK_THROWS_AS(select_landmarks(space, 500, LandmarkChoice::kMaxMin, 1, 1), Error);
}

TEST_CASE("MDS refuses what it cannot do", "[core][embedding]") {
  const Eigen::MatrixXd collinear = squared_distances(Eigen::VectorXd::LinSpaced(10, 0, 9));
  CHECK_THROWS_WITH(classical_mds(collinear, 2), Catch::Contains("only 1 positive eigenvalues"));
  CHECK_THROWS_WITH(classical_mds(collinear, 20), Catch::Contains("need more than 20 points"));
}
