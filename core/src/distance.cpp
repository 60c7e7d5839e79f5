#include "xasmap/core/distance.hpp"

#include <cmath>
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
  RowVectorXf z = RowVectorXf::Zero(p.size());
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
  return z;
}

// Compiled twice, for AVX2 and for baseline x86-64, and dispatched on the CPU at load time.
// Not under the sanitizers: their runtimes are not yet up when the dispatcher runs.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__)
#define XASMAP_HOT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define XASMAP_HOT_CLONES
#endif

XASMAP_HOT_CLONES
double distance2(const float* za, const float* zb, const Window& w, double step,
                 DistanceKind kind) {
  // Vectorised in float; the rounding this adds (~1e-7 relative) is far below any distance that
  // matters here.
  const Eigen::Map<const Eigen::ArrayXf> a(za + w.first, w.size());
  const Eigen::Map<const Eigen::ArrayXf> b(zb + w.first, w.size());
  if (kind == DistanceKind::kWasserstein) {
    const double w1 = static_cast<double>((a - b).abs().sum()) * step;
    return w1 * w1;
  }
  return static_cast<double>((a - b).square().sum());
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

}  // namespace xasmap
