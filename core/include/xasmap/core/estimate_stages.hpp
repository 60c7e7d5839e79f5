#pragma once
// The stages of Model::estimate_into(), each a function of plain numbers so that it can be tested
// on its own (tests/core/test_estimate_stages.cpp). In the order a spectrum meets them:
//
//   1. candidate search   candidate_spectra(), candidate_rows(): how wide a net to cast in the
//                         estimation embedding's kd-tree (the tree itself is the model's);
//   2. ranking            shift_penalty_scale(), ranked_distance2(), select_neighbors(): exact
//                         window distances, a prior against large energy offsets, one row (the
//                         best shifted copy) per library spectrum;
//   3. novelty            novelty(): the distance beyond the spectrum's own noise, in library
//                         spacings; it decides in_library and widens the intervals;
//   4. weights            neighbor_weight(): inverse noise-corrected distance;
//   5. local-linear fit   LocalLinearFit: continuous parameters on the whole grid;
//      or weighted mean   weighted_mean();
//   6. vote               weighted_vote(): categorical parameters;
//   7. intervals          interval_sigma(): the 68 % interval of a continuous parameter;
//   8. probabilities      class_probabilities(): the charge's probabilities from each class's best
//                         ranked distance.
//
// docs/estimation.md gives the reasoning and the calibration behind each. None of them allocates
// once its buffers have grown (the estimator runs allocation-free after its first call).

#include <Eigen/Core>
#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <cstddef>
#include <cmath>
#include <cstdint>
#include <algorithm>
#include <span>
#include <utility>
#include <vector>

#include "xasmap/core/distance.hpp"

namespace xasmap::stages {

// --- 1. Candidate search ---------------------------------------------------------------------

// How many library spectra's rows to ask the embedding for, to find `wanted` neighbours: on the
// whole grid the projection is exact, so two spectra of margin suffice; on a partial window it is
// approximate, and the net is twice as wide with the correlation distance and four times with the
// others, whose partial-window projections are rougher.
std::size_t candidate_spectra(bool full_window, int wanted, DistanceKind distance);

// The rows to ask for: `spectra` spectra times their `copies` shifted copies each, at most every
// row of the library and at least one.
int candidate_rows(std::size_t spectra, std::size_t copies, std::int64_t library_rows);

// --- 2. Shift-penalised ranking ---------------------------------------------------------------

// The prior against large energy offsets: a copy shifted by s eV ranks as if its distance were
// sqrt(d^2 + (scale s)^2), scale = shift_penalty * median neighbour distance / shift_step_ev.
double shift_penalty_scale(double shift_penalty, double median_nn, double shift_step_ev);
inline double penalised_distance2(double distance2, double shift_ev, double penalty_scale) {
  const double penalty = penalty_scale * shift_ev;
  return distance2 + penalty * penalty;
}
inline double ranked_distance2(double distance, double shift_ev, double penalty_scale) {
  return penalised_distance2(distance * distance, shift_ev, penalty_scale);
}

struct RankedCandidate {
  int spectrum = 0;   // library spectrum
  int row = 0;        // its row (a shifted copy) in the model
  double distance = 0, shift_ev = 0;
  double ranked = 0;  // ranked_distance2(distance, shift_ev, scale)
};

// The first `wanted` candidates in rank order, one per library spectrum (its best-ranked copy),
// ties in candidate order, as indices into `all`. `order` is a work buffer. Only the first few
// ranks are taken from a heap: the whole list is never sorted.
void select_neighbors(std::span<const RankedCandidate> all, int wanted, std::vector<std::size_t>& order,
                      std::vector<std::size_t>& chosen);

// --- 3. Novelty --------------------------------------------------------------------------------

// The distance of a squared feature distance `distance2` beyond what the spectrum's noise adds
// (`noise2`), on the whole grid's scale (`rescale`: grid points / window points for the Euclidean
// and derivative distances, else 1), in units of `spacing` (the library's median neighbour
// distance along the asked parameters). 0 when the noise explains it all.
inline double beyond_noise(double distance2, double noise2, double rescale) {
  return std::sqrt(std::max(0.0, rescale * (distance2 - noise2)));
}
inline double novelty(double distance2, double noise2, double rescale, double spacing) {
  return beyond_noise(distance2, noise2, rescale) / spacing;
}

// --- 4. Weights --------------------------------------------------------------------------------

// Inverse distance beyond the noise, softened by `soft` (1 % of the library's neighbour spacing)
// so that an exact match does not take every weight.
inline double neighbor_weight(double distance, double noise2, double rescale, double soft) {
  return 1.0 / (beyond_noise(distance * distance, noise2, rescale) + soft);
}

// --- 5. Local-linear fit, weighted mean ---------------------------------------------------------

struct MeanSpread {
  double mean = 0, spread = 0;  // weighted mean and weighted standard deviation
};
// Of `values` with `weights` (their sum `total`).
MeanSpread weighted_mean(std::span<const double> values, std::span<const double> weights, double total);

// Weighted least squares v = a + b . u over the neighbours, u their coordinates along the leading
// principal direction(s) of the neighbourhood, centred on the query. fit() builds the design once
// for every parameter; predict() solves it for one parameter's values.
class LocalLinearFit {
 public:
  // offsets: one row per neighbour, its coordinates minus the query's; `directions` principal
  // directions (at least 1, at most rows - 2). False when an eigen-solve or the factorisation
  // fails, in which case predict() must not be called.
  bool fit(const Eigen::MatrixXd& offsets, std::span<const double> weights, int directions);

