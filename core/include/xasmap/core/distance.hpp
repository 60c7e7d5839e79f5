#pragma once
// Distances between preprocessed spectra.
//
// Each kind maps a window-processed grid vector p to a feature vector z (transform()); the distance
// is then the Euclidean distance between feature vectors, except for Wasserstein:
//   euclidean    z = p * sqrt(step)                 d^2 = integral of (pa - pb)^2 dE
//   correlation  z = (p - mean) / |p - mean|        d^2 = 2 (1 - Pearson r)    (shape only)
//   derivative   z = dp/dE * sqrt(step)             d^2 = integral of (pa' - pb')^2 dE
//   wasserstein  z = CDF of max(p, 0)               d   = integral of |CDFa - CDFb| dE (W1)
// The first three are Euclidean in feature space, so Landmark MDS projects them with one affine
// map. Suzuki et al., npj Comput. Mater. 5, 39 (2019) compare such measures for XAS.

#include <Eigen/Core>
#include <optional>

#include "xasmap/core/preprocess.hpp"

namespace xasmap {

enum class DistanceKind { kEuclidean, kCorrelation, kDerivative, kWasserstein };

const char* to_string(DistanceKind kind);

inline bool is_euclidean(DistanceKind kind) { return kind != DistanceKind::kWasserstein; }

// Feature vector of `p` (grid-sized, zero outside `window`); grid-sized, zero outside the window.
RowVectorXf transform(const Eigen::Ref<const RowVectorXf>& p, const Window& window, double step_ev,
                      DistanceKind kind);
// The same into z (which must not alias p), reusing its storage.
void transform_into(const Eigen::Ref<const RowVectorXf>& p, const Window& window, double step_ev, DistanceKind kind,
                    RowVectorXf& z);

// Squared distance between two feature vectors over `window`.
double distance2(const float* za, const float* zb, const Window& window, double step_ev,
                 DistanceKind kind);

// The dot products of r with x and with y over n values, in one pass over r (float sums).
struct DotPair {
  double x = 0, y = 0;
};
DotPair dot_pair(const float* r, const float* x, const float* y, int n);

// The squared correlation distance between query features `zq` (transform() of a window-processed
// spectrum, kind correlation) and the features library row `row` would have after
// apply_window(row, window, o) and transform(..., kCorrelation), without computing them: a line
// background and a scalar normalisation only move the row's mean, tilt it and scale it, which
// the window sums of r, r*t, r^2, zq*r and zq*t (t the grid index) account for exactly. One pass
// over the window, no allocation. nullopt when the shortcut does not apply (smoothing, an
// edge-step background) or the processed row would be flat; take the long way then.
std::optional<double> windowed_correlation_distance2(const float* zq, const float* row, const Window& window,
                                                     const PreprocessOptions& o);

// The same in parts, for reuse: what depends on the library row and the window only (computed
// once per row and window), what depends on the query only (once per query), and the one dot
// product that depends on both.
struct WindowedRowTerms {
  bool flat = false;  // the processed row would be flat: its features are zero
  double slope = 0;   // the background line's slope, per grid index
  double weight = 0;  // sign of the normalisation / |centred, background-free row|
};
std::optional<WindowedRowTerms> windowed_row_terms(const float* row, const Window& window, const PreprocessOptions& o);
struct WindowedQueryTerms {
  double qq = 0;   // sum of zq^2 over the window
  double sqt = 0;  // sum of zq * t, t the grid index from the window's start
};
WindowedQueryTerms windowed_query_terms(const float* zq, const Window& window);
double windowed_correlation_distance2(const float* zq, const float* row, const Window& window,
                                      const WindowedRowTerms& row_terms, const WindowedQueryTerms& query_terms);

// The expected squared distance that white noise of standard deviation `sigma` on p adds between
// p's features and a noise-free neighbour's: the floor the novelty score subtracts.
double noise_distance2(const Eigen::Ref<const RowVectorXf>& p, const Window& window,
                       double step_ev, double sigma, DistanceKind kind);

}  // namespace xasmap
