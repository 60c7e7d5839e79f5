#pragma once
// Configurations shared by the validation tests (test_validation, test_heldout, test_calibration).

#include <cstdlib>

#include "xasmap/config/config.hpp"

namespace xasmap::test {

// The default configuration at the one model setting the default library is centred on and its
// energy offsets were calibrated at (Slater 0.8, 300 K, Gaussian 0.3 eV), without nuisance
// variants; tests/service/single_setting.yaml is the same for the daemon fixture.
inline config::Config single_setting() {
  config::Config c;
  c.library.simulate.slater_scale = config::Sweep::single(0.8);
  c.library.simulate.temperature_k = config::Sweep::single(300.0);
  c.library.simulate.gauss_fwhm_ev = config::Sweep::single(0.3);
  return c;
}

// `c` loading the default configuration's model that ctest's default_model fixture saved (its path
// in XASMAP_DEFAULT_MODEL), when there is one; unchanged otherwise (the model is then fitted).
inline config::Config with_default_model_file(config::Config c) {
  const char* model_file = std::getenv("XASMAP_DEFAULT_MODEL");
  if (model_file != nullptr && *model_file != 0) {
    c.library.source = config::LibrarySource::kModel;
    c.library.model_file = model_file;
  }
  return c;
}

}  // namespace xasmap::test
