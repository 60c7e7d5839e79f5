// Per-spectrum cost of the daemon's hot path on a saved model, one thread: preprocess_into and
// estimate_into of spectra as `xasmap bench` offers them (noisy library spectra, over the whole
// library range or a random part of it). Prints the medians and p90.
//
//   bench_model_path MODEL LIBRARY_DIR [full|partial] [COUNT]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "feed_sources.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/model.hpp"

using namespace xasmap;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_model_path MODEL LIBRARY_DIR [full|partial] [COUNT]\n");
    return 64;
  }
  const Model model = Model::load(argv[1]);
  const Library lib = load_library(argv[2]);
  const bool full = argc > 3 && std::string(argv[3]) == "full";
  const int count = argc > 4 ? std::stoi(argv[4]) : 20000;
  std::mt19937_64 rng(1);
  service::Perturbation perturb;
  perturb.full_range = full;
  std::vector<service::Source> sources;
  for (int i = 0; i < 256; ++i) {
    sources.push_back(service::measured_like(lib.spectra[rng() % lib.spectra.size()], perturb, rng));
  }
  Prepared prep;
  Estimate e;
  std::vector<double> pre, est;
  pre.reserve(static_cast<std::size_t>(count));
  est.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const auto& s = sources[static_cast<std::size_t>(i) % sources.size()];
    const Eigen::Map<const Eigen::VectorXd> energy(s.energy.data(), static_cast<Eigen::Index>(s.energy.size()));
    const Eigen::Map<const Eigen::VectorXd> intensity(s.intensity.data(), static_cast<Eigen::Index>(s.intensity.size()));
    const auto t0 = std::chrono::steady_clock::now();
    preprocess_into(energy, intensity, model.options().preprocess, prep);
    const auto t1 = std::chrono::steady_clock::now();
    model.estimate_into(prep, e);
    const auto t2 = std::chrono::steady_clock::now();
    pre.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    est.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
  }
  std::sort(pre.begin(), pre.end());
  std::sort(est.begin(), est.end());
  const auto at = [](const std::vector<double>& v, double q) { return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))]; };
  std::printf("%s range: preprocess p50 %.2f us, estimate p50 %.2f us, p90 %.2f us (%d spectra)\n",
              full ? "whole" : "part of the", at(pre, 0.5), at(est, 0.5), at(est, 0.9), count);
  return 0;
}
