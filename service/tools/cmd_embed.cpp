// xasmap embed: the library built and embedded as the daemon would, saved as a model file.

#include <cstdio>
#include <string>
#include <vector>

#include "app_config.hpp"
#include "commands.hpp"
#include "model_builder.hpp"
#include "model_file.hpp"
#include "progress.hpp"
#include "xasmap/core/model.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kEmbedOptions = {
    {"config", true, "FILE", "configuration: library, preprocessing and embedding (default config)"},
    {"out", true, "FILE", "model file to write (required)"},
};

int run_embed(const CliArgs& args) {
  if (!args.positionals().empty()) throw UsageError("unexpected argument '" + args.positionals().front() + "'");
  const auto out = args.value("out");
  if (!out) throw UsageError("embed needs --out FILE");
  const config::Config cfg = config_from_args(args);
  BuildReport report;
  Model model;
  {
    ProgressBar bar("building library");
    model = build_model(cfg, &report, [&bar](int done, int total) { bar.update(done, total); });
  }
  write_model_file(model, *out);
  std::fprintf(stderr,
               "xasmap embed: %zu spectra (%lld rows with shifted copies) x %d grid points, "
               "%s, %d landmarks, %d dims; library %.2f s, preprocess %.2f s, landmarks %.2f s, "
               "embedding %.2f s, index %.2f s; written to %s\n",
               model.library_size(), static_cast<long long>(model.rows()),
               model.options().preprocess.grid.size, to_string(model.options().method),
               model.landmark_count(), model.options().estimate_dims, report.library_s,
               report.fit.preprocess_s, report.fit.landmarks_s, report.fit.embed_s,
               report.fit.index_s, out->c_str());
  return 0;
}

}  // namespace xasmap::service
