// xasmapd: the streaming daemon. In this version it validates and prints its configuration; the
// streaming service (ZeroMQ input, estimates, metrics, control) is not built yet.

#include <spdlog/spdlog.h>

#include <cstdio>
#include <exception>
#include <iostream>

#include "cli_args.hpp"
#include "logging.hpp"
#include "paths.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/core/version.hpp"

namespace {

using xasmap::service::OptionSpec;

const std::vector<OptionSpec> kOptions = {
    {"config", true, "FILE", "configuration file (default: see below)"},
    {"check-config", true, "FILE", "validate FILE (with any endpoint overrides) and exit"},
    {"print-config", false, "", "print the effective configuration as YAML and exit"},
    {"input", true, "ENDPOINT", "override input.endpoint"},
    {"output", true, "ENDPOINT", "override output.endpoint"},
    {"control", true, "ENDPOINT", "override control.endpoint"},
    {"version", false, "", "print the version and exit"},
    {"help", false, "", "print this help and exit"},
};

constexpr int kExitOk = 0;
constexpr int kExitUsage = 64;        // EX_USAGE
constexpr int kExitConfig = 78;       // EX_CONFIG
constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE

void print_help() {
  std::cout << "Usage: xasmapd [--config FILE] [--input EP] [--output EP] [--control EP]\n"
               "       xasmapd --check-config FILE [--input EP] [--output EP] [--control EP]\n"
               "       xasmapd --print-config [--config FILE]\n\n"
               "The xasmap streaming daemon: estimates physical parameters of X-ray absorption\n"
               "spectra as they arrive on a ZeroMQ feed.\n\nOptions:\n"
            << xasmap::service::describe_options(kOptions)
            << "\nWithout --config the first of these is used ($XASMAP_CONFIG overrides):\n";
  for (const auto& p : xasmap::service::config_file_candidates()) std::cout << "  " << p.string() << "\n";
  std::cout << "\nExit status: 0 ok, 64 usage error, 78 bad configuration, 69 service unavailable.\n";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace xasmap;
  try {
    const service::CliArgs args(argc, argv, 1, kOptions);
    if (args.has("help")) {
      print_help();
      return kExitOk;
    }
    if (args.has("version")) {
      std::cout << "xasmapd " << kVersion << " (protocol v1)\n";
      return kExitOk;
    }
    if (!args.positionals().empty()) {
      throw service::UsageError("unexpected argument '" + args.positionals().front() + "'");
    }
    config::Overrides overrides;
    overrides.input_endpoint = args.value("input");
    overrides.output_endpoint = args.value("output");
    overrides.control_endpoint = args.value("control");

    if (const auto file = args.value("check-config")) {
      const config::Config cfg = config::load_config(*file, overrides);
      std::cout << "xasmapd: " << *file << ": configuration is valid (library " +
                       config::to_string(cfg.library.source) + ", embedding " +
                       config::to_string(cfg.embedding.method) + ", input " + cfg.input.endpoint +
                       ", output " + cfg.output.endpoint + ", control " + cfg.control.endpoint +
                       ")\n";
      return kExitOk;
    }

    const std::filesystem::path file =
        args.value("config") ? std::filesystem::path(*args.value("config"))
                             : service::default_config_file();
    const config::Config cfg = config::load_config(file, overrides);
    if (args.has("print-config")) {
      std::cout << config::to_yaml(cfg);
      return kExitOk;
    }

    const auto log = service::setup_logging(cfg.logging, "xasmapd");
    log->info("xasmapd {} starting with config {}", kVersion, file.string());
    log->info("  library: source {}, grid {}-{} eV step {} eV", config::to_string(cfg.library.source),
              cfg.library.grid.emin_ev, cfg.library.grid.emax_ev, cfg.library.grid.step_ev);
    log->info("  embedding: {} with {} landmarks, distance {}", config::to_string(cfg.embedding.method),
              cfg.embedding.landmarks, config::to_string(cfg.embedding.distance));
    log->info("  endpoints: input {} ({} {}), output {}, control {}", cfg.input.endpoint,
              config::to_string(cfg.input.pattern), cfg.input.bind ? "bind" : "connect",
              cfg.output.endpoint, cfg.control.endpoint);
    log->error("the streaming service is not available in xasmapd {} yet; "
               "use --check-config or --print-config",
               kVersion);
    spdlog::shutdown();
    return kExitUnavailable;
  } catch (const service::UsageError& e) {
    std::cerr << "xasmapd: " << e.what() << "\nTry 'xasmapd --help'.\n";
    return kExitUsage;
  } catch (const config::ConfigError& e) {
    std::cerr << "xasmapd: " << e.what() << "\n";
    return kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << "xasmapd: " << e.what() << "\n";
    return kExitConfig;
  }
}
