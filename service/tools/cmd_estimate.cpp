// xasmap embed: fit the model the config describes and save it.
// xasmap estimate: estimate the parameters of spectrum files, as the daemon would.

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <optional>
#include <thread>

#include "commands.hpp"
#include "logging.hpp"
#include "model_builder.hpp"
#include "model_file.hpp"
#include "nexus.hpp"
#include "paths.hpp"
#include "progress.hpp"
#include "spectrum_files.hpp"
#include "stack_maps.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/model.hpp"
#include "xasmap/core/preprocess.hpp"
#include "xasmap/core/session_offset.hpp"
#include "xasmap/core/version.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kEstimateOptions = with_spectrum_file_options({
    {"model", true, "FILE", "a model written by 'xasmap embed'"},
    {"config", true, "FILE", "fit the model this config describes (when --model is not given)"},
    {"session-offset", true, "EV",
     "the session's energy offset, known (default: the config's calibration section)"},
    {"search", true, "EV",
     "while the session offset is not known, search it within +-EV of that (default: "
     "calibration.search_ev, 1; 0 with --session-offset or a calibration.reference_file)"},
    {"mixture", true, "auto|off",
     "auto: also fit each spectrum as a mixture of two charges and show the atom fractions and mean "
     "valence (default: the config's estimation.mixture, off)"},
    {"json", false, "", "one JSON object per spectrum instead of a table"},
    {"out", true, "RESULT.h5",
     "for an NXstxm stack (NeXus/HDF5): write its parameter maps here as NeXus (docs/files.md)"},
    {"threads", true, "N", "threads for a stack's pixels (default: every core)"},
});

namespace {

std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6g", v);
  return buffer;
}

// A parameter value as text: category names for text categories, else the number.
std::string value_text(const ParameterInfo& info, double v) {
  if (!info.category_names.empty()) {
    const auto i = static_cast<std::size_t>(v);
    return i < info.category_names.size() ? info.category_names[i] : number(v);
  }
  return number(v);
}

std::string json_value(const ParameterInfo& info, double v) {
  if (!info.category_names.empty()) return "\"" + json_escape(value_text(info, v)) + "\"";
  return number(v);
}

std::string params_json(const std::vector<ParameterInfo>& params, const std::vector<double>& v) {
  std::string s = "{";
  for (std::size_t p = 0; p < params.size(); ++p) {
    s += (p ? "," : "") + std::string("\"") + json_escape(params[p].name) + "\":" +
         json_value(params[p], v[p]);
  }
  return s + "}";
}

// Why one file got no estimate, with what to do where the command line can do it.
std::string failure_text(const std::exception& e) {
  std::string text = e.what();
  if (const auto* refused = dynamic_cast<const PreprocessError*>(&e);
      refused && refused->reason() == RejectReason::kEnergyUnit) {
    text += "; use --energy-unit keV";
  }
  return text;
}

// The mixture as the protocol's `mixture` map (docs/protocol.md).
std::string mixture_json(const Model& model, const Mixture& m) {
  const protocol::MixtureEntry x = protocol::to_mixture_entry(model.parameters(), m);
  std::string s = "{\"mean_valence\":" + number(x.mean_valence) + ",\"mean_valence_sd\":" +
                  number(x.mean_valence_sd) + ",\"single_phase\":" + (x.single_phase ? "true" : "false") +
                  ",\"components\":[";
  for (std::size_t i = 0; i < x.components.size(); ++i) {
    const protocol::MixtureComponentEntry& c = x.components[i];
    s += std::string(i ? "," : "") + "{\"charge\":" + number(c.charge) + ",\"fraction\":" + number(c.fraction) +
         ",\"fraction_sd\":" + number(c.fraction_sd) + ",\"tendq\":" + number(c.tendq) + "}";
  }
  return s + "]}";
}

// The table's cell: "3.00 +- 0.05: 2+ 50%, 4+ 50%", or the one charge of a single phase.
std::string mixture_cell(const Mixture& m) {
  char text[96];
  if (m.single_phase) {
    std::snprintf(text, sizeof text, "%.2f single phase", m.mean_value);
    return text;
  }
  std::string s;
  std::snprintf(text, sizeof text, "%.2f +- %.2f:", m.mean_value, m.mean_value_sd);
  s = text;
  for (std::size_t i = 0; i < m.components.size(); ++i) {
    std::snprintf(text, sizeof text, "%s %g+ %.0f%%", i ? "," : "", m.components[i].class_value,
                  100 * m.components[i].fraction);
    s += text;
  }
  return s;
}

