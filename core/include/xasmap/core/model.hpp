#pragma once
// A fitted model: a preprocessed library, its embedding, and the estimator that places a new
// spectrum in the embedding and reads its parameters off its neighbours.
//
// Fit: preprocess every library spectrum on the full grid (optionally adding copies shifted in
// energy, the calibration offset as a nuisance parameter), transform to distance features, choose
// landmarks, embed (classical MDS = Landmark MDS with every row a landmark; LMDS; or landmark
// Isomap), and index the estimation coordinates in a kd-tree.
//
// Estimate: preprocess the spectrum on the window it covers, project it out of sample in O(k D)
// (one D x d affine map for Euclidean-type distances on the full grid), find its neighbours in the
// kd-tree, and estimate each parameter from them. Every call is const and thread-safe.

#include <Eigen/Core>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "xasmap/core/embedding.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/mixture.hpp"
#include "xasmap/core/preprocess.hpp"

namespace xasmap {

struct MixtureWindow;  // the library on one window, for mixtures (core internal)
struct EstimateScratch;  // per-thread work buffers of Model::estimate_into (core internal)
struct EstimateQuery;    // one spectrum's features and window, as the estimate's stages see it

enum class EmbeddingKind { kMds, kLmds, kIsomap };
enum class Weighting { kInverseDistance, kLocalLinear };

const char* to_string(EmbeddingKind kind);

struct ModelOptions {
  PreprocessOptions preprocess;
  DistanceKind distance = DistanceKind::kCorrelation;
  EmbeddingKind method = EmbeddingKind::kLmds;
  int landmarks = 64;                // LMDS, Isomap; MDS uses every row
  LandmarkChoice landmark_choice = LandmarkChoice::kMaxMin;
  int map_dims = 2;                  // the first map_dims of the estimation coordinates
  int estimate_dims = 12;
  int isomap_neighbors = 8;
  std::uint64_t seed = 1;
  // Energy calibration offset as a nuisance parameter: when max_shift_ev > 0 the library also
  // holds copies shifted by every multiple of shift_step_ev in [-max_shift_ev, max_shift_ev]
  // (21 rows per spectrum at the defaults); 0: spectra are compared as they are.
  double max_shift_ev = 0.5;
  double shift_step_ev = 0.05;
  // Prior against large offsets: a copy shifted by s ranks as if its distance were
  // sqrt(d^2 + (shift_penalty * median NN distance * s / shift_step_ev)^2).
  double shift_penalty = 0.5;
  int neighbors = 4;
  Weighting weighting = Weighting::kLocalLinear;
  int local_linear_dims = 2;         // principal directions the local-linear fit uses
  int report_neighbors = 3;
  double novelty_threshold = 4.0;
  // Probabilities of the first categorical parameter (the charge): P(c) is proportional to
  // exp(-(D2_c - D2_min) / (2 T)), D2_c the best ranked squared distance of a library spectrum of
  // value c, with the temperature T = probability_noise * s2 + probability_residual * r2 +
  // probability_spacing * m2: s2 the spectrum's noise per feature (the noise's expected squared
  // distance over the window's points), r2 the squared distance the best match leaves unexplained
  // beyond the noise, m the library's median neighbour distance. A white-noise likelihood alone
  // would be probability_noise = 1 and the rest 0; fitted on held-out spectra of other model
  // settings (docs/validation.md), the noise term is 470 times that and the unexplained residual
  // counts too: neighbouring library spectra differ by less than the model's own error.
  double probability_noise = 120.0;
  double probability_residual = 0.46;
  double probability_spacing = 0.0;
  // 68 % intervals of continuous parameters: sigma^2 = u^2 + g^2 (interval_spacing^2 +
  // interval_residual^2 novelty^2 + interval_noise^2 noise_spacings^2), u the neighbours' weighted
  // spread (or the local-linear fit's residual), g the parameter's library grid step: a floor, how
  // poorly the library describes the spectrum, and how far its noise alone moves it, each in
  // library spacings. Calibrated on held-out spectra.
  double interval_spacing = 0.39;
  double interval_residual = 0.58;
  double interval_noise = 0.2;
  // A spectrum on a partial window whose best embedding candidate lies more than
  // exact_partial_novelty median neighbour distances beyond its noise (its novelty) is ranked
  // against every library row exactly, when the library holds at most exact_partial_rows rows
  // (shifted copies included): its projection is approximate and can land far from its true
  // neighbours. Larger libraries keep the embedding's candidates.
  long long exact_partial_rows = 20000;
  double exact_partial_novelty = 2.0;
  // The L3/L2 edge-step continuum (Model::estimate_into, docs/estimation.md): a measured spectrum
  // often rises to a higher level after each edge (2p to continuum states), which a multiplet
  // library does not hold. With edge_step_fit the continuum, two arctangent steps of 2:1 at the
  // best match's L3 and L2 maxima, each of half width edge_step_width_ev, is fitted together with
  // the best match, removed from the spectrum when it is significant, and the spectrum estimated
  // again. Needs a line or no background and area or no normalisation (window_is_linear).
  bool edge_step_fit = true;
  double edge_step_width_ev = 0.5;
  // Parameters that only set a spectrum's nuisance settings (slater_scale, temperature_k, ...):
  // the novelty's unit is the library's spacing along the other parameters, not the distance
  // from a spectrum to its own variants. Used by fit() only (the unit is saved with the model).
  std::vector<std::string> nuisance_parameters;
  int threads = 0;                   // <= 0: every core
  bool operator==(const ModelOptions&) const = default;
};

// Seconds spent in each fitting stage, and the sizes involved.
struct FitReport {
  double preprocess_s = 0, landmarks_s = 0, embed_s = 0, index_s = 0;
  std::int64_t rows = 0;             // library rows, with shifted copies
  int grid_points = 0;
  int landmarks = 0;
};

struct Neighbor {
  int spectrum = 0;                  // index into the library
  std::string label;
  std::vector<double> values;        // its parameters
  double distance = 0;               // feature-space distance on the query's window
  double shift_ev = 0;               // the energy shift of the matching copy
};

struct Estimate {
  std::vector<double> values;        // per parameter (categorical: the winning value)
  std::vector<double> uncertainty;   // continuous: weighted spread; categorical: NaN
  std::vector<double> confidence;    // categorical: winning weight share in [0, 1]; else NaN
  Eigen::VectorXd map;               // map coordinates: the projection; on a partial window the
                                     // neighbours' weighted mean position (see estimate())
  Eigen::VectorXd coordinates;       // estimation coordinates
  std::vector<Neighbor> neighbors;   // report_neighbors nearest, nearest first
  double novelty = 0;                // noise-corrected distance to the nearest / median NN
  bool in_library = true;            // novelty <= novelty_threshold
  double noise_sigma = 0;            // estimated from the spectrum itself
  double coverage = 1;               // fraction of the grid covered
  double energy_shift_ev = 0;        // estimated calibration offset (0 without shifted copies)
  // The edge-step continuum removed before the estimate (ModelOptions::edge_step_fit): its height
  // over the spectrum's highest point, both above the background line; 0 when none was removed.
  double edge_step = 0;

