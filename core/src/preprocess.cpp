#include "xasmap/core/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <iterator>
#include <numbers>
#include <string_view>
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
                   const EnergyGrid& grid, Window& window, RowVectorXf& out, double* variance_share,
                   double extend_below_ev, double extend_above_ev) {
  double share = 0;
  out.setZero(grid.size);
  const Eigen::Index n = energy.size();
  // Grid points within the extensions take the end values (the clamped t below).
  const double lo = energy[0] - std::max(0.0, extend_below_ev);
  const double hi = energy[n - 1] + std::max(0.0, extend_above_ev);
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
    share += (1.0 - t) * (1.0 - t) + t * t;
  }
  if (variance_share != nullptr) *variance_share = window.size() > 0 ? share / window.size() : 0.0;
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

// Smoothing and background on the window, into `y` (the caller's scratch); returns the edge jump
// (post-edge minus pre-edge level), the edge-step normalisation's divisor.
double shape_window(const Eigen::Ref<const RowVectorXf>& values, const Window& window,
                    const PreprocessOptions& o, std::vector<double>& y) {
  const EnergyGrid& g = o.grid;
  const int n = window.size();
  // Scratch kept by the thread: after the first call, no allocation.
  static thread_local std::vector<double> kernel, smoothed;
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
  return jump;
}

}  // namespace

bool window_is_linear(const PreprocessOptions& o) {
  return o.smooth_fwhm_ev <= 0.0 &&
         (o.background == BackgroundKind::kPrePostLine || o.background == BackgroundKind::kNone) &&
         (o.normalize == NormalizationKind::kArea || o.normalize == NormalizationKind::kNone);
}

void window_background_into(const Eigen::Ref<const RowVectorXf>& values, const Window& window,
                            const PreprocessOptions& o, RowVectorXf& out) {
  static thread_local std::vector<double> y;
  shape_window(values, window, o, y);
  out.setZero(o.grid.size);
  for (int i = 0; i < window.size(); ++i) out[window.first + i] = static_cast<float>(y[static_cast<std::size_t>(i)]);
}

double apply_window_into(const Eigen::Ref<const RowVectorXf>& values, const Window& window,
                         const PreprocessOptions& o, RowVectorXf& out) {
  const EnergyGrid& g = o.grid;
  const int n = window.size();
  static thread_local std::vector<double> y;
  const double jump = shape_window(values, window, o, y);

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
  return scale;
}

RowVectorXf apply_window(const Eigen::Ref<const RowVectorXf>& values, const Window& window,
                         const PreprocessOptions& o) {
  RowVectorXf out;
  apply_window_into(values, window, o, out);
  return out;
}