std::string estimate_json(const std::string& file, const Model& model, const Estimate& e,
                          const Mixture* mixture) {
  const auto& params = model.parameters();
  std::string s = "{\"file\":\"" + json_escape(file) + "\",\"params\":" + params_json(params, e.values);
  std::string unc = "{", conf = "{";
  for (std::size_t p = 0; p < params.size(); ++p) {
    std::string& target = params[p].categorical ? conf : unc;
    const double v = params[p].categorical ? e.confidence[p] : e.uncertainty[p];
    target += (target.size() > 1 ? "," : "") + std::string("\"") + json_escape(params[p].name) +
              "\":" + number(v);
  }
  s += ",\"uncertainty\":" + unc + "},\"confidence\":" + conf + "}";
  s += ",\"embedding\":[";
  for (Eigen::Index i = 0; i < e.map.size(); ++i) s += (i ? "," : "") + number(e.map[i]);
  s += "],\"neighbors\":[";
  for (std::size_t i = 0; i < e.neighbors.size(); ++i) {
    const Neighbor& n = e.neighbors[i];
    s += std::string(i ? "," : "") + "{\"label\":\"" + json_escape(n.label) +
         "\",\"params\":" + params_json(params, n.values) + ",\"distance\":" + number(n.distance) +
         "}";
  }
  s += "],\"novelty\":" + number(e.novelty) + ",\"in_library\":" + (e.in_library ? "true" : "false");
  s += ",\"energy_shift_ev\":" + number(e.energy_shift_ev) + ",\"coverage\":" + number(e.coverage) +
       ",\"edge_step\":" + number(e.edge_step) + ",\"noise_sigma\":" + number(e.noise_sigma);
  if (mixture != nullptr) s += ",\"mixture\":" + mixture_json(model, *mixture);
  return s + "}";
}

// How the model was made, for a result file's provenance.
std::string library_description(const Model& model) {
  std::string s = std::to_string(model.library_size()) + " spectra (" + to_string(model.options().method) + ", " +
                  to_string(model.options().distance) + " distance); parameters";
  for (const ParameterInfo& p : model.parameters()) s += " " + p.name;
  return s;
}

// An NXstxm stack estimated pixel by pixel, as the daemon estimates a stack message (one session
// offset for the stack, core's stack_offset_ev while it is searched), its maps written as NeXus.
struct StackRun {
  const Model& model;
  const config::Config& cfg;
  double offset = 0, search = 0;
  bool mixture = false;
  MixtureOptions mixing;
  std::string model_checksum;
  int threads = 1;
};