  // The evidence behind the probabilities, for calibration and diagnostics. `class_parameter` is
  // the first categorical parameter (-1: none); per value of it (ascending), the best ranked
  // squared distance of a library spectrum of that value and its probability.
  int class_parameter = -1;
  std::vector<double> class_values;
  std::vector<double> class_distance2;
  std::vector<double> class_probability;
  double noise_distance2 = 0;        // the squared distance the spectrum's noise is expected to add
  double noise_spacings = 0;         // that distance in the novelty's unit (library spacings)
  int window_points = 0;             // grid points compared
  std::vector<double> spread;        // continuous: u before the interval terms; else NaN
  std::vector<double> grid_step;     // continuous: the parameter's library grid step g; else NaN
};

// A model file that can never load as it is: not a model file, another format version, truncated,
// or corrupt. (A file that cannot be opened is a plain xasmap::Error: it may appear later.)
class ModelFileError : public Error {
 public:
  using Error::Error;
  ~ModelFileError() override;
};

// What Model::check_file() found in a model file's header.
struct ModelFileInfo {
  std::uint32_t format_version = 0;
  std::uint64_t payload_bytes = 0;
  std::uint64_t checksum = 0;  // the payload's, as stored in the file (and verified)
};

// Called while a model file is written with the payload bytes written so far.
using SaveProgress = std::function<void(std::uint64_t bytes)>;

// Asked by Model::fit() at the start of each fitting stage and every few rows inside its long
// loops (preprocessing, distance features, the novelty sample), from the fitting threads at once,
// so it must be thread-safe and cheap; once it answers true, fit() stops and throws FitCancelled.
// Landmark selection and the landmark MDS solve run to their end before the next check.
using FitCancelRequested = std::function<bool()>;

// Thrown by Model::fit() when its FitCancelRequested answered true.
class FitCancelled : public Error {
 public:
  FitCancelled() : Error("model: the fit was cancelled") {}
};

class Model {
 public:
  // Throws xasmap::Error when the library is too small for the options or a solver fails, and
  // PreprocessError naming the library label when a library spectrum cannot be preprocessed.
  static Model fit(const Library& library, const ModelOptions& options,
                   FitReport* report = nullptr, const FitCancelRequested& cancelled = {});

