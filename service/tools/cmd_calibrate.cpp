// xasmap calibrate: the session's energy offset from a standard of known charge measured this
// session (docs/estimation.md, "The session's energy offset").

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "logging.hpp"
#include "model_builder.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/session_offset.hpp"
#include "xasmap/core/spectrum.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kCalibrateOptions = {
    {"charge", true, "Q", "the standard's charge, e.g. 2 for MnO (required)"},
    {"model", true, "FILE", "a model written by 'xasmap embed'"},
    {"config", true, "FILE", "fit the model this config describes (when --model is not given)"},
    {"range", true, "EV", "search offsets within +-EV (default 2)"},
    {"json", false, "", "one JSON object instead of text"},
};

int run_calibrate(const CliArgs& args) {
  if (args.positionals().size() != 1) throw UsageError("calibrate needs exactly one REFERENCE spectrum file");
  if (!args.value("charge")) throw UsageError("calibrate needs --charge Q, the standard's charge (e.g. 2 for MnO)");
  const double charge = args.number("charge", 0.0);
  const double range = args.number("range", 2.0);
  if (!(range > 0.0 && range <= 5.0)) throw UsageError("--range must be in (0, 5] eV");
  const std::string file = args.positionals().front();
  const Spectrum reference = read_spectrum(file);
  Model model;
  if (const auto m = args.value("model")) {
    model = Model::load(*m);
  } else {
    model = build_model(config_from_args(args));
  }
  const OffsetCalibration cal = calibrate_offset(model, reference, charge, range);
  const Estimate& e = cal.estimate;
  const auto& params = model.parameters();
  if (std::abs(cal.offset_ev) >= range - 0.1) {
    std::fprintf(stderr, "xasmap calibrate: the best offset lies at the edge of the search (%+.2f eV): "
                         "widen --range, or check the charge\n", cal.offset_ev);
  }
  if (args.has("json")) {
    std::printf("{\"file\":\"%s\",\"charge\":%g,\"session_offset_ev\":%.3f,\"probability\":%.4f,"
                "\"distance2\":%.6g,\"profile\":[",
                json_escape(file).c_str(), charge, cal.offset_ev, cal.probability, cal.distance2);
    for (std::size_t i = 0; i < cal.profile.size(); ++i) {
      std::printf("%s[%.3f,%.6g]", i ? "," : "", cal.profile[i].first, cal.profile[i].second);
    }
    std::printf("]}\n");
    return 0;
  }
  std::printf("%s: session offset %+.2f eV (measured energy = true energy %+.2f eV)\n",
              std::filesystem::path(file).filename().string().c_str(), cal.offset_ev, cal.offset_ev);
  std::printf("  as charge %g: its probability there %.2f", charge, cal.probability);
  for (std::size_t p = 0; p < params.size(); ++p) {
    if (!params[p].categorical) std::printf(", %s %.2f +- %.2f", params[p].name.c_str(), e.values[p], e.uncertainty[p]);
  }
  std::printf("%s\n", e.in_library ? "" : " (outside the library: is it the standard it is said to be?)");
  // The offset is now known: no search around it (calibration.search_ev) is needed.
  std::printf("In the daemon's config:\ncalibration:\n  session_offset_ev: %.2f\n  search_ev: 0\n", cal.offset_ev);
  return 0;
}

}  // namespace xasmap::service
