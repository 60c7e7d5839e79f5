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
  ModelOptions o;
  const config::PreprocessConfig& pp = cfg.library.preprocess;
  o.preprocess.grid = EnergyGrid::from_range(cfg.library.grid.emin_ev, cfg.library.grid.emax_ev,
                                             cfg.library.grid.step_ev);
  switch (pp.background) {
    case config::Background::kPrePostLine:
      o.preprocess.background = BackgroundKind::kPrePostLine;
      break;
    case config::Background::kEdgeStep:
      o.preprocess.background = BackgroundKind::kEdgeStep;
      break;
    case config::Background::kNone:
      o.preprocess.background = BackgroundKind::kNone;
      break;
  }
  switch (pp.normalize) {
    case config::Normalization::kArea:
      o.preprocess.normalize = NormalizationKind::kArea;
      break;
    case config::Normalization::kMax:
      o.preprocess.normalize = NormalizationKind::kMax;
      break;
    case config::Normalization::kEdgeStep:
      o.preprocess.normalize = NormalizationKind::kEdgeStep;
      break;
    case config::Normalization::kNone:
      o.preprocess.normalize = NormalizationKind::kNone;
      break;
  }
  o.preprocess.edge_window_ev = pp.edge_window_ev;
  o.preprocess.smooth_fwhm_ev = pp.smooth_fwhm_ev;
  o.preprocess.min_coverage = pp.min_coverage;
  o.max_shift_ev = pp.align == config::Alignment::kFitShift ? pp.max_shift_ev : 0.0;
  o.shift_step_ev = pp.shift_step_ev;
  o.shift_penalty = pp.shift_penalty;

  const config::EmbeddingConfig& e = cfg.embedding;
  o.method = e.method == config::EmbeddingMethod::kMds      ? EmbeddingKind::kMds
             : e.method == config::EmbeddingMethod::kIsomap ? EmbeddingKind::kIsomap
                                                            : EmbeddingKind::kLmds;
  switch (e.distance) {
    case config::DistanceKind::kEuclidean:
      o.distance = DistanceKind::kEuclidean;
      break;
    case config::DistanceKind::kCorrelation:
      o.distance = DistanceKind::kCorrelation;
      break;
    case config::DistanceKind::kDerivative:
      o.distance = DistanceKind::kDerivative;
      break;
    case config::DistanceKind::kWasserstein:
      o.distance = DistanceKind::kWasserstein;
      break;
  }
  o.landmarks = e.landmarks;
  o.landmark_choice = e.landmark_selection == config::LandmarkSelection::kRandom
                          ? LandmarkChoice::kRandom
                          : LandmarkChoice::kMaxMin;
  o.map_dims = e.map_dims;
  o.estimate_dims = e.estimate_dims;
  o.isomap_neighbors = e.isomap_neighbors;
  o.seed = e.seed;

  const config::EstimationConfig& est = cfg.estimation;
  o.neighbors = est.neighbors;
  o.weighting = est.weighting == config::Weighting::kLocalLinear ? Weighting::kLocalLinear
                                                                 : Weighting::kInverseDistance;
  o.local_linear_dims = est.local_linear_dims;
  o.report_neighbors = est.report_neighbors;
  o.novelty_threshold = est.novelty_threshold;
  o.probability_noise = est.probability_noise;
  o.probability_residual = est.probability_residual;
  o.probability_spacing = est.probability_spacing;
  o.interval_spacing = est.interval_spacing;
  o.interval_residual = est.interval_residual;
  o.interval_noise = est.interval_noise;
  o.exact_partial_rows = est.exact_partial_rows;
  o.exact_partial_novelty = est.exact_partial_novelty;
  // The simulator's nuisance settings, under the names they are reported (and written to a
  // library's manifest.csv) by; a library without such a column is unaffected.
  for (const auto& [name, sweep] : nuisance_sweeps(cfg.library.simulate)) o.nuisance_parameters.push_back(name);
  o.threads = cfg.input.workers;
  return o;
}

namespace {

std::string number_text(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.10g", v);
  return buffer;
}

// Sets `target` to `fitted` and notes the key when they differ.
template <class T, class Text>
void adopt(std::vector<std::string>& notes, const std::string& key, T& target, const T& fitted, Text text) {
  if (target == fitted) return;
  notes.push_back(key + ": configured " + text(target) + ", the model was fitted with " + text(fitted));
  target = fitted;
}

}  // namespace

