// The daemon's hot path does not allocate once warm: preprocessing, estimation, filling the
// `estimate` message and encoding it reuse their storage. This executable counts every malloc of
// the process, so it is not built under the sanitizers (which replace malloc themselves).

#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>

#include "xasmap/core/heldout.hpp"
#include "xasmap/core/model.hpp"
#include "xasmap/protocol/results.hpp"

extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

extern "C" void* malloc(std::size_t n) {
  ++g_allocations;
  return __libc_malloc(n);
}
extern "C" void* calloc(std::size_t n, std::size_t size) {
  ++g_allocations;
  return __libc_calloc(n, size);
}
extern "C" void* realloc(void* p, std::size_t n) {
  ++g_allocations;
  return __libc_realloc(p, n);
}

using namespace xasmap;

namespace {

// Two families of line spectra (one peak, or two) with a continuous centre: a small library.
Library library() {
  Library lib;
  lib.parameters = {{"kind", true, {}}, {"centre", false, {}}};
  for (int kind = 0; kind < 2; ++kind) {
    for (int c = 0; c <= 30; ++c) {
      Spectrum s;
      s.energy_ev = Eigen::VectorXd::LinSpaced(701, 630.0, 665.0);
      s.intensity.resize(s.energy_ev.size());
      const double centre = 640.0 + 0.4 * c;
      for (Eigen::Index i = 0; i < s.energy_ev.size(); ++i) {
        const double x = (s.energy_ev[i] - centre) / 0.9, y = (s.energy_ev[i] - centre - 4.0) / 0.9;
        s.intensity[i] = std::exp(-0.5 * x * x) + (kind ? 0.6 * std::exp(-0.5 * y * y) : 0.0) + 0.01;
      }
      lib.spectra.push_back(s);
      lib.values.push_back({static_cast<double>(kind), centre});
      lib.labels.push_back("k" + std::to_string(kind) + "_c" + std::to_string(c));
    }
  }
  return lib;
}

}  // namespace

TEST_CASE("preprocess_into and estimate_into allocate nothing once warm", "[core][alloc]") {
  ModelOptions o;
  o.preprocess.grid = EnergyGrid::from_range(635, 660, 0.1);
  o.landmarks = 30;
  o.estimate_dims = 6;
  o.max_shift_ev = 0.3;  // shifted copies, as the default config has
  o.threads = 1;
  const Library lib = library();
  const Model model = Model::fit(lib, o);
  // A spectrum on the whole grid (the exact projection and local-linear path) and one on part of
  // it (the windowed-distance path), each noisy on a grid of its own; and both again with an
  // edge-step continuum, which the estimate removes and estimates again.
  struct Case {
    double lo, hi;
    bool continuum;
  };
  for (const auto& [lo, hi, continuum] : {Case{630.0, 665.0, false}, Case{638.0, 655.0, false},
                                          Case{630.0, 665.0, true}, Case{638.0, 655.0, true}}) {
    const Eigen::Index n = static_cast<Eigen::Index>((hi - lo) / 0.07) + 1;
    const Eigen::VectorXd energy = Eigen::VectorXd::LinSpaced(n, lo, lo + 0.07 * static_cast<double>(n - 1));
    Eigen::VectorXd intensity(n);
    const Spectrum& ref = lib.spectra[40];
    for (Eigen::Index i = 0; i < n; ++i) {
      const auto j = std::min<Eigen::Index>(ref.energy_ev.size() - 1,
                                            static_cast<Eigen::Index>(std::lround((energy[i] - 630.0) / 0.05)));
      intensity[i] = ref.intensity[j] + 0.01 * std::sin(37.0 * static_cast<double>(i));
    }
    if (continuum) {  // two arctangent steps, 2:1, at the reference's L3 and L2 maxima
      const WhiteLines lines = white_lines(ref.energy_ev, ref.intensity, 8.0, 14.0);
      for (Eigen::Index i = 0; i < n; ++i) {
        intensity[i] += 0.3 * lines.peak * edge_continuum(energy[i], lines.l3_ev, lines.l2_ev, 0.4);
      }
    }
    Prepared prepared;
    Estimate estimate;
    protocol::EstimateMessage message;
    protocol::Encoded encoded;
    const auto once = [&] {
      preprocess_into(energy, intensity, o.preprocess, prepared);
      model.estimate_into(prepared, estimate);
      protocol::to_estimate_message(model.parameters(), estimate, message);
      protocol::encode_into(message, encoded);
    };
    for (int i = 0; i < 3; ++i) once();  // warm: scratch and buffers take their sizes
    const long before = g_allocations.load();
    for (int i = 0; i < 50; ++i) once();
    const long allocations = g_allocations.load() - before;  // read before Catch allocates its own
    INFO("window " << lo << "-" << hi << " eV" << (continuum ? ", with a continuum" : ""));
    CHECK(allocations == 0);
    CHECK((estimate.edge_step > 0) == continuum);
    CHECK(estimate.values[0] == 1.0);  // and the answer is still right
    CHECK(std::abs(estimate.values[1] - lib.values[40][1]) < 0.3);
  }
}
