#include "xasmap/core/session_offset.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <limits>
#include <optional>

#include "xasmap/core/error.hpp"

namespace xasmap {

OffsetCalibration calibrate_offset(const Model& model, const Spectrum& reference, double charge_value,
                                   double range_ev, double step_ev) {
  if (!(step_ev > 0.0) || !(range_ev >= 0.0)) throw Error("calibrate: the offset range and step must be positive");
  const int steps = static_cast<int>(std::floor(range_ev / step_ev + 1e-9));
  OffsetCalibration best;
  best.distance2 = std::numeric_limits<double>::infinity();
  std::optional<PreprocessError> first_failure;
  int best_k = 0;
  for (int k = -steps; k <= steps; ++k) {
    const double offset = k * step_ev;
    Estimate e;
    try {
      e = model.estimate(reference, offset);
    } catch (const PreprocessError& err) {
      if (k == 0 || !first_failure) first_failure = err;
      continue;
    }
    if (e.class_parameter < 0) throw Error("calibrate: the model has no categorical parameter (charge) to calibrate on");
    const auto it = std::find(e.class_values.begin(), e.class_values.end(), charge_value);
    if (it == e.class_values.end()) {
      char text[64];
      std::snprintf(text, sizeof text, "%g", charge_value);
      throw Error(std::string("calibrate: the library holds no spectrum of charge ") + text);
    }
    const auto c = static_cast<std::size_t>(it - e.class_values.begin());
    best.profile.emplace_back(offset, e.class_distance2[c]);
    if (e.class_distance2[c] < best.distance2) {
      best.distance2 = e.class_distance2[c];
      best.offset_ev = offset;
      best.probability = e.class_probability[c];
      best.estimate = std::move(e);
      best_k = k;
    }
  }
  if (best.profile.empty()) throw *first_failure;
  // A parabola through the minimum and its two neighbours, when both were judged.
  const auto at = [&](int k) -> std::optional<double> {
    const double x = k * step_ev;
    for (const auto& [o, d] : best.profile) {
      if (std::abs(o - x) < 1e-9) return d;
    }
    return std::nullopt;
  };
  const auto lo = at(best_k - 1), hi = at(best_k + 1);
  if (lo && hi) {
    const double curvature = *lo - 2.0 * best.distance2 + *hi;
    if (curvature > 0.0) {
      best.offset_ev += std::clamp(0.5 * (*lo - *hi) / curvature, -0.5, 0.5) * step_ev;
    }
  }
  return best;
}

namespace {

// The squared distance of an estimate's best match (with its shift prior): the smallest class
// distance, or without a class parameter the nearest neighbour's.
double best_distance2(const Estimate& e) {
  double best = std::numeric_limits<double>::infinity();
  for (const double d2 : e.class_distance2) best = std::min(best, d2);
  if (e.class_distance2.empty() && !e.neighbors.empty()) best = e.neighbors.front().distance * e.neighbors.front().distance;
  return best;
}

// The session offsets searched: centre_ev, then outwards in steps of max_shift_ev within
// +-range_ev (the centre first, so ties keep the offset nearer it). The j-th of count() is
// step(j) steps from the centre (step(0) = 0).
struct SearchedOffsets {
  double centre = 0, spacing = 0;
  int reach = 0;
  SearchedOffsets(const Model& model, double centre_ev, double range_ev)
      : centre(centre_ev), spacing(model.options().max_shift_ev) {
    reach = spacing > 0.0 && range_ev > 0.0 ? static_cast<int>(std::floor(range_ev / spacing + 1e-9)) : 0;
  }
  int count() const { return 2 * reach + 1; }
  static int step(int j) { return (j % 2 == 1 ? 1 : -1) * ((j + 1) / 2); }
  double at(int j) const { return centre + step(j) * spacing; }
};

}  // namespace

void estimate_over_offsets(const Model& model, const Eigen::Ref<const Eigen::VectorXd>& energy_ev,
                           const Eigen::Ref<const Eigen::VectorXd>& intensity, double centre_ev, double range_ev,
                           OffsetSearchScratch& scratch, Estimate& out) {
  const SearchedOffsets offsets(model, centre_ev, range_ev);
  // Every offset is tried on the embedding's candidates alone: a part-range spectrum read 1 eV
  // from where it lies matches nothing, which would send each such try to the exact ranking of
  // partial windows (about 1 ms on the default library). The offset kept, and the centre, are
  // estimated again below with it, as any spectrum is.
  const bool searching = offsets.reach > 0;
  // Each class's best distance over every estimate made (the centre's first).
  const auto keep_class_distances = [&](const Estimate& e) {
    for (std::size_t c = 0; c < scratch.class_distance2.size() && c < e.class_distance2.size(); ++c) {
      scratch.class_distance2[c] = std::min(scratch.class_distance2[c], e.class_distance2[c]);
    }
  };
  double kept_best = std::numeric_limits<double>::infinity(), kept_offset = centre_ev, centre_coverage = 1.0;
  for (int j = 0; j < offsets.count(); ++j) {
    const int k = SearchedOffsets::step(j);
    const double offset = offsets.at(j);
    Estimate& e = k == 0 ? out : scratch.trial;
    try {
      preprocess_into(energy_ev, intensity, model.options().preprocess, scratch.prepared, offset);
      model.estimate_into(scratch.prepared, e, !searching);
    } catch (const PreprocessError& err) {
      // A spectrum that cannot be judged where the session is assumed (too little of the grid,
      // no edge) is refused for that reason: another offset, whose extended ends would cover
      // more of the grid, does not make it judgeable.
      if (k == 0) throw;
      continue;
    }
    e.energy_shift_ev += offset;
    const double best = best_distance2(e);
    if (k == 0) {  // always judged, or thrown above
      centre_coverage = e.coverage;
      kept_best = best;
      scratch.class_distance2.assign(e.class_distance2.begin(), e.class_distance2.end());
      continue;
    }
    keep_class_distances(e);
    if (best < kept_best) {
      kept_best = best;
      kept_offset = offset;
      std::swap(out, scratch.trial);
    }
  }
  if (!searching) return;
  // The offset kept and the centre, estimated as any spectrum is (with the exact ranking of a
  // partial window that the embedding misplaces: without it, a part-range spectrum misplaced at
  // its own offset can lose to another), the nearer of the two kept; their class distances join
  // the others'. (On the whole grid the tries were exact already.)
  const auto exactly = [&](double offset, Estimate& e) {
    preprocess_into(energy_ev, intensity, model.options().preprocess, scratch.prepared, offset);
    model.estimate_into(scratch.prepared, e);
    e.energy_shift_ev += offset;
    keep_class_distances(e);
  };
  if (out.coverage < 1.0) exactly(kept_offset, out);
  if (kept_offset != centre_ev && centre_coverage < 1.0) {  // judged in the loop, so judged again
    exactly(centre_ev, scratch.trial);
    if (best_distance2(scratch.trial) < best_distance2(out)) std::swap(out, scratch.trial);
  }
  // Every estimate made has been kept in scratch.class_distance2, the one in `out` too.
  if (out.class_distance2.size() == scratch.class_distance2.size()) {
    out.class_distance2.assign(scratch.class_distance2.begin(), scratch.class_distance2.end());
    model.class_probabilities(out);
  }
}

Estimate estimate_over_offsets(const Model& model, const Spectrum& spectrum, double centre_ev, double range_ev) {
  OffsetSearchScratch scratch;
  Estimate e;
  estimate_over_offsets(model, spectrum.energy_ev, spectrum.intensity, centre_ev, range_ev, scratch, e);
  return e;
}

double stack_offset_ev(const Model& model, const Eigen::Ref<const Eigen::VectorXd>& energy_ev, std::size_t pixels,
                       const std::function<void(std::size_t, Eigen::VectorXd&)>& pixel, double centre_ev,
                       double range_ev, double min_confidence) {
  if (range_ev <= 0.0 || pixels == 0) return centre_ev;
  constexpr std::size_t kSampled = 16;
  const std::size_t sampled = std::min(kSampled, pixels);
  OffsetSearchScratch scratch;
  Estimate e;
  Eigen::VectorXd intensity(energy_ev.size());
  std::vector<double> found;
  for (std::size_t k = 0; k < sampled; ++k) {
    pixel((2 * k + 1) * pixels / (2 * sampled), intensity);
    try {
      estimate_over_offsets(model, energy_ev, intensity, centre_ev, range_ev, scratch, e);
    } catch (const PreprocessError&) {
      continue;  // the pixel's own estimate will say why
    }
    const double p = e.class_probability.empty()
                         ? 1.0
                         : *std::max_element(e.class_probability.begin(), e.class_probability.end());
    if (e.in_library && p >= min_confidence) found.push_back(e.energy_shift_ev);
  }
  if (found.size() < 3) return centre_ev;
  const auto mid = found.begin() + static_cast<std::ptrdiff_t>(found.size() / 2);
  std::nth_element(found.begin(), mid, found.end());
  return *mid;
}

Mixture mixture_over_offsets(const Model& model, const Eigen::Ref<const Eigen::VectorXd>& energy_ev,
                             const Eigen::Ref<const Eigen::VectorXd>& intensity, double centre_ev, double range_ev,
                             const Estimate& estimate, const MixtureOptions& options, Prepared& scratch) {
  const SearchedOffsets offsets(model, centre_ev, range_ev);
  Mixture best;
  bool found = false;
  for (int j = 0; j < offsets.count(); ++j) {
    try {
      preprocess_into(energy_ev, intensity, model.options().preprocess, scratch, offsets.at(j));
    } catch (const PreprocessError&) {
      if (j == 0) throw;
      continue;
    }
    Mixture m = model.mixture(scratch, estimate, options);
    if (!found || m.rss_mixture < best.rss_mixture) {
      m.shift_ev += offsets.at(j);  // the whole offset
      best = std::move(m);
      found = true;
    }
  }
  return best;
}

SessionOffsetTracker::SessionOffsetTracker(double start_ev, SessionTrackerOptions options)
    : options_(options), start_ev_(start_ev), tracked_ev_(start_ev) {
  options_.window = std::max(1, options_.window);
  options_.min_samples = std::clamp(options_.min_samples, 1, options_.window);
  window_.reserve(static_cast<std::size_t>(options_.window));
  sorted_.reserve(static_cast<std::size_t>(options_.window));
}

namespace {

// The median of sorted values (the mean of the middle two for an even count).
double sorted_median(const std::vector<double>& v) {
  const std::size_t mid = v.size() / 2;
  return v.size() % 2 == 0 ? 0.5 * (v[mid - 1] + v[mid]) : v[mid];
}

}  // namespace

bool SessionOffsetTracker::observe(const Estimate& e) {
  bool counts = e.in_library && std::isfinite(e.energy_shift_ev) && !e.class_probability.empty();
  if (counts) {
    const double p = *std::max_element(e.class_probability.begin(), e.class_probability.end());
    counts = p >= options_.min_confidence;
  }
  const std::lock_guard<std::mutex> lock(mutex_);
  ++observed_;
  if (!counts) return false;
  ++counted_;
  const double v = std::clamp(e.energy_shift_ev, -options_.max_abs_ev, options_.max_abs_ev);
  if (window_.size() < static_cast<std::size_t>(options_.window)) {
    window_.push_back(v);
  } else {
    // The value leaving the window leaves the sorted copy too (it is there: the same double).
    sorted_.erase(std::lower_bound(sorted_.begin(), sorted_.end(), window_[next_]));
    window_[next_] = v;
  }
  sorted_.insert(std::upper_bound(sorted_.begin(), sorted_.end(), v), v);
  next_ = (next_ + 1) % static_cast<std::size_t>(options_.window);
  if (window_.size() >= static_cast<std::size_t>(options_.min_samples)) tracked_ev_ = sorted_median(sorted_);
  return true;
}

bool SessionOffsetTracker::settled() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return window_.size() >= static_cast<std::size_t>(options_.min_samples);
}

double SessionOffsetTracker::tracked_ev() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return tracked_ev_;
}

SessionOffsetTracker::Snapshot SessionOffsetTracker::snapshot() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  Snapshot s;
  s.start_ev = start_ev_;
  s.tracked_ev = tracked_ev_;
  if (!sorted_.empty()) {
    // 1.4826 x the median absolute deviation from the window's median (metrics only: taken here,
    // not per estimate).
    const double m = sorted_median(sorted_);
    std::vector<double> deviations(sorted_.size());
    for (std::size_t i = 0; i < sorted_.size(); ++i) deviations[i] = std::abs(sorted_[i] - m);
    std::sort(deviations.begin(), deviations.end());
    s.spread_ev = 1.4826 * sorted_median(deviations);
  }
  s.samples = static_cast<int>(window_.size());
  s.observed = observed_;
  s.counted = counted_;
  return s;
}

}  // namespace xasmap
