#pragma once
// A stack's maps, pixel by pixel: what xasmapd answers a stack message with (daemon/workers.cpp)
// and what `xasmap estimate STACK.h5` writes as NeXus (tools/cmd_estimate.cpp), from one loop, so
// that the two give the same maps for the same pixels.

#include <Eigen/Core>

#include <cstddef>
#include <functional>

#include "xasmap/core/mixture.hpp"
#include "xasmap/core/model.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::service {

// Pixel px's intensities on the stack's energies: a view of the stack's own storage, or `scratch`
// filled with them (e.g. float storage widened).
using PixelSource = std::function<Eigen::Ref<const Eigen::VectorXd>(std::size_t px, Eigen::VectorXd& scratch)>;

// Runs work(begin, end) over [0, pixels) in chunks of `chunk` pixels, on the threads it has, and
// returns when every chunk is done.
using ChunkWork = std::function<void(std::size_t begin, std::size_t end)>;
using ChunkRunner = std::function<void(std::size_t pixels, std::size_t chunk, const ChunkWork& work)>;

struct StackMapsOptions {
  double session_offset_ev = 0;  // one offset for the whole stack (core's stack_offset_ev)
  // Mean valence and each charge's fraction per pixel when set (the model's mixture cache
  // prepared before: Model::prepare_mixture).
  const MixtureOptions* mixture = nullptr;
  std::size_t chunk = 64;
};

// Fills m's params (and `valence` with mixtures), uncertainty, confidence, categories, novelty,
// edge_step (with the model's edge-step fit), fractions and rejected_pixels (pixels whose preprocessing refused them: NaN in every map). The
// id, seq, shape, latency and meta are the caller's.
void estimate_stack_maps(const Model& model, const Eigen::Ref<const Eigen::VectorXd>& energy, std::size_t pixels,
                         const PixelSource& pixel, const StackMapsOptions& options, const ChunkRunner& run,
                         protocol::EstimateMapMessage& m);

}  // namespace xasmap::service