  // Fits a library whose spectra are already sampled on options.preprocess.grid, one per row of
  // `on_grid` (taken over and preprocessed in place: no copy of the library is made). For large
  // libraries; needs max_shift_ev == 0. `values[i]` holds the parameters of row i.
  static Model fit(FeatureMatrix&& on_grid, std::vector<ParameterInfo> parameters,
                   std::vector<std::string> labels, std::vector<std::vector<double>> values,
                   const ModelOptions& options, FitReport* report = nullptr,
                   const FitCancelRequested& cancelled = {});

  // Throws PreprocessError (with its reason) when the spectrum cannot be judged.
  Estimate estimate(const Spectrum& spectrum) const;
  // The same on a session whose energy scale is off by `session_offset_ev` (measured = true +
  // offset): the spectrum is read on the library's scale, the per-spectrum shift is searched
  // around the session offset, and energy_shift_ev reports the whole offset.
  Estimate estimate(const Spectrum& spectrum, double session_offset_ev) const;
  Estimate estimate(const Prepared& prepared) const;
  // The same into `out`, reusing its storage and per-thread scratch: once warm, it does not
  // allocate (the daemon's hot path). Throws as estimate() does.
  void estimate_into(const Prepared& prepared, Estimate& out) const;
  // The same, with the exact ranking of partial windows (ModelOptions::exact_partial_rows) only
  // when `exact_partial`: without it, a partial window is ranked on the embedding's candidates
  // alone (estimate_over_offsets tries offsets that way, then ranks the one it keeps exactly).
  void estimate_into(const Prepared& prepared, Estimate& out, bool exact_partial) const;
  // Sets e.class_probability from e.class_distance2 (with e.noise_distance2 and e.window_points),
  // and the class parameter's value and confidence to the most probable class: the last step of
  // estimate_into, for callers that combine the class distances of several estimates of one
  // spectrum (estimate_over_offsets).
  void class_probabilities(Estimate& e) const;
  // Mixed valence (mixture.hpp): `prepared` as two library spectra of different classes, read at
  // the shift of `e`, its estimate by estimate_into() on the same `prepared` (before any session
  // offset is added to it). Without a class parameter of two or more values: single phase, from e.
  Mixture mixture(const Prepared& prepared, const Estimate& e, const MixtureOptions& options) const;
  // Builds what mixture() reuses (done by its first call otherwise, which then takes a few tenths
  // of a second on the default library): the library rows in a compact orthonormal basis
  // (preprocessing that is linear on a window, window_is_linear) and the whole grid's window.
  // Thread-safe; a no-op once done.
  void prepare_mixture() const;
  // The projection alone: the spectrum's coordinates in the estimation embedding (the first
  // step of estimate_into; for benchmarks and diagnostics). Does not allocate once warm.
  void project_into(const Prepared& prepared, Eigen::VectorXd& coordinates) const;