  // The value at the query (the intercept), clamped to one neighbour spacing beyond the range
  // the values span, and the fit's residual spread; false when the solution is not finite.
  bool predict(std::span<const double> values, double total_weight, MeanSpread& out);

  int directions() const { return directions_; }

 private:
  int directions_ = 0;
  Eigen::MatrixXd centred_, u_, a_, normal_, gram_, dirs_, eigenvectors_;
  Eigen::RowVectorXd mean_row_;
  Eigen::VectorXd sw_, v_, rhs_, beta_, residual_, eigenvalues_;
  // Up to 32 neighbours the eigen-solver works in fixed-capacity storage: no allocation.
  using SmallMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, 0, 32, 32>;
  SmallMatrix small_gram_;
  Eigen::SelfAdjointEigenSolver<SmallMatrix> small_eig_;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig_;
  Eigen::LDLT<Eigen::MatrixXd> ldlt_;
};

// --- 6. Vote -------------------------------------------------------------------------------------

struct Vote {
  double value = 0;
  double share = 0;  // the winner's weight over `total`
};
// The weighted vote of `values`; a tie goes to the smaller value. False when there are none.
// `tally` is a work buffer.
bool weighted_vote(std::span<const double> values, std::span<const double> weights, double total,
                   std::vector<std::pair<double, double>>& tally, Vote& out);

// --- 7. Intervals --------------------------------------------------------------------------------

struct IntervalWidths {
  double spacing = 0.39, residual = 0.58, noise = 0.2;  // ModelOptions::interval_*
};
// The 68 % interval: sigma^2 = u^2 + g^2 (spacing^2 + residual^2 novelty^2 + noise^2
// noise_spacings^2), u the neighbours' spread, g the parameter's grid step; no wider than half the
// library's span of the parameter (when it has one).
double interval_sigma(double spread, double grid_step, double novelty, double noise_spacings,
                      const IntervalWidths& widths, double span);

// --- 8. Class probabilities ----------------------------------------------------------------------

struct ProbabilityTemperature {
  double noise = 120.0, residual = 0.46, spacing = 0.0;  // ModelOptions::probability_*
};
// P(c) proportional to exp(-(D2_c - D2_min) / 2T) over the classes' best ranked squared
// distances (infinite: probability 0), T = noise s2 + residual r2 + spacing m2, s2 the noise per
// window point, r2 what the best match leaves beyond the noise, m2 the squared median neighbour
// distance. Writes `probability` and returns the most probable class (the first on a tie).
std::size_t class_probabilities(std::span<const double> class_distance2, double noise2, int window_points,
                                double median_nn, const ProbabilityTemperature& t,
                                std::vector<double>& probability);

}  // namespace xasmap::stages