void estimate_stack(const StackRun& run, const std::string& file, const std::string& out_file) {
  const auto t0 = std::chrono::steady_clock::now();
  const NexusStack stack = read_nxstxm(file);
  const Model& model = run.model;
  const auto n = stack.energy_ev.size();
  const std::size_t pixels = stack.pixels();
  const auto pixel_of = [&](std::size_t px, Eigen::VectorXd& out) {
    out = Eigen::Map<const Eigen::VectorXf>(stack.intensity.data() + static_cast<Eigen::Index>(px) * n, n).cast<double>();
  };
  StackMapsOptions options;
  options.session_offset_ev = stack_offset_ev(model, stack.energy_ev, pixels, pixel_of, run.offset, run.search,
                                              run.cfg.calibration.track_min_confidence);
  if (run.mixture) {
    options.mixture = &run.mixing;
    model.prepare_mixture();  // once, before the threads share it
  }
  // The daemon's loop (stack_maps.hpp), on this process's threads: each takes the next chunk.
  protocol::EstimateMapMessage maps;
  estimate_stack_maps(model, stack.energy_ev, pixels,
                      [&](std::size_t px, Eigen::VectorXd& scratch) -> Eigen::Ref<const Eigen::VectorXd> {
                        pixel_of(px, scratch);
                        return scratch;
                      },
                      options,
                      [&](std::size_t count, std::size_t chunk, const ChunkWork& work) {
                        std::atomic<std::size_t> next{0};
                        const auto take = [&] {
                          for (std::size_t begin; (begin = next.fetch_add(chunk)) < count;) {
                            work(begin, std::min(count, begin + chunk));
                          }
                        };
                        std::vector<std::jthread> pool;
                        for (int t = 1; t < run.threads; ++t) pool.emplace_back(take);
                        take();
                      },
                      maps);
  maps.shape = {static_cast<std::int64_t>(stack.ny), static_cast<std::int64_t>(stack.nx), static_cast<std::int64_t>(n)};
  NexusResult res = nexus_result_of(maps);
  res.ny = stack.ny;
  res.nx = stack.nx;
  res.y = stack.y;
  res.x = stack.x;
  res.y_units = stack.y_units;
  res.x_units = stack.x_units;
  res.title = std::filesystem::path(file).filename().string();
  res.version = kVersion;
  res.model_checksum = run.model_checksum;
  res.library = library_description(model);
  res.config_yaml = config::to_yaml(run.cfg);
  res.source = file + ":" + stack.signal_path + " (" + stack.layout + ")";
  res.session_offset_ev = options.session_offset_ev;
  write_nexus_result(out_file, res);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr,
               "xasmap estimate: %s: %zu x %zu pixels x %lld energies (%s) -> %s in %.2f s; session offset %+.2f eV; "
               "%llu pixels could not be judged\n",
               file.c_str(), stack.ny, stack.nx, static_cast<long long>(n), stack.layout.c_str(), out_file.c_str(),
               seconds, options.session_offset_ev, static_cast<unsigned long long>(res.rejected_pixels));
}

}  // namespace

