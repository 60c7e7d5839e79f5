#include "xasmap/core/estimate_stages.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace xasmap::stages {

std::size_t candidate_spectra(bool full_window, int wanted, DistanceKind distance) {
  const auto n = static_cast<std::size_t>(std::max(0, wanted));
  if (full_window) return n + 2;
  // Four times instead of twice gave the same validation, calibration and stream results at 1.5x
  // the cost with the correlation distance; twice cost the euclidean distance 14 points of charge
  // accuracy on the noisy library.
  const std::size_t net = distance == DistanceKind::kCorrelation ? 2 : 4;
  return net * n;
}

int candidate_rows(std::size_t spectra, std::size_t copies, std::int64_t library_rows) {
  const auto rows = static_cast<std::size_t>(std::max<std::int64_t>(0, library_rows));
  return std::max(1, static_cast<int>(std::min<std::size_t>(rows, spectra * copies)));
}

double shift_penalty_scale(double shift_penalty, double median_nn, double shift_step_ev) {
  return shift_penalty * median_nn / std::max(shift_step_ev, 1e-9);
}

void select_neighbors(std::span<const RankedCandidate> all, int wanted, std::vector<std::size_t>& order,
                      std::vector<std::size_t>& chosen) {
  order.resize(all.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  const auto later = [&](std::size_t a, std::size_t b) {
    return all[a].ranked > all[b].ranked || (all[a].ranked == all[b].ranked && a > b);
  };
  std::make_heap(order.begin(), order.end(), later);
  chosen.clear();
  for (auto end = order.end(); end != order.begin() && static_cast<int>(chosen.size()) < wanted; --end) {
    std::pop_heap(order.begin(), end, later);
    const std::size_t i = *(end - 1);
    // One row per library spectrum: the few kept so far are checked linearly.
    const bool taken =
        std::any_of(chosen.begin(), chosen.end(), [&](std::size_t c) { return all[c].spectrum == all[i].spectrum; });
    if (!taken) chosen.push_back(i);
  }
}

MeanSpread weighted_mean(std::span<const double> values, std::span<const double> weights, double total) {
  MeanSpread out;
  for (std::size_t i = 0; i < values.size(); ++i) out.mean += weights[i] * values[i];
  out.mean /= total;
  double var = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double d = values[i] - out.mean;
    var += weights[i] * d * d;
  }
  out.spread = std::sqrt(var / total);
  return out;
}

bool LocalLinearFit::fit(const Eigen::MatrixXd& offsets, std::span<const double> weights, int directions) {
  const Eigen::Index n = offsets.rows();
  const Eigen::Index dims = offsets.cols();
  directions_ = directions;
  sw_.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) sw_[i] = std::sqrt(weights[static_cast<std::size_t>(i)]);
  mean_row_ = offsets.colwise().mean();
  centred_ = offsets;
  centred_.rowwise() -= mean_row_;
  centred_.array().colwise() *= sw_.array();
  // The principal directions from the small n x n Gram matrix C C^T (n neighbours, n <= a few):
  // its eigenvectors w give the directions C^T w / sqrt(lambda) (the right singular vectors of C).
  gram_.resize(n, n);
  gram_.noalias() = centred_ * centred_.transpose();
  bool solved = false;
  if (n <= small_gram_.MaxRowsAtCompileTime) {
    small_gram_ = gram_;
    small_eig_.compute(small_gram_);
    solved = small_eig_.info() == Eigen::Success;
    eigenvalues_ = small_eig_.eigenvalues();
    eigenvectors_ = small_eig_.eigenvectors();
  } else {
    eig_.compute(gram_);
    solved = eig_.info() == Eigen::Success;
    eigenvalues_ = eig_.eigenvalues();
    eigenvectors_ = eig_.eigenvectors();
  }
  dirs_.resize(dims, directions);
  for (int j = 0; j < directions; ++j) {
    const Eigen::Index col = n - 1 - j;  // eigenvalues ascend
    const double lambda = eigenvalues_[col];
    if (lambda > 1e-300) {
      dirs_.col(j).noalias() = centred_.transpose() * eigenvectors_.col(col);
      dirs_.col(j) /= std::sqrt(lambda);
    } else {
      dirs_.col(j).setZero();
    }
  }
  u_.resize(n, directions);
  u_.noalias() = offsets * dirs_;
  a_.resize(n, directions + 1);
  for (Eigen::Index i = 0; i < n; ++i) {
    a_(i, 0) = sw_[i];
    a_.row(i).tail(directions) = sw_[i] * u_.row(i);
  }
  normal_.resize(directions + 1, directions + 1);
  normal_.noalias() = a_.transpose() * a_;
  normal_.diagonal().array() += 1e-9 * (a_.squaredNorm() + 1e-300);
  ldlt_.compute(normal_);
  return solved && ldlt_.info() == Eigen::Success;
}

