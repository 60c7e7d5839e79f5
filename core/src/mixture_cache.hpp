#pragma once
// What Model::mixture reuses between calls (internal to core): the library's rows in a compact
// basis, and the windows it has been asked about.

#include <Eigen/Core>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "xasmap/core/model.hpp"

namespace xasmap {

// How Model::mixture groups the library's spectra: each one's class (an index into the model's
// class values) and setting (two spectra combine only when their shared parameters' values are
// equal: their settings are), and each setting's members.
struct MixturePartition {
  std::vector<std::string> shared;  // the shared parameters' names it was made for
  std::vector<int> class_index, setting;  // per spectrum
  std::vector<std::vector<Eigen::Index>> members;   // per setting, ascending
  // Where a window keeps a spectrum's rows within a copy: setting by setting, members in order,
  // so that each setting's rows of one copy are contiguous.
  std::vector<Eigen::Index> slot;
};

// The library on one window as Model::mixture reads it: spectrum s at shifted copy j, processed on
// the window as a measured spectrum is (background, unit area on the window), is
// basis * z.row(at(s, j))^T, the basis's columns orthonormal over the window's points (no basis: z
// holds the processed rows themselves). share[at(s, j)] is the part of the row's whole edge area
// that lies on the window (0: the row is flat or empty there and never used). The rows are kept
// copy by copy, and within a copy setting by setting (the partition's slots): what one search
// reads is contiguous.
// The rows are filled one shifted copy at a time, on first use (ensure_copy), so a new window
// costs what the copies a spectrum tries cost, not the library's.
struct MixtureWindow {
  Window window;
  std::shared_ptr<const MixturePartition> partition;
  Eigen::MatrixXf basis;  // window points x k, or empty (identity)
  Eigen::Index copies = 1;
  Eigen::Index spectra = 0;
  Eigen::Index at(Eigen::Index s, Eigen::Index copy) const {
    return copy * spectra + partition->slot[static_cast<std::size_t>(s)];
  }
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
  // The product of spectra a's and b's rows at one copy.
  float product(Eigen::Index copy, Eigen::Index a, Eigen::Index b) const {
    return z.row(at(a, copy)).dot(z.row(at(b, copy)));
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
  std::shared_ptr<const MixturePartition> partition;  // for the last shared parameters asked
  std::vector<std::shared_ptr<const MixtureWindow>> windows;  // most recently used first
};

}  // namespace xasmap
