#pragma once
// What Model::mixture reuses between calls (internal to core): the library's rows in a compact
// basis, and the windows it has been asked about.

#include <Eigen/Core>

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "xasmap/core/model.hpp"

namespace xasmap {

// The library on one window as Model::mixture reads it: library row r, processed on the window
// as a measured spectrum is (background, unit area on the window), is basis * z.row(r)^T, the
// basis's columns orthonormal over the window's points (no basis: z holds the processed rows
// themselves). share[r] is the part of the row's whole edge area that lies on the window (0: the
// row is flat or empty there and never used).
// The rows are filled one shifted copy at a time, on first use (ensure_copy: copy j's rows are
// s x copies + j), so a new window costs what the copies a spectrum tries cost, not the library's.
struct MixtureWindow {
  Window window;
  Eigen::MatrixXf basis;  // window points x k, or empty (identity)
  Eigen::Index copies = 1;
  // Filled by ensure_copy (once per copy, from any thread): z, zz and share of that copy's rows.
  mutable FeatureMatrix z;        // rows x k
  mutable std::vector<float> zz;  // |z_r|^2
  mutable std::vector<float> share;
  // Fills one copy from the model that owns this window (passed in, not captured: a Model may be
  // moved after its windows were built).
  std::function<void(const Model& model, Eigen::Index copy)> fill;
  std::unique_ptr<std::once_flag[]> filled;  // one per copy

  void ensure_copy(const Model& model, Eigen::Index copy) const {
    std::call_once(filled[static_cast<std::size_t>(copy)], [&] { fill(model, copy); });
  }
};

struct Model::MixtureCache {
  std::mutex mutex;
  bool built = false;
  // Preprocessing linear on a window (window_is_linear): every row's unit-area spectrum on the
  // whole grid as coefficients on an orthonormal basis of the grid (the leading principal
  // directions of the rows, uncentred), so that any window's rows follow from the window's
  // processing of the basis alone.
  bool linear = false;
  Eigen::MatrixXf basis;        // grid x m
  FeatureMatrix coefficients;   // rows x m
  double captured = 1.0;        // share of the rows' summed squared norm the basis holds
  std::vector<std::shared_ptr<const MixtureWindow>> windows;  // most recently used first
};

}  // namespace xasmap