  // Versioned binary file with a checksum. load() refuses another format version, a truncated
  // file or a corrupt one with a ModelFileError that says which (an unreadable file: Error).
  // save() writes `file` in place: callers that must never leave a damaged file behind write a
  // temporary file and rename it (xasmap::service::write_model_file).
  void save(const std::filesystem::path& file, const SaveProgress& progress = {}) const;
  static Model load(const std::filesystem::path& file);
  // Checks a model file's header (magic, format version, length) and its checksum without
  // reading its fields: what load() checks first. Throws as load() does.
  static ModelFileInfo check_file(const std::filesystem::path& file);
  // The payload checksum of the file load() read this model from (verified there); none for a
  // model fitted in this process.
  std::optional<std::uint64_t> file_checksum() const { return file_checksum_; }

  // Replaces the estimation options (neighbors, weighting, local_linear_dims, report_neighbors,
  // novelty_threshold, shift_penalty, the probability and interval constants, the exact ranking
  // of partial windows, the edge-step fit, threads) with those of `from`; the fitted parts stay.
  void set_estimation_options(const ModelOptions& from);

  const ModelOptions& options() const { return options_; }
  const std::vector<ParameterInfo>& parameters() const { return parameters_; }
  const std::vector<std::string>& labels() const { return labels_; }
  const std::vector<std::vector<double>>& values() const { return values_; }
  std::size_t library_size() const { return labels_.size(); }
  std::int64_t rows() const { return prepared_.rows(); }
  int landmark_count() const { return static_cast<int>(landmarks_.size()); }
  // Map coordinates of every library spectrum (its unshifted copy): library_size() x map_dims.
  Eigen::MatrixXd library_map() const;
  // Median over library spectra of the distance to the nearest other spectrum.
  double median_neighbor_distance() const { return median_nn_; }
  // The novelty's unit: the median distance from a library spectrum to its nearest neighbour
  // that differs from it in a parameter asked for (ModelOptions::nuisance_parameters aside).
  double novelty_scale() const { return novelty_scale_; }
  // The first categorical parameter (-1: none), whose values get probabilities.
  int class_parameter() const { return class_parameter_; }
  // Its values in the library, ascending (empty without one).
  const std::vector<double>& class_values() const { return class_values_; }

  Model();
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

 private:
  struct Index;  // kd-trees, rebuilt after fit and load

  // Everything after the rows are preprocessed: features, landmarks, embedding, indexes.
  void fit_embedding(FitReport* report, const FitCancelRequested& cancelled);
  // The distance features of library row r on `window` (`full`: the whole grid).
  RowVectorXf features_of(Eigen::Index r, const Window& window, bool full) const;
  // Squared feature distance between query features z and library row r on `window`, without
  // copying the row when the window is the whole grid.
  double row_distance2(const RowVectorXf& z, Eigen::Index r, const Window& window, bool full) const;
  void build_indexes();
  void project_into(const RowVectorXf& z, const Window& window, bool full, Eigen::VectorXd& y) const;
  std::vector<std::pair<int, float>> embedding_neighbors(const Eigen::VectorXd& y, int k) const;