int run_estimate(const CliArgs& args) {
  if (args.positionals().empty()) throw UsageError("estimate needs at least one SPECTRUM file");
  Model model;
  double offset = 0.0;
  std::string offset_from = "none";
  // Until the session offset is known it is searched (estimate_over_offsets), as the daemon does
  // until it has calibrated or tracked it; estimate has no tracker, so every file is searched.
  double search = config::CalibrationConfig{}.search_ev;
  // The config in force: the one given (or the default), with a model file's own settings.
  config::Config cfg;
  const auto from_config = [&] {
    offset = session_offset(cfg, model, &offset_from);
    search = cfg.calibration.reference_file.empty() ? cfg.calibration.search_ev : 0.0;
  };
  std::string model_checksum = "none: the model was fitted from the config (no model file)";
  if (const auto file = args.value("model")) {
    model = Model::load(*file);
    model_checksum = model_checksum_text(model, std::filesystem::path(*file).filename().string()).value_or(model_checksum);
    if (args.has("config")) {
      cfg = config_from_args(args);
      model.set_estimation_options(model_options(cfg));
      from_config();
    }
    cfg.library.source = config::LibrarySource::kModel;
    adopt_model_settings(model, cfg);
  } else {
    cfg = config_from_args(args);
    model = build_model(cfg);
    from_config();
  }
  bool mixture = cfg.estimation.mixture == config::MixtureMode::kAuto;
  if (const auto mode = args.value("mixture")) {
    if (*mode != "auto" && *mode != "off") throw UsageError("--mixture must be auto or off, not '" + *mode + "'");
    mixture = *mode == "auto";
  }
  mixture = mixture && model.class_parameter() >= 0;
  const MixtureOptions mixing = mixture ? mixture_options(cfg, model) : MixtureOptions{};
  if (args.value("session-offset")) {
    offset = args.number("session-offset", 0.0);
    offset_from = "--session-offset";
    search = 0.0;
  }
  if (args.value("search")) {
    search = args.number("search", 0.0);
    if (!(search >= 0.0 && search <= 3.0)) throw UsageError("--search must be within 0-3 eV");
  }
  if (offset != 0.0) {
    std::fprintf(stderr, "xasmap estimate: session offset %+.2f eV (%s)%s\n", offset, offset_from.c_str(),
                 search > 0.0 ? (", searched within +-" + number(search) + " eV").c_str() : "");
  }
  const SpectrumReadOptions reading = spectrum_read_options(args);
  const bool json = args.has("json");

  // NXstxm stacks: each to its NeXus result (--out), not the table.
  // A NeXus file that cannot be read stays with the spectra, whose loop reports it with the others;
  // alone with --out, its reason is the error.
  std::vector<std::string> spectra;
  std::vector<std::string> stacks;
  std::optional<NexusError> unreadable;
  for (const std::string& file : args.positionals()) {
    bool stack = false;
    if (is_nexus_file(file)) {
      try {
        stack = nexus_kind(file) == NexusKind::kStack;
      } catch (const NexusError& e) {
        if (!unreadable) unreadable = e;
      }
    }
    (stack ? stacks : spectra).push_back(file);
  }
  if (stacks.empty() && args.value("out") && unreadable) throw *unreadable;
  if (!stacks.empty()) {
    if (!args.value("out")) throw UsageError(stacks.front() + " is a stack (NXstxm): give --out RESULT.h5 for its maps");
    if (stacks.size() > 1) throw UsageError("--out takes the maps of one stack; " + std::to_string(stacks.size()) + " stacks were given");
    const long long threads = args.integer("threads", std::max(1u, std::thread::hardware_concurrency()));
    if (threads < 1 || threads > 256) throw UsageError("--threads must be within 1-256");
    StackRun run{model, cfg, offset, search, mixture, mixing, model_checksum, static_cast<int>(threads)};
    estimate_stack(run, stacks.front(), *args.value("out"));
    if (spectra.empty()) return 0;
  } else if (args.value("out")) {
    throw UsageError("--out is for an NXstxm stack; none of the files is one");
  }
  const auto& params = model.parameters();
  if (!json) {
    std::printf("%-32s", "spectrum");
    for (const auto& p : params) std::printf(" %-16s", p.name.c_str());
    std::printf(" %-8s %-8s %-6s", "shift_eV", "novelty", "in_lib");
    if (mixture) std::printf(" %-34s", "valence (mixture)");
    std::printf(" %s\n", "nearest");
  }
  Prepared prepared;
  int failures = 0;
  for (const std::string& file : spectra) {
    try {
      const Spectrum spectrum = is_nexus_file(file) ? read_nxxas(file).spectrum : read_spectrum(file, reading);
      Estimate e = search > 0.0 ? estimate_over_offsets(model, spectrum, offset, search)
                                : model.estimate(spectrum, offset);
      Mixture m;
      if (mixture) {  // as the daemon does (service/daemon.cpp, process_single)
        m = mixture_over_offsets(model, spectrum.energy_ev, spectrum.intensity, offset, search, e, mixing, prepared);
        cap_class_confidence(m, e);
      }
      if (json) {
        std::printf("%s\n", estimate_json(file, model, e, mixture ? &m : nullptr).c_str());
        continue;
      }
      std::string name = std::filesystem::path(file).filename().string();
      if (name.size() > 32) name = name.substr(0, 29) + "...";
      std::printf("%-32s", name.c_str());
      for (std::size_t p = 0; p < params.size(); ++p) {
        char cell[64];
        if (params[p].categorical) {
          std::snprintf(cell, sizeof cell, "%s (%.0f%%)", value_text(params[p], e.values[p]).c_str(),
                        100 * e.confidence[p]);
        } else {
          std::snprintf(cell, sizeof cell, "%.2f +- %.2f", e.values[p], e.uncertainty[p]);
        }
        std::printf(" %-16s", cell);
      }
      std::printf(" %+-8.2f %-8.2f %-6s", e.energy_shift_ev, e.novelty, e.in_library ? "yes" : "no");
      if (mixture) std::printf(" %-34s", mixture_cell(m).c_str());
      std::printf(" %s\n", e.neighbors.empty() ? "-" : e.neighbors.front().label.c_str());
    } catch (const std::exception& e) {  // xasmap::Error, and any other reason one file fails
      ++failures;
      if (json) {
        std::printf("{\"file\":\"%s\",\"error\":\"%s\"}\n", json_escape(file).c_str(),
                    json_escape(failure_text(e)).c_str());
      } else {
        // Most reasons name the file already (the reader's, with the line); the others get it here.
        const std::string text = failure_text(e);
        if (text.rfind(file + ":", 0) == 0) {
          std::fprintf(stderr, "xasmap estimate: %s\n", text.c_str());
        } else {
          std::fprintf(stderr, "xasmap estimate: %s: %s\n", file.c_str(), text.c_str());
        }
      }
    }
  }
  std::fflush(stdout);
  return failures == 0 ? 0 : 1;
}

}  // namespace xasmap::service
