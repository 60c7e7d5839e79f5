#pragma once
// Embeddings: classical MDS, Landmark MDS (de Silva & Tenenbaum, "Sparse multidimensional scaling
// using landmark points", 2004) and the pieces of landmark Isomap (Tenenbaum, de Silva & Langford,
// Science 290, 2319 (2000)), on rows of feature vectors (distance.hpp).

#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <vector>

#include "xasmap/core/distance.hpp"

namespace xasmap {

// N feature vectors, one per row, all over the same window.
using FeatureMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// A feature matrix with what its distances need.
struct FeatureSpace {
  const FeatureMatrix* rows = nullptr;
  Window window;
  double step_ev = 1.0;
  DistanceKind kind = DistanceKind::kEuclidean;
  // Distances are scale2 times those between the stored rows: lets Euclidean features
  // (p * sqrt(step)) be served by the preprocessed rows p themselves, without a copy.
  // Queries are given in the rows' own (unscaled) space.
  double scale2 = 1.0;
  Eigen::VectorXf norms2;  // squared row norms (Euclidean kinds), filled by prepare()

  void prepare();
  Eigen::Index size() const { return rows->rows(); }
  double d2(Eigen::Index i, Eigen::Index j) const;
  double d2_to(const float* q, double q_norm2, Eigen::Index i) const;
};

struct ClassicalMds {
  Eigen::MatrixXd coordinates;  // N x dims
  Eigen::VectorXd eigenvalues;  // dims, descending, all > 0
};

// Exact classical (Torgerson) MDS of a symmetric matrix of squared distances. Each eigenvector's
// sign is fixed so that its largest-magnitude component is positive. Throws xasmap::Error when the
// eigen-solver fails or fewer than `dims` eigenvalues are positive.
ClassicalMds classical_mds(const Eigen::MatrixXd& d2, int dims);

// Landmark MDS fitted on the landmarks' squared distances (k x k):
//   B = -1/2 H D H,  L# = [v_i / sqrt(lambda_i)]^T,  delta_mu = column means of D,
// and any point with squared distances delta (k) to the landmarks lands at
//   y = -1/2 L# (delta - delta_mu),
// which for a landmark gives exactly its classical-MDS coordinates.
struct LandmarkMds {
  Eigen::MatrixXd pseudo_inverse;  // dims x k
  Eigen::VectorXd mean_d2;         // k
  Eigen::VectorXd eigenvalues;     // dims

  Eigen::VectorXd project(const Eigen::Ref<const Eigen::VectorXd>& d2) const;
  int dims() const { return static_cast<int>(pseudo_inverse.rows()); }
};
LandmarkMds fit_landmark_mds(const Eigen::MatrixXd& landmark_d2, int dims);

enum class LandmarkChoice { kMaxMin, kRandom };

// k landmark rows. MaxMin: a seeded random start, then each next landmark is the row farthest from
// all chosen so far (exact; the triangle inequality skips rows that cannot have moved).
// Random: k distinct rows drawn with the seed.
std::vector<int> select_landmarks(const FeatureSpace& space, int k, LandmarkChoice choice,
                                  std::uint64_t seed, int threads);

// The symmetrised k-nearest-neighbour graph of the rows, edge weights = distances (not squared).
struct Graph {
  std::vector<std::vector<std::pair<int, float>>> adjacency;
};
Graph knn_graph(const FeatureSpace& space, int k, int threads);

// Shortest-path (geodesic) distances from each source to every node: sources x N, +inf when a
// node is unreachable.
Eigen::MatrixXf geodesic_distances(const Graph& graph, const std::vector<int>& sources,
                                   int threads);

// An embedding through landmarks: the fitted LMDS and every row's coordinates.
struct LandmarkEmbedding {
  std::vector<int> landmarks;
  LandmarkMds lmds;
  Eigen::MatrixXf coordinates;  // rows x dims
  Eigen::MatrixXf geodesic;     // Isomap only: landmarks x rows, graph distances
};

// Landmark MDS of every row on the space's own distances (O(N k D)); with
// `with_coordinates` false only the LMDS is fitted (for callers with a faster way to project).
LandmarkEmbedding embed_landmark_mds(const FeatureSpace& space, const std::vector<int>& landmarks,
                                     int dims, int threads, bool with_coordinates = true);

// Landmark Isomap: the symmetrised `neighbors`-nearest-neighbour graph, geodesic distances from
// each landmark by Dijkstra, then Landmark MDS on those. Throws xasmap::Error when the graph is
// disconnected (raise `neighbors`).
LandmarkEmbedding embed_landmark_isomap(const FeatureSpace& space,
                                        const std::vector<int>& landmarks, int neighbors,
                                        int dims, int threads);

// Runs body(begin, end) over [0, n) split into contiguous chunks on `threads` threads.
// (An exception thrown by body on any thread is rethrown here once every thread has finished.)
void parallel_for(Eigen::Index n, int threads,
                  const std::function<void(Eigen::Index, Eigen::Index)>& body);

}  // namespace xasmap