std::vector<std::string> adopt_model_settings(const Model& model, config::Config& cfg) {
  std::vector<std::string> notes;
  const ModelOptions& o = model.options();
  const auto num = [](double v) { return number_text(v); };
  const auto integer = [](auto v) { return std::to_string(v); };
  const auto name = [](auto v) { return config::to_string(v); };

  config::GridConfig& g = cfg.library.grid;
  const EnergyGrid configured = EnergyGrid::from_range(g.emin_ev, g.emax_ev, g.step_ev);
  const EnergyGrid& fitted = o.preprocess.grid;
  if (configured.size != fitted.size || std::abs(configured.emin_ev - fitted.emin_ev) > 1e-9 ||
      std::abs(configured.step_ev - fitted.step_ev) > 1e-12) {
    // Rounded to 1e-9 eV so that 635 + 250 x 0.1 reads 660, not 660.0000000000001.
    const double emax = std::round((fitted.emin_ev + fitted.step_ev * (fitted.size - 1)) * 1e9) / 1e9;
    adopt(notes, "library.grid.emin_ev", g.emin_ev, fitted.emin_ev, num);
    adopt(notes, "library.grid.emax_ev", g.emax_ev, emax, num);
    adopt(notes, "library.grid.step_ev", g.step_ev, fitted.step_ev, num);
  }

  config::PreprocessConfig& pp = cfg.library.preprocess;
  const config::Background background = o.preprocess.background == BackgroundKind::kPrePostLine ? config::Background::kPrePostLine
                                        : o.preprocess.background == BackgroundKind::kEdgeStep  ? config::Background::kEdgeStep
                                                                                                : config::Background::kNone;
  adopt(notes, "library.preprocess.background", pp.background, background, name);
  const config::Normalization normalize =
      o.preprocess.normalize == NormalizationKind::kArea       ? config::Normalization::kArea
      : o.preprocess.normalize == NormalizationKind::kMax      ? config::Normalization::kMax
      : o.preprocess.normalize == NormalizationKind::kEdgeStep ? config::Normalization::kEdgeStep
                                                               : config::Normalization::kNone;
  adopt(notes, "library.preprocess.normalize", pp.normalize, normalize, name);
  adopt(notes, "library.preprocess.smooth_fwhm_ev", pp.smooth_fwhm_ev, o.preprocess.smooth_fwhm_ev, num);
  adopt(notes, "library.preprocess.edge_window_ev", pp.edge_window_ev, o.preprocess.edge_window_ev, num);
  adopt(notes, "library.preprocess.min_coverage", pp.min_coverage, o.preprocess.min_coverage, num);
  const config::Alignment align = o.max_shift_ev > 0 ? config::Alignment::kFitShift : config::Alignment::kNone;
  adopt(notes, "library.preprocess.align", pp.align, align, name);
  if (align == config::Alignment::kFitShift) {
    adopt(notes, "library.preprocess.max_shift_ev", pp.max_shift_ev, o.max_shift_ev, num);
    adopt(notes, "library.preprocess.shift_step_ev", pp.shift_step_ev, o.shift_step_ev, num);
  }

  config::EmbeddingConfig& e = cfg.embedding;
  const config::EmbeddingMethod method = o.method == EmbeddingKind::kMds      ? config::EmbeddingMethod::kMds
                                         : o.method == EmbeddingKind::kIsomap ? config::EmbeddingMethod::kIsomap
                                                                              : config::EmbeddingMethod::kLmds;
  adopt(notes, "embedding.method", e.method, method, name);
  const config::DistanceKind distance = o.distance == DistanceKind::kEuclidean     ? config::DistanceKind::kEuclidean
                                        : o.distance == DistanceKind::kDerivative  ? config::DistanceKind::kDerivative
                                        : o.distance == DistanceKind::kWasserstein ? config::DistanceKind::kWasserstein
                                                                                   : config::DistanceKind::kCorrelation;
  adopt(notes, "embedding.distance", e.distance, distance, name);
  adopt(notes, "embedding.landmarks", e.landmarks, o.landmarks, integer);
  const config::LandmarkSelection selection = o.landmark_choice == LandmarkChoice::kRandom
                                                  ? config::LandmarkSelection::kRandom
                                                  : config::LandmarkSelection::kMaxMin;
  adopt(notes, "embedding.landmark_selection", e.landmark_selection, selection, name);
  adopt(notes, "embedding.map_dims", e.map_dims, o.map_dims, integer);
  adopt(notes, "embedding.estimate_dims", e.estimate_dims, o.estimate_dims, integer);
  adopt(notes, "embedding.isomap_neighbors", e.isomap_neighbors, o.isomap_neighbors, integer);
  const auto seed = static_cast<unsigned>(o.seed);
  adopt(notes, "embedding.seed", e.seed, seed, integer);
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
                                 ? cfg.library.preprocess.max_shift_ev
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