namespace {

// Binding energies (eV): the 3d metals' 2p edges as in data/atomic/edges_3d.csv, and the K edges
// of C, N, O and F (the X-ray Data Booklet, J. A. Bearden and A. F. Burr, Rev. Mod. Phys. 39, 125
// (1967)), the edges a soft X-ray scan meant for a 3d L2,3 edge most often meets instead.
struct KnownEdge {
  const char* name;
  double energy_ev;
};
constexpr KnownEdge kKnownEdges[] = {
    {"C K", 284.2},     {"N K", 409.9},     {"Ti L3", 453.8},   {"Ti L2", 460.2},
    {"V L3", 512.1},    {"V L2", 519.8},    {"O K", 543.1},     {"Cr L3", 574.1},
    {"Cr L2", 583.8},   {"Mn L3", 638.7},   {"Mn L2", 649.9},   {"F K", 696.7},
    {"Fe L3", 706.8},   {"Fe L2", 719.9},   {"Co L3", 778.1},   {"Co L2", 793.2},
    {"Ni L3", 852.7},   {"Ni L2", 870.0},   {"Cu L3", 932.7},   {"Cu L2", 952.3},
};

std::string format_ev(double v, int digits = 1) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

// The absolute second differences of `y` into `second`; returns their sum.
double second_differences(const std::vector<double>& y, std::vector<double>& second) {
  second.clear();
  double sum = 0;
  for (std::size_t i = 1; i + 1 < y.size(); ++i) {
    second.push_back(std::abs(y[i - 1] - 2.0 * y[i] + y[i + 1]));
    sum += second.back();
  }
  return sum;
}

// Noise from the absolute second differences second_differences() left (reordered here): their
// median, as a white-noise standard deviation (see Prepared::noise_sigma).
double noise_from(std::vector<double>& second) {
  if (second.empty()) return 0.0;
  std::nth_element(second.begin(), second.begin() + static_cast<long>(second.size() / 2), second.end());
  return 1.4826 * second[second.size() / 2] / std::sqrt(6.0);
}

// Noise of `y` from its second differences.
double noise_of(const std::vector<double>& y, std::vector<double>& scratch) {
  second_differences(y, scratch);
  return noise_from(scratch);
}

// The strongest peak of the whole spectrum above the line through its ends: its energy, and its
// height in units of the spectrum's noise (infinite when there is no noise).
std::pair<double, double> strongest_peak(const Eigen::Ref<const Eigen::VectorXd>& e,
                                         const Eigen::Ref<const Eigen::VectorXd>& y, std::vector<double>& scratch) {
  const Eigen::Index n = e.size();
  const double slope = (y[n - 1] - y[0]) / (e[n - 1] - e[0]);
  Eigen::Index best = 0;
  double high = -std::numeric_limits<double>::infinity();
  for (Eigen::Index i = 0; i < n; ++i) {
    const double r = y[i] - y[0] - slope * (e[i] - e[0]);
    if (r > high) {
      high = r;
      best = i;
    }
  }
  std::vector<double> values(y.data(), y.data() + n);
  const double sigma = noise_of(values, scratch);
  return {e[best], sigma > 0 ? high / sigma : std::numeric_limits<double>::infinity()};
}

// Throws PreprocessError(kNoEdge) when the raw window values hold no absorption edge.
void require_edge(const Eigen::Ref<const Eigen::VectorXd>& energy, const Eigen::Ref<const Eigen::VectorXd>& intensity,
                  const RowVectorXf& raw, const Window& w, const PreprocessOptions& o) {
  const EnergyGrid& g = o.grid;
  const int n = w.size();
  static thread_local std::vector<double> y, residual, smooth, scratch;
  y.resize(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = raw[w.first + i];
  const int edge = std::clamp(static_cast<int>(std::lround(o.edge_window_ev / g.step_ev)), 1, std::max(1, n / 4));
  const EndRegion pre = mean_region(y, 0, edge - 1, g, w.first);
  const EndRegion post = mean_region(y, n - edge, n - 1, g, w.first);
  const double slope = (post.value - pre.value) / (post.energy - pre.energy);
  // The residual above the line, smoothed over +-0.3 eV so that one noisy point is no peak (a
  // running sum over the points within `half` of each).
  const int half = std::max(1, static_cast<int>(std::lround(0.3 / g.step_ev)));
  residual.resize(static_cast<std::size_t>(n));
  for (int k = 0; k < n; ++k) {
    residual[static_cast<std::size_t>(k)] = y[static_cast<std::size_t>(k)] - pre.value - slope * (g.at(w.first + k) - pre.energy);
  }
  smooth.resize(static_cast<std::size_t>(n));
  double acc = 0;
  for (int k = 0; k < std::min(n, half); ++k) acc += residual[static_cast<std::size_t>(k)];
  for (int i = 0; i < n; ++i) {
    if (i + half < n) acc += residual[static_cast<std::size_t>(i + half)];
    if (i - half - 1 >= 0) acc -= residual[static_cast<std::size_t>(i - half - 1)];
    const int count = std::min(n - 1, i + half) - std::max(0, i - half) + 1;
    smooth[static_cast<std::size_t>(i)] = acc / count;
  }
  const auto [lo, hi] = std::minmax_element(smooth.begin(), smooth.end());
  const double height = *hi;
  const double range = *hi - *lo;
  // An exactly flat window is left to normalisation, which names it (RejectReason::kFlat).
  if (range <= 0.0) return;
  // The noise is the median of the absolute second differences (noise_from). Their mean m bounds
  // that median: fewer than half of non-negative values can exceed 2m. A height above 5 times the
  // noise that bound gives passes the exact test too, without the median's selection (most
  // spectra); only the others take it.
  const double sum = second_differences(y, scratch);
  if (height >= 0.25 * range && !scratch.empty() &&
      height > 5.0 * 1.4826 * 2.0 * (sum / static_cast<double>(scratch.size())) / std::sqrt(6.0)) {
    return;
  }
  const double sigma = noise_from(scratch);
  if (height > 5.0 * sigma && height >= 0.25 * range) return;
  std::string message = "no absorption edge on " + format_ev(g.at(w.first)) + "-" + format_ev(g.at(w.last)) + " eV";
  const auto [peak, significance] = strongest_peak(energy, intensity, scratch);
  if ((peak < g.emin_ev - 1.0 || peak > g.emax_ev() + 1.0) && significance > 10.0) {
    message += ": the spectrum's strongest peak lies at " + format_ev(peak) + " eV";
    const std::string near = nearest_edge(peak);
    if (!near.empty()) message += ", near " + near + ", not the library's edge";
  } else if (!(height > 5.0 * sigma)) {
    message += ": above the background line its highest feature is " + format_ev(sigma > 0 ? height / sigma : 0.0) +
               " times its noise (at least 5 needed); is it noise or an empty scan?";
  } else {
    message += ": it falls below its background line more than it rises above it (the tail of an edge, or a background)";
  }
  throw PreprocessError(RejectReason::kNoEdge, message);
}

// The noise of the grid values before normalisation (Prepared::noise_sigma); `share`: the mean
// share of a sample's variance a grid point holds after the linear interpolation (resample_into).
double values_noise(const Eigen::Ref<const Eigen::VectorXd>& energy, const Eigen::Ref<const Eigen::VectorXd>& intensity,
                    const EnergyGrid& read_at, const RowVectorXf& raw, const Window& window, double share,
                    const PreprocessOptions& o) {
  static thread_local std::vector<double> second;
  // y[k-1]/h1 - y[k](1/h1 + 1/h2) + y[k+1]/h2 over its white-noise standard deviation: three
  // coefficients a point, which depend on the energies alone. A stack's pixels share one axis,
  // so the last axis's coefficients are kept (a thread's own) and compared before reuse.
  static thread_local std::vector<double> axis, coefficients;
  const Eigen::Index n = energy.size();
  if (axis.size() != static_cast<std::size_t>(n) || !std::equal(axis.begin(), axis.end(), energy.data())) {
    axis.clear();  // until the coefficients are complete (an allocation that throws leaves no key)
    coefficients.assign(3 * static_cast<std::size_t>(n), 0.0);
    for (Eigen::Index k = 1; k + 1 < n; ++k) {
      const double a = 1.0 / (energy[k] - energy[k - 1]), c = 1.0 / (energy[k + 1] - energy[k]), b = a + c;
      const double inv = 1.0 / std::sqrt(a * a + b * b + c * c);
      double* out = coefficients.data() + 3 * k;
      out[0] = a * inv;
      out[1] = b * inv;
      out[2] = c * inv;
    }
    axis.assign(energy.data(), energy.data() + n);
  }
  second.clear();
  const double lo = read_at.at(window.first), hi = read_at.at(window.last);
  double sigma = 0;
  for (Eigen::Index k = 1; k + 1 < n; ++k) {
    if (energy[k] < lo || energy[k] > hi) continue;
    const double* co = coefficients.data() + 3 * k;
    second.push_back(std::abs(co[0] * intensity[k - 1] - co[1] * intensity[k] + co[2] * intensity[k + 1]));
  }
  if (second.size() >= 5) {
    std::nth_element(second.begin(), second.begin() + static_cast<long>(second.size() / 2), second.end());
    sigma = 1.4826 * second[second.size() / 2] * std::sqrt(share);
  } else {
    // Too few samples under the window: the grid values' own second differences.
    second.clear();
    for (int i = window.first + 1; i < window.last; ++i) {
      second.push_back(std::abs(static_cast<double>(raw[i - 1]) - 2.0 * raw[i] + raw[i + 1]));
    }
    if (second.empty()) return 0.0;
    std::nth_element(second.begin(), second.begin() + static_cast<long>(second.size() / 2), second.end());
    sigma = 1.4826 * second[second.size() / 2] / std::sqrt(6.0);
  }
  if (o.smooth_fwhm_ev > 0.0) {
    // A Gaussian kernel of standard deviation s grid steps keeps sum(w^2) / (sum w)^2 of white
    // noise's variance, 1 / (2 sqrt(pi) s) for a kernel wide against the step.
    const double s = o.smooth_fwhm_ev / (2.0 * std::sqrt(2.0 * std::log(2.0))) / o.grid.step_ev;
    const int half = static_cast<int>(std::ceil(4.0 * s));
    double w1 = 0, w2 = 0;
    for (int k = -half; k <= half; ++k) {
      const double w = std::exp(-0.5 * (k / s) * (k / s));
      w1 += w;
      w2 += w * w;
    }
    sigma *= std::sqrt(w2) / w1;
  }
  return sigma;
}

}  // namespace

std::string nearest_edge(double energy_ev) {
  const KnownEdge* best = nullptr;
  for (const KnownEdge& k : kKnownEdges) {
    if (!best || std::abs(k.energy_ev - energy_ev) < std::abs(best->energy_ev - energy_ev)) best = &k;
  }
  if (!best || std::abs(best->energy_ev - energy_ev) > 10.0) return "";
  return std::string(best->name) + " (" + format_ev(best->energy_ev) + " eV)";
}

double l3_l2_splitting_ev(double energy_ev) {
  // kKnownEdges lists each 3d metal's L3 edge directly before its L2 edge.
  double best = 0, distance = 10.0;
  for (std::size_t i = 0; i + 1 < std::size(kKnownEdges); ++i) {
    const std::string_view name = kKnownEdges[i].name;
    if (!name.ends_with(" L3")) continue;
    if (std::abs(kKnownEdges[i].energy_ev - energy_ev) <= distance) {
      distance = std::abs(kKnownEdges[i].energy_ev - energy_ev);
      best = kKnownEdges[i + 1].energy_ev - kKnownEdges[i].energy_ev;
    }
  }
  return best;
}

void preprocess_into(const Eigen::Ref<const Eigen::VectorXd>& energy, const Eigen::Ref<const Eigen::VectorXd>& intensity,
                     const PreprocessOptions& o, Prepared& p, double energy_offset_ev) {
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
  EnergyGrid read_at = o.grid;  // where the spectrum is read: the grid on the measured scale
  read_at.emin_ev += energy_offset_ev;
  double share = 0;
  // The offset must not cost a spectrum the coverage it has on its own scale: a scan that ends at
  // the grid's end, read 0.1 eV up, would otherwise lose the last point and take the slower
  // partial-window path (every whole-range spectrum of a session whose tracked offset is not 0).
  // The end the grid moves towards is extended flat by the offset, at most.
  resample_into(energy, intensity, read_at, p.window, raw, &share, std::max(0.0, -energy_offset_ev),
                std::max(0.0, energy_offset_ev));
  const double grid_width = o.grid.emax_ev() - o.grid.emin_ev;
  p.coverage = p.window.size() > 1 ? (p.window.size() - 1) * o.grid.step_ev / grid_width : 0.0;
  if (p.window.size() < 8 || p.coverage < o.min_coverage) {
    // Energies in keV: the spectrum misses the grid, but a thousand times its energies would not.
    const double lo_kev = energy[0] * 1000.0, hi_kev = energy[energy.size() - 1] * 1000.0;
    const double overlap = std::min(hi_kev, o.grid.emax_ev()) - std::max(lo_kev, o.grid.emin_ev);
    if (hi_kev < 100000.0 && overlap >= o.min_coverage * grid_width) {
      throw PreprocessError(
          RejectReason::kEnergyUnit,
          "the energies (" + format_ev(energy[0], 4) + "-" +
              format_ev(energy[energy.size() - 1], 4) + ") look like keV; the library's grid is " +
              format_ev(o.grid.emin_ev) + "-" + format_ev(o.grid.emax_ev()) + " eV");
    }
    std::string message =
        "the spectrum (" + format_ev(energy[0]) + "-" + format_ev(energy[energy.size() - 1]) +
        " eV) covers " + std::to_string(static_cast<int>(std::round(100 * p.coverage))) +
        "% of the library's grid " + format_ev(o.grid.emin_ev) + "-" + format_ev(o.grid.emax_ev()) +
        " eV; at least " + std::to_string(static_cast<int>(std::round(100 * o.min_coverage))) +
        "% is needed";
    if (energy.size() >= 3) {
      static thread_local std::vector<double> scratch;
      const auto [peak, significance] = strongest_peak(energy, intensity, scratch);
      const std::string near = nearest_edge(peak);
      if (significance > 10.0 && !near.empty() &&
          (peak < o.grid.emin_ev - 1.0 || peak > o.grid.emax_ev() + 1.0)) {
        message += "; its strongest peak lies at " + format_ev(peak) + " eV, near " + near +
                   ": another edge than the library's";
      }
    }
    throw PreprocessError(RejectReason::kTooLittleOverlap, message);
  }
  if (o.require_edge) require_edge(energy, intensity, raw, p.window, o);
  const double scale = apply_window_into(raw, p.window, o, p.values);
  p.noise_sigma = values_noise(energy, intensity, read_at, raw, p.window, share, o) / std::abs(scale);
}

Prepared preprocess(const Spectrum& s, const PreprocessOptions& o, double energy_offset_ev) {
  Prepared p;
  preprocess_into(s.energy_ev, s.intensity, o, p, energy_offset_ev);
  return p;
}

}  // namespace xasmap
