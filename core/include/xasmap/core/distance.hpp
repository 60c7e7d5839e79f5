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

// The squared correlation distance between query features `zq` (transform() of a window-processed
// spectrum, kind correlation) and the features library row `row` would have after
// apply_window(row, window, o) and transform(..., kCorrelation), without computing them: a line
// background and a scalar normalisation only move the row's mean, tilt it and scale it, which
// the window sums of r, r*t, r^2, zq*r and zq*t (t the grid index) account for exactly. One pass
// over the window, no allocation. nullopt when the shortcut does not apply (smoothing, an
// edge-step background) or the processed row would be flat; take the long way then.
std::optional<double> windowed_correlation_distance2(const float* zq, const float* row, const Window& window,
                                                     const PreprocessOptions& o);

// The expected squared distance that white noise of standard deviation `sigma` on p adds between
// p's features and a noise-free neighbour's: the floor the novelty score subtracts.
double noise_distance2(const Eigen::Ref<const RowVectorXf>& p, const Window& window,
                       double step_ev, double sigma, DistanceKind kind);

}  // namespace xasmap
