#include "xasmap/core/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

namespace xasmap {

EnergyGrid EnergyGrid::from_range(double emin_ev, double emax_ev, double step_ev) {
  EnergyGrid g;
  g.emin_ev = emin_ev;
  g.step_ev = step_ev;
  g.size = static_cast<int>(std::floor((emax_ev - emin_ev) / step_ev + 1e-9)) + 1;
  return g;
}

void resample_into(const Eigen::Ref<const Eigen::VectorXd>& energy, const Eigen::Ref<const Eigen::VectorXd>& intensity,
                   const EnergyGrid& grid, Window& window, RowVectorXf& out) {
  out.setZero(grid.size);
  const Eigen::Index n = energy.size();
  const double lo = energy[0];
  const double hi = energy[n - 1];
  // Clamped in double before the conversion, so that energies far outside the grid stay defined.
  const double grid_last = grid.size - 1;
  window.first = static_cast<int>(std::clamp(std::ceil((lo - grid.emin_ev) / grid.step_ev - 1e-9), 0.0, grid_last + 1));
  window.last = static_cast<int>(std::clamp(std::floor((hi - grid.emin_ev) / grid.step_ev + 1e-9), -1.0, grid_last));
  Eigen::Index j = 0;
  for (int i = window.first; i <= window.last; ++i) {
    const double e = grid.at(i);
    while (j + 2 < n && energy[j + 1] < e) ++j;
    const double t = std::clamp((e - energy[j]) / (energy[j + 1] - energy[j]), 0.0, 1.0);
    out[i] = static_cast<float>((1.0 - t) * intensity[j] + t * intensity[j + 1]);
  }
}

RowVectorXf resample(const Spectrum& s, const EnergyGrid& grid, Window& window) {
  RowVectorXf out;
  resample_into(s.energy_ev, s.intensity, grid, window, out);
  return out;
}

namespace {

// Mean of values[a..b] and of their energies, for the line through the window's end regions.
struct EndRegion {
  double energy = 0, value = 0;
};

EndRegion mean_region(const std::vector<double>& y, int a, int b, const EnergyGrid& g, int offset) {
  EndRegion r;
  for (int i = a; i <= b; ++i) {
    r.value += y[static_cast<std::size_t>(i)];
    r.energy += g.at(offset + i);
  }
  const double count = b - a + 1;
  r.value /= count;
  r.energy /= count;
  return r;
}

}  // namespace

void apply_window_into(const Eigen::Ref<const RowVectorXf>& values, const Window& window,
                       const PreprocessOptions& o, RowVectorXf& out) {
  const EnergyGrid& g = o.grid;
  const int n = window.size();
  // Scratch kept by the thread: after the first call, no allocation.
  static thread_local std::vector<double> y, kernel, smoothed;
  y.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = values[window.first + i];

  if (o.smooth_fwhm_ev > 0.0) {
    const double sigma = o.smooth_fwhm_ev / (2.0 * std::sqrt(2.0 * std::log(2.0))) / g.step_ev;
    const int half = static_cast<int>(std::ceil(4.0 * sigma));
    kernel.resize(static_cast<std::size_t>(2 * half + 1));
    for (int k = -half; k <= half; ++k) {
      kernel[static_cast<std::size_t>(k + half)] = std::exp(-0.5 * (k / sigma) * (k / sigma));
    }
    smoothed.resize(y.size());
    for (int i = 0; i < n; ++i) {
      double acc = 0, weight = 0;
      for (int k = std::max(-half, -i); k <= std::min(half, n - 1 - i); ++k) {
        const double w = kernel[static_cast<std::size_t>(k + half)];
        acc += w * y[static_cast<std::size_t>(i + k)];
        weight += w;
      }
      smoothed[static_cast<std::size_t>(i)] = acc / weight;
    }
    y.swap(smoothed);
  }

  const int edge = std::clamp(static_cast<int>(std::lround(o.edge_window_ev / g.step_ev)), 1,
                              std::max(1, n / 4));
  const EndRegion pre = mean_region(y, 0, edge - 1, g, window.first);
  const EndRegion post = mean_region(y, n - edge, n - 1, g, window.first);
  const double jump = post.value - pre.value;

  switch (o.background) {
    case BackgroundKind::kPrePostLine: {
      const double slope = (post.value - pre.value) / (post.energy - pre.energy);
      for (int i = 0; i < n; ++i) {
        y[static_cast<std::size_t>(i)] -= pre.value + slope * (g.at(window.first + i) - pre.energy);
      }
      break;
    }
    case BackgroundKind::kEdgeStep: {
      // A two-step (L3:L2 = 2:1) arctangent edge at the two strongest maxima of the window's
      // halves, rising from the pre-edge level to the post-edge level.
      const auto peak_in = [&](int a, int b) {
        int best = a;
        for (int i = a; i <= b; ++i) {
          if (y[static_cast<std::size_t>(i)] > y[static_cast<std::size_t>(best)]) best = i;
        }
        return g.at(window.first + best);
      };
      const double e3 = peak_in(0, n / 2);
      const double e2 = peak_in(n / 2, n - 1);
      const double width = 0.5;  // eV
      for (int i = 0; i < n; ++i) {
        const double e = g.at(window.first + i);
        const double step = (2.0 / 3.0) * (0.5 + std::atan((e - e3) / width) / std::numbers::pi) +
                            (1.0 / 3.0) * (0.5 + std::atan((e - e2) / width) / std::numbers::pi);
        y[static_cast<std::size_t>(i)] -= pre.value + jump * step;
      }
      break;
    }
    case BackgroundKind::kNone:
      break;
  }

  double scale = 1.0;
  switch (o.normalize) {
    case NormalizationKind::kArea: {
      double area = 0;
      for (double v : y) area += v;
      scale = area * g.step_ev;
      break;
    }
    case NormalizationKind::kMax:
      scale = *std::max_element(y.begin(), y.end());
      break;
    case NormalizationKind::kEdgeStep:
      scale = jump;
      break;
    case NormalizationKind::kNone:
      break;
  }
  if (!(std::abs(scale) > 1e-30) || !std::isfinite(scale)) {
    throw PreprocessError(RejectReason::kFlat,
                          "nothing to normalise on the window " + std::to_string(g.at(window.first)) +
                              "-" + std::to_string(g.at(window.last)) + " eV (flat spectrum)");
  }
  out.setZero(g.size);
  for (int i = 0; i < n; ++i) {
    out[window.first + i] = static_cast<float>(y[static_cast<std::size_t>(i)] / scale);
  }
}

RowVectorXf apply_window(const Eigen::Ref<const RowVectorXf>& values, const Window& window,
                         const PreprocessOptions& o) {
  RowVectorXf out;
  apply_window_into(values, window, o, out);
  return out;
}

void preprocess_into(const Eigen::Ref<const Eigen::VectorXd>& energy, const Eigen::Ref<const Eigen::VectorXd>& intensity,
                     const PreprocessOptions& o, Prepared& p) {
  if (const auto problem = check_spectrum(energy, intensity)) {
    RejectReason reason = RejectReason::kNonFinite;
    if (problem->find("not finite") == std::string::npos) {
      reason = problem->find("strictly increasing") != std::string::npos
                   ? RejectReason::kNonMonotonic
                   : RejectReason::kTooFewPoints;
    }
    throw PreprocessError(reason, *problem);
  }
  static thread_local RowVectorXf raw;
  resample_into(energy, intensity, o.grid, p.window, raw);
  const double grid_width = o.grid.emax_ev() - o.grid.emin_ev;
  p.coverage = p.window.size() > 1 ? (p.window.size() - 1) * o.grid.step_ev / grid_width : 0.0;
  if (p.window.size() < 8 || p.coverage < o.min_coverage) {
    throw PreprocessError(
        RejectReason::kTooLittleOverlap,
        "the spectrum (" + std::to_string(energy[0]) + "-" + std::to_string(energy[energy.size() - 1]) +
            " eV) covers " + std::to_string(static_cast<int>(std::round(100 * p.coverage))) + "% of the grid " +
            std::to_string(o.grid.emin_ev) + "-" + std::to_string(o.grid.emax_ev()) + " eV; at least " +
            std::to_string(static_cast<int>(std::round(100 * o.min_coverage))) + "% is needed");
  }
  apply_window_into(raw, p.window, o, p.values);

  static thread_local std::vector<double> second;
  second.clear();
  for (int i = p.window.first + 1; i < p.window.last; ++i) {
    second.push_back(std::abs(static_cast<double>(p.values[i - 1]) - 2.0 * p.values[i] + p.values[i + 1]));
  }
  std::nth_element(second.begin(), second.begin() + static_cast<long>(second.size() / 2), second.end());
  p.noise_sigma = 1.4826 * second[second.size() / 2] / std::sqrt(6.0);
}

Prepared preprocess(const Spectrum& s, const PreprocessOptions& o) {
  Prepared p;
  preprocess_into(s.energy_ev, s.intensity, o, p);
  return p;
}

}  // namespace xasmap
