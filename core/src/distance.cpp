#include "xasmap/core/distance.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numbers>

namespace xasmap {

const char* to_string(DistanceKind kind) {
  switch (kind) {
    case DistanceKind::kEuclidean:
      return "euclidean";
    case DistanceKind::kCorrelation:
      return "correlation";
    case DistanceKind::kDerivative:
      return "derivative";
    case DistanceKind::kWasserstein:
      return "wasserstein";
  }
  return "?";
}

RowVectorXf transform(const Eigen::Ref<const RowVectorXf>& p, const Window& w, double step,
                      DistanceKind kind) {
  RowVectorXf z;
  transform_into(p, w, step, kind, z);
  return z;
}

void transform_into(const Eigen::Ref<const RowVectorXf>& p, const Window& w, double step, DistanceKind kind,
                    RowVectorXf& z) {
  z.setZero(p.size());
  const int n = w.size();
  switch (kind) {
    case DistanceKind::kEuclidean: {
      const auto s = static_cast<float>(std::sqrt(step));
      z.segment(w.first, n) = p.segment(w.first, n) * s;
      break;
    }
    case DistanceKind::kCorrelation: {
      const double mean = p.segment(w.first, n).cast<double>().mean();
      double norm2 = 0;
      for (int i = w.first; i <= w.last; ++i) norm2 += (p[i] - mean) * (p[i] - mean);
      const double inv = norm2 > 0 ? 1.0 / std::sqrt(norm2) : 0.0;
      for (int i = w.first; i <= w.last; ++i) z[i] = static_cast<float>((p[i] - mean) * inv);
      break;
    }
    case DistanceKind::kDerivative: {
      const double s = 1.0 / std::sqrt(step);
      for (int i = w.first; i < w.last; ++i) z[i] = static_cast<float>((p[i + 1] - p[i]) * s);
      break;
    }
    case DistanceKind::kWasserstein: {
      double total = 0;
      for (int i = w.first; i <= w.last; ++i) total += std::max(0.0f, p[i]);
      double running = 0;
      for (int i = w.first; i <= w.last; ++i) {
        running += std::max(0.0f, p[i]);
        z[i] = static_cast<float>(total > 0 ? running / total : 0.0);
      }
      break;
    }
  }
}

// Compiled twice, for AVX2 and for baseline x86-64, and dispatched on the CPU at load time.
// Not under the sanitizers: their runtimes are not yet up when the dispatcher runs.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define XASMAP_HOT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define XASMAP_HOT_CLONES
#endif

namespace {

// GCC's vector extension: eight floats that the AVX2 clone keeps in one register each and the
// baseline clone in two SSE registers, whatever the optimisation level (a plain loop over lane
// arrays vectorised well at -O2 but was shuffled through the stack at -O3). Sums are taken in
// eight float lanes (their rounding, ~1e-7 relative, is far below any distance that matters) and
// combined in double; t is the index from the window's start.
typedef float Lanes __attribute__((vector_size(32)));

// By reference, not by value: a vector return would change the ABI between the clones.
inline void load(Lanes& v, const float* p) { std::memcpy(&v, p, sizeof v); }

double total(const Lanes& v) {
  double s = 0;
  for (int l = 0; l < 8; ++l) s += v[l];
  return s;
}

}  // namespace

XASMAP_HOT_CLONES
double distance2(const float* za, const float* zb, const Window& w, double step,
                 DistanceKind kind) {
  // In Lanes (Eigen's packets stay at the baseline's 4 floats in either clone: half the speed of
  // these under AVX2).
  const float* a = za + w.first;
  const float* b = zb + w.first;
  const int n = w.size();
  Lanes acc = {};
  int i = 0;
  const bool wasserstein = kind == DistanceKind::kWasserstein;
  for (; i + 8 <= n; i += 8) {
    Lanes x, y;
    load(x, a + i);
    load(y, b + i);
    const Lanes d = x - y;
    acc += wasserstein ? (d < 0 ? -d : d) : d * d;
  }
  double sum = total(acc);
  for (; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    sum += wasserstein ? std::abs(d) : d * d;
  }
  if (wasserstein) {
    const double w1 = sum * step;
    return w1 * w1;
  }
  return sum;
}

XASMAP_HOT_CLONES DotPair dot_pair(const float* r, const float* x, const float* y, int n) {
  Lanes ax = {}, ay = {};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    Lanes rv, xv, yv;
    load(rv, r + i);
    load(xv, x + i);
    load(yv, y + i);
    ax += rv * xv;
    ay += rv * yv;
  }
  DotPair out{total(ax), total(ay)};
  for (; i < n; ++i) {
    out.x += static_cast<double>(r[i]) * x[i];
    out.y += static_cast<double>(r[i]) * y[i];
  }
  return out;
}

double noise_distance2(const Eigen::Ref<const RowVectorXf>& p, const Window& w, double step,
                       double sigma, DistanceKind kind) {
  const double n = w.size();
  const double s2 = sigma * sigma;
  switch (kind) {
    case DistanceKind::kEuclidean:
      return s2 * step * n;
    case DistanceKind::kCorrelation: {
      const double mean = p.segment(w.first, w.size()).cast<double>().mean();
      double norm2 = 0;
      for (int i = w.first; i <= w.last; ++i) norm2 += (p[i] - mean) * (p[i] - mean);
      return norm2 > 0 ? s2 * n / norm2 : 0.0;
    }
    case DistanceKind::kDerivative:
      return 2.0 * s2 * (n - 1) / step;
    case DistanceKind::kWasserstein: {
      // The CDF error is a random walk of steps sigma * step (area normalised to 1):
      // E|c_i| = sqrt(2/pi) sigma step sqrt(i); W1 sums it times step.
      const double w1 = std::sqrt(2.0 / std::numbers::pi) * sigma * step * step * (2.0 / 3.0) *
                        std::pow(n, 1.5);
      return w1 * w1;
    }
  }
  return 0.0;
}