  // The stages of estimate_into() that read the model (the rest are xasmap::stages):
  // rank_rows: the candidates sc.cand ranked by exact window distance plus the shift prior, into
  // sc.all (appended with `append`); rank_every_row: a partial window's exact ranking of every
  // library spectrum (coarse shifts), then every copy of the best `refine` spectra and the best two
  // of each class; class_distances: each class's best ranked squared distance; fit_parameters:
  // weights, local-linear fit or weighted mean, vote and intervals of every parameter.
  void rank_rows(const EstimateQuery& q, EstimateScratch& sc, bool append) const;
  void rank_every_row(const EstimateQuery& q, std::size_t refine, EstimateScratch& sc) const;
  void class_distances(const EstimateQuery& q, std::size_t copies, EstimateScratch& sc, Estimate& e) const;
  void fit_parameters(const EstimateQuery& q, EstimateScratch& sc, Estimate& e) const;
  // One estimate of `prepared` as it is (estimate_into without the edge-step continuum).
  void estimate_once(const Prepared& prepared, Estimate& e, bool exact_partial) const;
  // The edge-step continuum of `prepared`, profiled over the last estimate's ranked candidates:
  // its height j (in the prepared values' units; 0 when not significant or not positive), `step`,
  // the continuum's shape after the window's background on the grid (zero outside the window),
  // and `matched`, the candidate row that fits best with it (-1: none).
  double fit_edge_step(const Prepared& prepared, RowVectorXf& step, Eigen::Index& matched) const;

  ModelOptions options_;
  std::vector<ParameterInfo> parameters_;
  std::vector<std::string> labels_;
  std::vector<std::vector<double>> values_;
  // values_ in one block, spectrum-major (built with the indexes): one memory read per neighbour
  // on the hot path instead of two.
  std::vector<double> flat_values_;
  // rows x grid, preprocessed on the full grid. With the correlation distance the rows hold their
  // correlation features instead (rows_are_features_): the window operation (line background and
  // normalisation) is blind to the per-row offset and scale that separates the two, so nothing is
  // lost and no second copy of the library is needed.
  FeatureMatrix prepared_;
  bool rows_are_features_ = false;
  // Tells models apart in the per-thread caches (a reloaded model may reuse an old one's address).
  std::uint64_t instance_id_ = new_instance_id();
  static std::uint64_t new_instance_id();
  std::vector<std::int32_t> row_spectrum_;
  std::vector<float> row_shift_;
  std::vector<std::int32_t> landmarks_;  // row indices
  LandmarkMds lmds_;
  FeatureMatrix coordinates_;          // rows x estimate_dims, row-major: one point per cache line
  FeatureMatrix landmark_features_;    // k x grid: transformed, full grid
  Eigen::MatrixXf affine_;             // dims x grid (Euclidean kinds, not Isomap)
  Eigen::VectorXf offset_;             // dims
  Eigen::MatrixXf geodesic_;           // Isomap: k x rows
  LandmarkMds aux_lmds_;               // Isomap: feature-space LMDS for the neighbour search
  Eigen::MatrixXf aux_coordinates_;    // Isomap: rows x aux dims
  Eigen::MatrixXf aux_affine_;
  Eigen::VectorXf aux_offset_;
  std::optional<std::uint64_t> file_checksum_;
  double median_nn_ = 1.0;
  double novelty_scale_ = 1.0;  // median_nn_ along the asked parameters (not nuisance variants)
  // Built with the indexes: the first categorical parameter, its values (ascending) and every
  // continuous parameter's grid step (the median gap between its sorted distinct values).
  int class_parameter_ = -1;
  std::vector<double> class_values_;
  std::vector<double> grid_step_;
  std::vector<double> span_;  // per continuous parameter: the library's largest value minus its smallest
  std::unique_ptr<Index> index_;
  struct MixtureCache;  // mixture_cache.hpp: the basis and the windows seen, built on demand
  // The library on `window` as mixture() reads it, its spectra combined only within equal values
  // of the `shared` parameters (built on first use, at most a few kept).
  std::shared_ptr<const MixtureWindow> mixture_window(const Window& window, const std::vector<std::string>& shared) const;
  std::unique_ptr<MixtureCache> mixture_cache_;
};

}  // namespace xasmap
