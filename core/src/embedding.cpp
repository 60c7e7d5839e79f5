#include "xasmap/core/embedding.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <exception>
#include <queue>
#include <random>
#include <thread>

#include "xasmap/core/error.hpp"

namespace xasmap {

void parallel_for(Eigen::Index n, int threads,
                  const std::function<void(Eigen::Index, Eigen::Index)>& body) {
  int t = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  t = static_cast<int>(std::clamp<Eigen::Index>(t, 1, std::max<Eigen::Index>(1, n / 256)));
  if (t == 1) {
    body(0, n);
    return;
  }
  // An exception in any chunk is caught where it happens, every thread is joined, and the first
  // one is rethrown here: a throwing body neither terminates the process nor leaks threads.
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(t));
  const auto run = [&](int i, Eigen::Index begin, Eigen::Index end) {
    try {
      body(begin, end);
    } catch (...) {
      errors[static_cast<std::size_t>(i)] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  const Eigen::Index chunk = (n + t - 1) / t;
  try {
    for (int i = 1; i < t; ++i) {
      const Eigen::Index begin = i * chunk;
      const Eigen::Index end = std::min(n, begin + chunk);
      if (begin < end) pool.emplace_back(run, i, begin, end);
    }
  } catch (...) {
    errors[0] = std::current_exception();  // a thread could not be started: finish the rest here
  }
  if (!errors[0]) run(0, 0, std::min(n, chunk));
  for (auto& th : pool) th.join();
  for (const auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

void FeatureSpace::prepare() {
  if (!is_euclidean(kind)) return;
  norms2 = rows->rowwise().squaredNorm();
}

double FeatureSpace::d2(Eigen::Index i, Eigen::Index j) const {
  return scale2 * distance2(rows->row(i).data(), rows->row(j).data(), window, step_ev, kind);
}

double FeatureSpace::d2_to(const float* q, double q_norm2, Eigen::Index i) const {
  if (is_euclidean(kind) && norms2.size() == rows->rows()) {
    const Eigen::Map<const Eigen::RowVectorXf> qv(q, rows->cols());
    const double dot = rows->row(i).dot(qv);
    return scale2 * std::max(0.0, norms2[i] + q_norm2 - 2.0 * dot);
  }
  return scale2 * distance2(q, rows->row(i).data(), window, step_ev, kind);
}

namespace {

// Top `dims` eigenpairs of -1/2 H D H, signs fixed.
void double_centred_eigen(const Eigen::MatrixXd& d2, int dims, Eigen::VectorXd& values,
                          Eigen::MatrixXd& vectors) {
  const Eigen::Index n = d2.rows();
  if (d2.cols() != n) throw Error("MDS: the squared-distance matrix is not square");
  if (dims < 1 || dims >= n) {
    throw Error("MDS: " + std::to_string(dims) + " dimensions need more than " +
                std::to_string(dims) + " points, there are " + std::to_string(n));
  }
  const Eigen::VectorXd row_mean = d2.rowwise().mean();
  const double total_mean = row_mean.mean();
  Eigen::MatrixXd b(n, n);
  for (Eigen::Index j = 0; j < n; ++j) {
    for (Eigen::Index i = 0; i < n; ++i) {
      b(i, j) = -0.5 * (d2(i, j) - row_mean[i] - row_mean[j] + total_mean);
    }
  }
  b = 0.5 * (b + b.transpose()).eval();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(b);
  if (solver.info() != Eigen::Success) {
    throw Error("MDS: the eigen-solver failed on the " + std::to_string(n) + "x" +
                std::to_string(n) + " double-centred matrix");
  }
  values.resize(dims);
  vectors.resize(n, dims);
  const double scale = std::max(1e-300, std::abs(solver.eigenvalues()[n - 1]));
  for (int d = 0; d < dims; ++d) {
    const Eigen::Index src = n - 1 - d;  // ascending order from Eigen
    values[d] = solver.eigenvalues()[src];
    if (!(values[d] > 1e-12 * scale)) {
      throw Error("MDS: only " + std::to_string(d) + " positive eigenvalues; " +
                  std::to_string(dims) + " dimensions were asked for");
    }
    Eigen::VectorXd v = solver.eigenvectors().col(src);
    Eigen::Index arg = 0;
    v.cwiseAbs().maxCoeff(&arg);
    if (v[arg] < 0) v = -v;
    vectors.col(d) = v;
  }
}

}  // namespace

ClassicalMds classical_mds(const Eigen::MatrixXd& d2, int dims) {
  ClassicalMds out;
  Eigen::MatrixXd vectors;
  double_centred_eigen(d2, dims, out.eigenvalues, vectors);
  out.coordinates = vectors * out.eigenvalues.cwiseSqrt().asDiagonal();
  return out;
}

LandmarkMds fit_landmark_mds(const Eigen::MatrixXd& landmark_d2, int dims) {
  LandmarkMds m;
  Eigen::MatrixXd vectors;
  double_centred_eigen(landmark_d2, dims, m.eigenvalues, vectors);
  m.pseudo_inverse = (vectors * m.eigenvalues.cwiseSqrt().cwiseInverse().asDiagonal()).transpose();
  m.mean_d2 = landmark_d2.colwise().mean().transpose();
  return m;
}

Eigen::VectorXd LandmarkMds::project(const Eigen::Ref<const Eigen::VectorXd>& d2) const {
  return -0.5 * pseudo_inverse * (d2 - mean_d2);
}

std::vector<int> select_landmarks(const FeatureSpace& space, int k, LandmarkChoice choice,
                                  std::uint64_t seed, int threads) {
  const Eigen::Index n = space.size();
  if (k < 1 || k > n) {
    throw Error("landmarks: " + std::to_string(k) + " landmarks from " + std::to_string(n) +
                " rows");
  }
  std::mt19937_64 rng(seed);
  if (choice == LandmarkChoice::kRandom) {
    std::vector<int> all(static_cast<std::size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    all.resize(static_cast<std::size_t>(k));
    return all;
  }
  std::vector<int> chosen;
  chosen.push_back(static_cast<int>(std::uniform_int_distribution<Eigen::Index>(0, n - 1)(rng)));
  // min_d[i]: distance (not squared) to the nearest landmark; owner[i]: which landmark.
  std::vector<float> min_d(static_cast<std::size_t>(n), std::numeric_limits<float>::infinity());
  std::vector<int> owner(static_cast<std::size_t>(n), 0);
  std::vector<float> between;  // distances from the newest landmark to each earlier one
  for (int step = 0; step < k; ++step) {
    const int l = chosen.back();
    const float* lrow = space.rows->row(l).data();
    const double l_norm2 = is_euclidean(space.kind) ? space.norms2[l] : 0.0;
    between.assign(chosen.size(), 0.0f);
    for (std::size_t j = 0; j + 1 < chosen.size(); ++j) {
      between[j] = static_cast<float>(std::sqrt(space.d2(l, chosen[j])));
    }
    const int landmark_index = static_cast<int>(chosen.size() - 1);
    // Per-thread farthest row.
    std::vector<std::pair<float, Eigen::Index>> best(64, {-1.0f, 0});
    std::atomic<int> slot{0};
    parallel_for(n, threads, [&](Eigen::Index begin, Eigen::Index end) {
      std::pair<float, Eigen::Index> local{-1.0f, begin};
      for (Eigen::Index i = begin; i < end; ++i) {
        float& m = min_d[static_cast<std::size_t>(i)];
        // Triangle inequality: d(i, l) >= d(l, owner) - d(i, owner) >= m when d(l, owner) >= 2m.
        const bool can_skip = std::isfinite(m) &&
                              between[static_cast<std::size_t>(owner[static_cast<std::size_t>(i)])] >= 2.0f * m;
        if (!can_skip) {
          const float d = static_cast<float>(std::sqrt(space.d2_to(lrow, l_norm2, i)));
          if (d < m) {
            m = d;
            owner[static_cast<std::size_t>(i)] = landmark_index;
          }
        }
        if (m > local.first) local = {m, i};
      }
      best[static_cast<std::size_t>(slot.fetch_add(1))] = local;
    });
    if (step + 1 == k) break;
    std::pair<float, Eigen::Index> far{-1.0f, 0};
    for (int s = 0; s < slot.load(); ++s) {
      if (best[static_cast<std::size_t>(s)].first > far.first) far = best[static_cast<std::size_t>(s)];
    }
    if (far.first <= 0.0f) {
      throw Error("landmarks: only " + std::to_string(chosen.size()) +
                  " distinct rows; fewer landmarks are needed");
    }
    chosen.push_back(static_cast<int>(far.second));
  }
  return chosen;
}

Graph knn_graph(const FeatureSpace& space, int k, int threads) {
  const Eigen::Index n = space.size();
  if (k < 1 || k >= n) throw Error("knn graph: k = " + std::to_string(k) + " for " + std::to_string(n) + " rows");
  std::vector<std::vector<std::pair<int, float>>> nearest(static_cast<std::size_t>(n));
  parallel_for(n, threads, [&](Eigen::Index begin, Eigen::Index end) {
    Eigen::VectorXf d2(n);
    std::vector<int> order(static_cast<std::size_t>(n));
    for (Eigen::Index i = begin; i < end; ++i) {
      const float* row = space.rows->row(i).data();
      const double norm2 = is_euclidean(space.kind) ? space.norms2[i] : 0.0;
      for (Eigen::Index j = 0; j < n; ++j) d2[j] = static_cast<float>(space.d2_to(row, norm2, j));
      d2[i] = std::numeric_limits<float>::infinity();
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](int a, int b) { return d2[a] < d2[b]; });
      auto& out = nearest[static_cast<std::size_t>(i)];
      for (int m = 0; m < k; ++m) {
        out.emplace_back(order[static_cast<std::size_t>(m)], std::sqrt(d2[order[static_cast<std::size_t>(m)]]));
      }
    }
  });
  Graph g;
  g.adjacency.resize(static_cast<std::size_t>(n));
  for (Eigen::Index i = 0; i < n; ++i) {
    for (const auto& [j, d] : nearest[static_cast<std::size_t>(i)]) {
      g.adjacency[static_cast<std::size_t>(i)].emplace_back(j, d);
      g.adjacency[static_cast<std::size_t>(j)].emplace_back(static_cast<int>(i), d);
    }
  }
  for (auto& edges : g.adjacency) {
    std::sort(edges.begin(), edges.end());
    edges.erase(std::unique(edges.begin(), edges.end(),
                            [](const auto& a, const auto& b) { return a.first == b.first; }),
                edges.end());
  }
  return g;
}

Eigen::MatrixXf geodesic_distances(const Graph& graph, const std::vector<int>& sources,
                                   int threads) {
  const auto n = static_cast<Eigen::Index>(graph.adjacency.size());
  Eigen::MatrixXf out(static_cast<Eigen::Index>(sources.size()), n);
  parallel_for(static_cast<Eigen::Index>(sources.size()), threads,
               [&](Eigen::Index begin, Eigen::Index end) {
                 std::vector<float> dist(static_cast<std::size_t>(n));
                 using Item = std::pair<float, int>;
                 for (Eigen::Index s = begin; s < end; ++s) {
                   std::fill(dist.begin(), dist.end(), std::numeric_limits<float>::infinity());
                   std::priority_queue<Item, std::vector<Item>, std::greater<>> queue;
                   dist[static_cast<std::size_t>(sources[static_cast<std::size_t>(s)])] = 0.0f;
                   queue.emplace(0.0f, sources[static_cast<std::size_t>(s)]);
                   while (!queue.empty()) {
                     const auto [d, u] = queue.top();
                     queue.pop();
                     if (d > dist[static_cast<std::size_t>(u)]) continue;
                     for (const auto& [v, w] : graph.adjacency[static_cast<std::size_t>(u)]) {
                       const float nd = d + w;
                       if (nd < dist[static_cast<std::size_t>(v)]) {
                         dist[static_cast<std::size_t>(v)] = nd;
                         queue.emplace(nd, v);
                       }
                     }
                   }
                   for (Eigen::Index j = 0; j < n; ++j) out(s, j) = dist[static_cast<std::size_t>(j)];
                 }
               });
  return out;
}

LandmarkEmbedding embed_landmark_mds(const FeatureSpace& space, const std::vector<int>& landmarks,
                                     int dims, int threads, bool with_coordinates) {
  LandmarkEmbedding out;
  out.landmarks = landmarks;
  const auto k = static_cast<Eigen::Index>(landmarks.size());
  Eigen::MatrixXd d2(k, k);
  for (Eigen::Index a = 0; a < k; ++a) {
    d2(a, a) = 0.0;
    for (Eigen::Index b = a + 1; b < k; ++b) {
      d2(a, b) = d2(b, a) = space.d2(landmarks[static_cast<std::size_t>(a)], landmarks[static_cast<std::size_t>(b)]);
    }
  }
  out.lmds = fit_landmark_mds(d2, dims);
  if (!with_coordinates) return out;
  out.coordinates.resize(space.size(), dims);
  parallel_for(space.size(), threads, [&](Eigen::Index begin, Eigen::Index end) {
    Eigen::VectorXd delta(k);
    for (Eigen::Index r = begin; r < end; ++r) {
      for (Eigen::Index j = 0; j < k; ++j) delta[j] = space.d2(r, landmarks[static_cast<std::size_t>(j)]);
      out.coordinates.row(r) = out.lmds.project(delta).cast<float>().transpose();
    }
  });
  return out;
}

LandmarkEmbedding embed_landmark_isomap(const FeatureSpace& space,
                                        const std::vector<int>& landmarks, int neighbors,
                                        int dims, int threads) {
  LandmarkEmbedding out;
  out.landmarks = landmarks;
  const Graph graph = knn_graph(space, std::min<int>(neighbors, static_cast<int>(space.size()) - 1), threads);
  out.geodesic = geodesic_distances(graph, landmarks, threads);
  if (!out.geodesic.allFinite()) {
    throw Error("isomap: the " + std::to_string(neighbors) +
                "-nearest-neighbour graph is disconnected; raise embedding.isomap_neighbors");
  }
  const auto k = static_cast<Eigen::Index>(landmarks.size());
  Eigen::MatrixXd d2(k, k);
  for (Eigen::Index a = 0; a < k; ++a) {
    for (Eigen::Index b = 0; b < k; ++b) {
      const double g = 0.5 * (out.geodesic(a, landmarks[static_cast<std::size_t>(b)]) +
                              out.geodesic(b, landmarks[static_cast<std::size_t>(a)]));
      d2(a, b) = g * g;
    }
  }
  out.lmds = fit_landmark_mds(d2, dims);
  out.coordinates.resize(space.size(), dims);
  parallel_for(space.size(), threads, [&](Eigen::Index begin, Eigen::Index end) {
    for (Eigen::Index r = begin; r < end; ++r) {
      const Eigen::VectorXd g = out.geodesic.col(r).cast<double>();
      out.coordinates.row(r) = out.lmds.project(g.cwiseProduct(g)).cast<float>().transpose();
    }
  });
  return out;
}

}  // namespace xasmap
