#pragma once
// Builds the model the config describes: a simulated library, a folder of spectra, or a saved
// model file. Used by the daemon at start-up and by `xasmap embed` / `xasmap estimate`.

#include <string>
#include <vector>

#include "library_builder.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/core/model.hpp"

namespace xasmap::service {

ModelOptions model_options(const config::Config& cfg);

// Seconds per start-up stage, for the start-up log and benchmarks.
struct BuildReport {
  std::string source;      // "simulated", "files <dir>", "model <file>"
  double library_s = 0;    // simulating or reading the library
  double load_s = 0;       // reading a model file
  FitReport fit;           // fitting (zero when loaded)
};

// The library the config names (library.source simulate or files). Simulated spectra cover the
// grid widened by max_shift_ev + 2 eV on both sides, so that shifted copies hold real data.
Library build_library(const config::Config& cfg, const ProgressCallback& progress = {});

// The model the config names. A model file's own preprocessing and embedding options are used;
// the estimation options (neighbours, weighting, novelty threshold) come from the config.
// `cancelled` is asked while the model is fitted (Model::fit, which throws FitCancelled).
Model build_model(const config::Config& cfg, BuildReport* report = nullptr,
                  const ProgressCallback& progress = {}, const FitCancelRequested& cancelled = {});

// The session offset the config gives: calibration.session_offset_ev, or calibrated on
// calibration.reference_file (a standard of charge reference_charge) with `model`. `how` (when
// given) receives a sentence saying where it came from. Throws xasmap::Error naming the reference
// file when the standard cannot be read or calibrated.
double session_offset(const config::Config& cfg, const Model& model, std::string* how = nullptr);

// The mixed-valence options (estimation.mixture) for a model the config built: each charge's 3d
// holes (the L2,3 sum rule turns area weights into atom fractions), from library.simulate.ions
// when the library is simulated, else from the one 3d element whose L3 edge (data/atomic) lies on
// library.grid, with the charges as that element's. Without either, no holes: fractions are then
// area shares. `how` (when given) receives a sentence saying which.
MixtureOptions mixture_options(const config::Config& cfg, const Model& model, std::string* how = nullptr);

// Puts the settings `model` was fitted with (library.grid, library.preprocess except
// shift_penalty, embedding) into `cfg`, so that what is reported is what is in force. Returns one
// line per key whose configured value was not used, e.g.
// "library.grid.step_ev: configured 0.2, the model was fitted with 0.1"; empty when they agree.
std::vector<std::string> adopt_model_settings(const Model& model, config::Config& cfg);

}  // namespace xasmap::service
