// xasmap scale-library: the synthetic beamline-scale library (core/scale_library.hpp) written as
// a matrix library (spectra.npy, energy.npy, manifest.csv), for start-up and throughput
// benchmarks. xasmapd fits it with library.source files and library.directory pointing at it.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "feed_sources.hpp"
#include "library_builder.hpp"
#include "paths.hpp"
#include "progress.hpp"
#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/scale_library.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kScaleLibraryOptions = {
    {"out", true, "DIR", "output folder: spectra.npy, energy.npy, manifest.csv (required)"},
    {"spectra", true, "N", "library spectra (default 600000)"},
    {"points", true, "D", "energy points over 635-660 eV (default 500)"},
    {"tendq-step", true, "EV", "10Dq step of the simulated nodes, interpolated between (default 0.1)"},
    {"slater", true, "X,...", "Slater-integral scalings swept (default 0.7,0.8,0.9)"},
    {"ds-dt", true, "DS:DT,...", "tetragonal (Ds, Dt) pairs swept, eV (default 0:0,0.05:0.01,-0.05:-0.01)"},
    {"seed", true, "N", "random seed (default 1)"},
    {"threads", true, "N", "worker threads (default: all cores)"},
};

namespace {

double number_in(const std::string& text, const char* option) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v)) {
    throw UsageError(std::string("--") + option + ": '" + text + "' is not a number");
  }
  return v;
}

}  // namespace

int run_scale_library(const CliArgs& args) {
  if (!args.positionals().empty()) throw UsageError("unexpected argument '" + args.positionals().front() + "'");
  const auto out_dir = args.value("out");
  if (!out_dir) throw UsageError("scale-library needs --out DIR");
  ScaleLibraryOptions o;
  o.spectra = args.integer("spectra", o.spectra);
  o.points = static_cast<int>(args.integer("points", o.points));
  o.tendq_step_ev = args.number("tendq-step", o.tendq_step_ev);
  o.seed = static_cast<std::uint64_t>(args.integer("seed", 1));
  o.threads = static_cast<int>(args.integer("threads", 0));
  if (const auto v = args.value("slater")) {
    o.slater_scales.clear();
    for (const auto& f : split(*v, ',')) o.slater_scales.push_back(number_in(f, "slater"));
  }
  if (const auto v = args.value("ds-dt")) {
    o.ds_dt_ev.clear();
    for (const auto& f : split(*v, ',')) {
      const auto parts = split(f, ':');
      if (parts.size() != 2) throw UsageError("--ds-dt: expected DS:DT pairs, got '" + f + "'");
      o.ds_dt_ev.push_back({number_in(parts[0], "ds-dt"), number_in(parts[1], "ds-dt")});
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  ScaleLibrary lib;
  {
    ProgressBar bar("simulating nodes");
    lib = make_scale_library(o, AtomicTable::load(data_dir() / "atomic"), [&bar](int done, int total) { bar.update(done, total); });
  }
  const auto t1 = std::chrono::steady_clock::now();
  save_matrix_library(*out_dir, lib.energy_ev, lib.library);
  const double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const double mib = static_cast<double>(lib.library.rows.size()) * sizeof(float) / (1024.0 * 1024.0);
  std::printf("scale-library: %lld spectra x %d points (%.1f MiB float32) from %d simulations (%d broadened nodes) "
              "in %s\n  simulate %.2f s, rows %.2f s, write %.2f s, total %.2f s\n",
              static_cast<long long>(o.spectra), o.points, mib, lib.simulated, lib.nodes, out_dir->c_str(),
              lib.simulate_s, lib.rows_s, write_s,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}

}  // namespace xasmap::service
