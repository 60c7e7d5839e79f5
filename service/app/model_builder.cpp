#include "model_builder.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "paths.hpp"
#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/session_offset.hpp"
#include "xasmap/core/spectrum.hpp"

namespace xasmap::service {

namespace {

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

ModelOptions model_options(const config::Config& cfg) {
  // The keys of library.preprocess, embedding and estimation filled cfg.model directly; what is
  // left is what other keys decide.
  ModelOptions o = cfg.model;
  o.preprocess.grid = EnergyGrid::from_range(cfg.library.grid.emin_ev, cfg.library.grid.emax_ev,
                                             cfg.library.grid.step_ev);
  if (cfg.library.preprocess.align == config::Alignment::kNone) o.max_shift_ev = 0.0;
  // The simulator's nuisance settings, under the names they are reported (and written to a
  // library's manifest.csv) by; a library without such a column is unaffected.
  o.nuisance_parameters.clear();
  for (const auto& [name, sweep] : nuisance_sweeps(cfg.library.simulate)) o.nuisance_parameters.push_back(name);
  o.threads = cfg.input.workers;
  return o;
}

std::vector<std::string> adopt_model_settings(const Model& model, config::Config& cfg) {
  const ModelOptions& o = model.options();
  config::Config used = cfg;
  const EnergyGrid& fitted = o.preprocess.grid;
  const EnergyGrid configured =
      EnergyGrid::from_range(cfg.library.grid.emin_ev, cfg.library.grid.emax_ev, cfg.library.grid.step_ev);
  if (configured.size != fitted.size || std::abs(configured.emin_ev - fitted.emin_ev) > 1e-9 ||
      std::abs(configured.step_ev - fitted.step_ev) > 1e-12) {
    used.library.grid.emin_ev = fitted.emin_ev;
    // Rounded to 1e-9 eV so that 635 + 250 x 0.1 reads 660, not 660.0000000000001.
    used.library.grid.emax_ev = std::round((fitted.emin_ev + fitted.step_ev * (fitted.size - 1)) * 1e9) / 1e9;
    used.library.grid.step_ev = fitted.step_ev;
  }
  used.model.preprocess.background = o.preprocess.background;
  used.model.preprocess.normalize = o.preprocess.normalize;
  used.model.preprocess.smooth_fwhm_ev = o.preprocess.smooth_fwhm_ev;
  used.model.preprocess.edge_window_ev = o.preprocess.edge_window_ev;
  used.model.preprocess.min_coverage = o.preprocess.min_coverage;
  used.library.preprocess.align = o.max_shift_ev > 0 ? config::Alignment::kFitShift : config::Alignment::kNone;
  if (o.max_shift_ev > 0) {  // without shifted copies the configured range means nothing, and stays
    used.model.max_shift_ev = o.max_shift_ev;
    used.model.shift_step_ev = o.shift_step_ev;
  }
  used.model.method = o.method;
  used.model.distance = o.distance;
  used.model.landmarks = o.landmarks;
  used.model.landmark_choice = o.landmark_choice;
  used.model.map_dims = o.map_dims;
  used.model.estimate_dims = o.estimate_dims;
  used.model.isomap_neighbors = o.isomap_neighbors;
  used.model.seed = o.seed;
  std::vector<std::string> notes;
  for (const config::KeyChange& k : config::differences(cfg, used, true)) {
    notes.push_back(k.path + ": configured " + k.from + ", the model was fitted with " + k.to);
  }
  cfg = std::move(used);
  return notes;
}

MixtureOptions mixture_options(const config::Config& cfg, const Model& model, std::string* how) {
  MixtureOptions o;
  const int cp = model.class_parameter();
  if (cp < 0) {
    if (how != nullptr) *how = "the library has no charge parameter: every spectrum is single phase";
    return o;
  }
  if (cfg.library.source == config::LibrarySource::kSimulate) {
    for (const std::string& name : cfg.library.simulate.ions) o.holes[parse_ion(name).charge] = holes_of_ion(name);
    if (how != nullptr) *how = "3d holes from library.simulate.ions";
    return o;
  }
  // A library from files or a model file: the element whose L3 edge the grid covers.
  std::vector<std::string> covered;
  try {
    const AtomicTable table = AtomicTable::load(data_dir() / "atomic");
    const config::GridConfig& g = cfg.library.grid;
    for (const char* e : {"Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu"}) {
      try {
        const double l3 = table.lookup(parse_ion(std::string(e) + "2+")).edge_l3_ev;
        if (l3 >= g.emin_ev && l3 <= g.emax_ev) covered.emplace_back(e);
      } catch (const Error&) {
        // not in the table
      }
    }
  } catch (const Error&) {
    // no atomic table: no holes
  }
  if (covered.size() != 1) {
    if (how != nullptr) {
      *how = "no single 3d element's L3 edge on library.grid: mixture fractions are area shares";
    }
    return o;
  }
  for (double c : model.class_values()) {
    if (c >= 1 && c <= 8 && c == std::round(c)) {
      try {
        const double h = holes_of_ion(covered.front() + std::to_string(static_cast<int>(c)) + "+");
        if (h > 0 && h <= 10) o.holes[c] = h;
      } catch (const Error&) {
        // not a 3d ion: that charge's fraction stays an area share
      }
    }
  }
  if (how != nullptr) *how = "3d holes of " + covered.front() + " ions (its L3 edge lies on library.grid)";
  return o;
}

Library build_library(const config::Config& cfg, const ProgressCallback& progress) {
  switch (cfg.library.source) {
    case config::LibrarySource::kFiles:
      return load_library(cfg.library.directory, ManifestOptions{cfg.library.categorical});
    case config::LibrarySource::kSimulate: {
      const AtomicTable table = AtomicTable::load(data_dir() / "atomic");
      const config::GridConfig& g = cfg.library.grid;
      const double margin = (cfg.library.preprocess.align == config::Alignment::kFitShift
                                 ? cfg.model.max_shift_ev
                                 : 0.0) + 2.0;
      config::GridConfig wide = g;
      wide.emin_ev = g.emin_ev - margin;
      wide.emax_ev = g.emax_ev + margin;
      const Eigen::VectorXd energy = energy_grid(wide);
      const auto spectra = simulate_library(make_jobs(cfg.library.simulate, table),
                                            broadening_of(cfg.library.simulate), energy,
                                            cfg.input.workers, progress);
      return library_from_simulation(spectra, energy);
    }
    case config::LibrarySource::kModel:
      break;
  }
  throw Error("library.source is model: there is no library to build, only a model to load");
}

Model build_model(const config::Config& cfg, BuildReport* report,
                  const ProgressCallback& progress, const FitCancelRequested& cancelled) {
  BuildReport local;
  BuildReport& r = report ? *report : local;
  const auto t0 = std::chrono::steady_clock::now();
  if (cfg.library.source == config::LibrarySource::kModel) {
    r.source = "model " + cfg.library.model_file.string();
    Model m = Model::load(cfg.library.model_file);
    m.set_estimation_options(model_options(cfg));
    r.load_s = since(t0);
    return m;
  }
  r.source = cfg.library.source == config::LibrarySource::kFiles
                 ? "files " + cfg.library.directory.string()
                 : "simulated (" + std::to_string(cfg.library.simulate.ions.size()) + " ions)";
  if (cfg.library.source == config::LibrarySource::kFiles && is_matrix_library(cfg.library.directory)) {
    // A matrix library is read straight onto the grid and fitted in place: no per-spectrum
    // objects, no copy (peak memory stays near the library's own size).
    const ModelOptions options = model_options(cfg);
    if (options.max_shift_ev > 0.0) {
      throw Error("library.preprocess.align: fit_shift needs spectra beyond the grid; the matrix library " +
                  cfg.library.directory.string() + " holds them on its own grid only (use align: none)");
    }
    r.source = "matrix " + cfg.library.directory.string();
    GridLibrary library = load_grid_library(cfg.library.directory, options.preprocess.grid,
                                            ManifestOptions{cfg.library.categorical});
    r.library_s = since(t0);
    return Model::fit(std::move(library.rows), std::move(library.parameters), std::move(library.labels),
                      std::move(library.values), options, &r.fit, cancelled);
  }
  const Library library = build_library(cfg, progress);
  r.library_s = since(t0);
  return Model::fit(library, model_options(cfg), &r.fit, cancelled);
}

double session_offset(const config::Config& cfg, const Model& model, std::string* how) {
  const config::CalibrationConfig& c = cfg.calibration;
  if (c.reference_file.empty()) {
    if (how != nullptr) *how = "calibration.session_offset_ev";
    return c.session_offset_ev;
  }
  const std::string file = c.reference_file.string();
  try {
    const OffsetCalibration cal = calibrate_offset(model, read_spectrum(file), c.reference_charge);
    if (how != nullptr) {
      char text[160];
      std::snprintf(text, sizeof text, "calibrated on %s as charge %g (its probability there %.2f)",
                    file.c_str(), c.reference_charge, cal.probability);
      *how = text;
    }
    return cal.offset_ev;
  } catch (const Error& e) {
    throw Error("calibration.reference_file " + file + ": " + e.what());
  }
}

}  // namespace xasmap::service
