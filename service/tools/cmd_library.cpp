// xasmap library: the whole library.simulate grid, one CSV per spectrum and a manifest.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "app_config.hpp"
#include "commands.hpp"
#include "library_builder.hpp"
#include "progress.hpp"
#include "spectrum_files.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/core/atomic_data.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kLibraryOptions = {
    {"config", true, "FILE", "configuration whose library.simulate section is the grid"},
    {"out", true, "DIR", "output folder: one CSV per spectrum plus manifest.csv (required)"},
    {"threads", true, "N", "worker threads (default: all cores)"},
};

int run_library(const CliArgs& args) {
  if (!args.positionals().empty()) {
    throw UsageError("unexpected argument '" + args.positionals().front() + "'");
  }
  const auto out_dir = args.value("out");
  if (!out_dir) throw UsageError("library needs --out DIR");
  const config::Config cfg = config_from_args(args);
  const config::SimulateConfig& s = cfg.library.simulate;
  const AtomicTable table = load_atomic_table();
  const std::vector<SimulationJob> jobs = make_jobs(s, table);
  const Eigen::VectorXd energy = energy_grid(cfg.library.grid);

  const auto started = std::chrono::steady_clock::now();
  std::vector<SimulatedSpectrum> spectra;
  {
    ProgressBar bar("simulating");
    spectra = simulate_library(jobs, broadening_of(s), energy,
                               static_cast<int>(args.integer("threads", 0)),
                               [&bar](int done, int total) { bar.update(done, total); });
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  std::filesystem::create_directories(*out_dir);
  const std::vector<std::string> names = label_names(s);
  std::string manifest = "file";
  for (const auto& n : names) manifest += "," + n;
  manifest += "\n";
  char value[32];
  for (const SimulatedSpectrum& spectrum : spectra) {
    const std::string file = spectrum.label + ".csv";
    write_file_or_stdout((std::filesystem::path(*out_dir) / file).string(),
                         spectrum_csv(energy, spectrum.intensity));
    manifest += file;
    for (const auto& n : names) {
      std::snprintf(value, sizeof value, ",%.6g", spectrum.labels.at(n));
      manifest += value;
    }
    manifest += "\n";
  }
  write_file_or_stdout((std::filesystem::path(*out_dir) / "manifest.csv").string(), manifest);
  std::fprintf(stderr, "xasmap library: %zu spectra in %.2f s written to %s\n", spectra.size(),
               seconds, out_dir->c_str());
  return 0;
}

}  // namespace xasmap::service