XASMAP_HOT_CLONES std::optional<WindowedRowTerms> windowed_row_terms(const float* row, const Window& w,
                                                                     const PreprocessOptions& o) {
  if (o.smooth_fwhm_ev > 0.0 || o.background == BackgroundKind::kEdgeStep) return std::nullopt;
  const int n = w.size();
  if (n < 2) return std::nullopt;
  const float* r = row + w.first;
  // The background line through the means of the end regions, as apply_window() draws it; in grid
  // index units t = 0..n-1 from the window's start (a line is a line in either unit).
  const int edge = std::clamp(static_cast<int>(std::lround(o.edge_window_ev / o.grid.step_ev)), 1,
                              std::max(1, n / 4));
  double pre = 0, post = 0;
  for (int i = 0; i < edge; ++i) {
    pre += r[i];
    post += r[n - edge + i];
  }
  pre /= edge;
  post /= edge;
  const double pre_t = (edge - 1) / 2.0, post_t = n - 1 - (edge - 1) / 2.0;
  double slope = 0, level = 0;
  if (o.background == BackgroundKind::kPrePostLine) {
    slope = (post - pre) / (post_t - pre_t);
    level = pre - slope * pre_t;  // y = r - (level + slope t)
  }
  const Lanes step = {0, 1, 2, 3, 4, 5, 6, 7};
  Lanes a1 = {}, at = {}, a2 = {};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    Lanes rv;
    load(rv, r + i);
    a1 += rv;
    at += rv * (step + static_cast<float>(i));
    a2 += rv * rv;
  }
  double s1 = total(a1), st = total(at), s2 = total(a2);
  for (; i < n; ++i) {
    s1 += r[i];
    st += static_cast<double>(r[i]) * i;
    s2 += static_cast<double>(r[i]) * r[i];
  }
  const double dn = n;
  const double t1 = dn * (dn - 1) / 2, t2 = (dn - 1) * dn * (2 * dn - 1) / 6;
  // The normalisation's sign: it flips the features when negative.
  double scale = 1.0;
  switch (o.normalize) {
    case NormalizationKind::kArea:
      scale = (s1 - dn * level - slope * t1) * o.grid.step_ev;
      break;
    case NormalizationKind::kMax: {
      double ymax = -std::numeric_limits<double>::infinity();
      for (int k = 0; k < n; ++k) ymax = std::max(ymax, r[k] - level - slope * k);
      scale = ymax;
      break;
    }
    case NormalizationKind::kEdgeStep:
      scale = post - pre;
      break;
    case NormalizationKind::kNone:
      break;
  }
  if (!(std::abs(scale) > 1e-30) || !std::isfinite(scale)) return std::nullopt;  // apply_window refuses it
  // |centred y|^2, where y = r - level - slope t.
  const double crr = s2 - s1 * s1 / dn, crt = st - s1 * t1 / dn, ctt = t2 - t1 * t1 / dn;
  const double norm2 = crr - 2 * slope * crt + slope * slope * ctt;
  WindowedRowTerms terms;
  terms.slope = slope;
  if (!(norm2 > 1e-24 * std::max(s2, 1e-300))) {
    terms.flat = true;  // a flat row has zero features
  } else {
    terms.weight = (scale < 0 ? -1.0 : 1.0) / std::sqrt(norm2);
  }
  return terms;
}

XASMAP_HOT_CLONES WindowedQueryTerms windowed_query_terms(const float* zq, const Window& w) {
  const int n = w.size();
  const float* q = zq + w.first;
  const Lanes step = {0, 1, 2, 3, 4, 5, 6, 7};
  Lanes aqt = {}, aqq = {};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    Lanes qv;
    load(qv, q + i);
    aqt += qv * (step + static_cast<float>(i));
    aqq += qv * qv;
  }
  WindowedQueryTerms t{total(aqq), total(aqt)};
  for (; i < n; ++i) {
    t.qq += static_cast<double>(q[i]) * q[i];
    t.sqt += static_cast<double>(q[i]) * i;
  }
  return t;
}

XASMAP_HOT_CLONES double windowed_correlation_distance2(const float* zq, const float* row, const Window& w,
                                                        const WindowedRowTerms& r, const WindowedQueryTerms& q) {
  if (r.flat) return q.qq;
  // <zq, y>: zq sums to zero on the window, so y's constant terms drop out of the product.
  const int n = w.size();
  const float* a = zq + w.first;
  const float* b = row + w.first;
  Lanes acc = {};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    Lanes va, vb;
    load(va, a + i);
    load(vb, b + i);
    acc += va * vb;
  }
  double sq = total(acc);
  for (; i < n; ++i) sq += static_cast<double>(a[i]) * b[i];
  const double dot = (sq - r.slope * q.sqt) * r.weight;
  return std::max(0.0, q.qq + 1.0 - 2.0 * dot);
}

std::optional<double> windowed_correlation_distance2(const float* zq, const float* row, const Window& w,
                                                     const PreprocessOptions& o) {
  const auto terms = windowed_row_terms(row, w, o);
  if (!terms) return std::nullopt;
  return windowed_correlation_distance2(zq, row, w, *terms, windowed_query_terms(zq, w));
}

}  // namespace xasmap