bool LocalLinearFit::predict(std::span<const double> values, double total_weight, MeanSpread& out) {
  const auto n = static_cast<Eigen::Index>(values.size());
  v_.resize(n);
  for (Eigen::Index i = 0; i < n; ++i) v_[i] = sw_[i] * values[static_cast<std::size_t>(i)];
  rhs_.resize(directions_ + 1);
  rhs_.noalias() = a_.transpose() * v_;
  beta_.resize(directions_ + 1);
  beta_ = ldlt_.solve(rhs_);
  if (!beta_.allFinite()) return false;
  residual_ = v_;
  residual_.noalias() -= a_ * beta_;
  // Extrapolation is trusted for one neighbour spacing beyond the values the neighbours span, no
  // further: it fixes the ends of a parameter range without letting noise carry the estimate away.
  const auto [lo_it, hi_it] = std::minmax_element(values.begin(), values.end());
  const double lo = *lo_it, hi = *hi_it;
  const double spacing = (hi - lo) / static_cast<double>(values.size() - 1);
  out.mean = std::clamp(beta_[0], lo - spacing, hi + spacing);
  const auto used = values.size();
  out.spread = std::sqrt(residual_.squaredNorm() / total_weight * static_cast<double>(used) /
                         static_cast<double>(std::max<std::size_t>(1, used - static_cast<std::size_t>(directions_) - 1)));
  return true;
}

bool weighted_vote(std::span<const double> values, std::span<const double> weights, double total,
                   std::vector<std::pair<double, double>>& tally, Vote& out) {
  tally.clear();
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    const auto it = std::find_if(tally.begin(), tally.end(), [&](const auto& vw) { return vw.first == v; });
    if (it == tally.end()) {
      tally.emplace_back(v, weights[i]);
    } else {
      it->second += weights[i];
    }
  }
  if (tally.empty()) return false;
  auto best = tally.begin();
  for (auto it = tally.begin(); it != tally.end(); ++it) {
    if (it->second > best->second || (it->second == best->second && it->first < best->first)) best = it;
  }
  out.value = best->first;
  out.share = best->second / total;
  return true;
}

double interval_sigma(double spread, double grid_step, double novelty, double noise_spacings,
                      const IntervalWidths& w, double span) {
  const double u = spread, g = grid_step;
  double sigma = std::sqrt(u * u + g * g * (w.spacing * w.spacing + w.residual * w.residual * novelty * novelty +
                                            w.noise * w.noise * noise_spacings * noise_spacings));
  // An interval of half the span around any value in it already says "anywhere in the library".
  // (A setting swept over two values, e.g. 20 and 300 K, has a grid step as wide as its range,
  // and novelty would otherwise widen it far beyond.)
  if (std::isfinite(span) && span > 0.0) sigma = std::min(sigma, 0.5 * span);
  return sigma;
}

std::size_t class_probabilities(std::span<const double> class_distance2, double noise2, int window_points,
                                double median_nn, const ProbabilityTemperature& t,
                                std::vector<double>& probability) {
  const std::size_t nc = class_distance2.size();
  double best = std::numeric_limits<double>::infinity();
  for (const double d2 : class_distance2) best = std::min(best, d2);
  const double s2 = noise2 / std::max(1, window_points);
  const double r2 = std::max(0.0, best - noise2);
  const double m2 = median_nn * median_nn;
  const double temperature = std::max(t.noise * s2 + t.residual * r2 + t.spacing * m2, 1e-300);
  probability.assign(nc, 0.0);
  double sum = 0;
  for (std::size_t k = 0; k < nc; ++k) {
    const double d2 = class_distance2[k];
    probability[k] = std::isfinite(d2) ? std::exp(-(d2 - best) / (2.0 * temperature)) : 0.0;
    sum += probability[k];
  }
  std::size_t chosen = 0;
  for (std::size_t k = 0; k < nc; ++k) {
    probability[k] /= sum;
    if (probability[k] > probability[chosen]) chosen = k;
  }
  return chosen;
}

}  // namespace xasmap::stages
