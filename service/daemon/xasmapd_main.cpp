// xasmapd: the streaming daemon (docs/operations.md, docs/protocol.md).

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>

#include "cli_args.hpp"
#include "curve.hpp"
#include "daemon.hpp"
#include "logging.hpp"
#include "paths.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/core/model.hpp"
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
    {"man", false, "", "print this help as a manual page (roff, for man(1)) and exit"},
};

constexpr int kExitOk = 0;
constexpr int kExitUsage = 64;        // EX_USAGE
constexpr int kExitConfig = 78;       // EX_CONFIG
constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE
constexpr int kExitDataError = 65;    // EX_DATAERR: the model file can never load as it is

void print_help() {
  std::cout << "Usage: xasmapd [--config FILE] [--input EP] [--output EP] [--control EP]\n"
               "       xasmapd --check-config FILE [--input EP] [--output EP] [--control EP]\n"
               "       xasmapd --print-config [--config FILE]\n\n"
               "The xasmap streaming daemon: estimates physical parameters of X-ray absorption\n"
               "spectra as they arrive on a ZeroMQ feed.\n\nOptions:\n"
            << xasmap::service::describe_options(kOptions)
            << "\nWithout --config the first of these is used ($XASMAP_CONFIG overrides):\n";
  for (const auto& p : xasmap::service::config_file_candidates()) std::cout << "  " << p.string() << "\n";
  std::cout << "\nExit status: 0 ok, 64 usage error, 65 damaged model file, 78 bad configuration,\n"
               "69 service unavailable.\n";
}

// The manual page: the same options and texts as --help, as man(7) roff. The build installs it as
// share/man/man1/xasmapd.1.
void print_man() {
  using xasmap::service::roff_escape;
  std::cout << ".TH XASMAPD 1 \"\" \"xasmap " << xasmap::kVersion << "\" \"User Commands\"\n"
            << ".SH NAME\nxasmapd \\- the xasmap streaming daemon\n"
            << ".SH SYNOPSIS\n"
               ".B xasmapd\n[\\fB\\-\\-config\\fR \\fIFILE\\fR] [\\fB\\-\\-input\\fR \\fIEP\\fR] "
               "[\\fB\\-\\-output\\fR \\fIEP\\fR] [\\fB\\-\\-control\\fR \\fIEP\\fR]\n.br\n"
               ".B xasmapd \\-\\-check\\-config\n\\fIFILE\\fR\n.br\n"
               ".B xasmapd \\-\\-print\\-config\n[\\fB\\-\\-config\\fR \\fIFILE\\fR]\n"
            << ".SH DESCRIPTION\n"
            << roff_escape(
                   "The xasmap streaming daemon estimates physical parameters of X-ray absorption "
                   "spectra (charge, crystal field 10Dq and more, with probabilities and intervals) as "
                   "they arrive on a ZeroMQ feed, and publishes each estimate on its output socket. It "
                   "builds its library and embedding at start-up (or loads a model file), answers "
                   "status, library, config, reload and shutdown on its control socket, rebuilds the "
                   "model on SIGHUP and stops in order on SIGTERM or SIGINT. The protocol is described "
                   "in docs/protocol.md, operation in docs/operations.md.")
            << "\n.SH OPTIONS\n"
            << xasmap::service::describe_options_roff(kOptions) << ".SH FILES\n"
            << roff_escape("Without --config the first of these that exists is read ($XASMAP_CONFIG overrides):")
            << "\n";
  for (const auto& p : xasmap::service::config_file_candidates()) {
    std::cout << ".TP\n" << roff_escape(p.string()) << "\n";
  }
  std::cout << ".SH EXIT STATUS\n"
            << ".TP\n0\nstopped in order\n.TP\n64\nusage error\n.TP\n65\n"
            << roff_escape("damaged model file (library.model_file); restarting cannot help") << "\n"
            << ".TP\n69\nservice unavailable (the daemon could not start or run)\n"
            << ".TP\n78\nbad configuration, named in one line\n"
            << ".SH ENVIRONMENT\n.TP\nXASMAP_CONFIG\nthe configuration file when \\fB\\-\\-config\\fR is not given\n"
            << ".TP\nXASMAP_DATA_DIR\nthe data folder (atomic parameters)\n"
            << ".SH SEE ALSO\n.BR xasmap (1)\n";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace xasmap;
  try {
    const service::CliArgs args(argc, argv, 1, kOptions);
    if (args.has("man")) {
      print_man();
      return kExitOk;
    }
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
      for (const std::string& w : cfg.warnings()) std::cerr << "xasmapd: warning: " << w << "\n";
      // The CURVE key files are read as start-up reads them (ConfigError naming the key).
      (void)service::load_curve_sides(cfg);
      if (cfg.library.source == config::LibrarySource::kModel) {
        // The header and checksum, as start-up checks them first: a damaged model fails here, not
        // in a restart loop.
        try {
          Model::check_file(cfg.library.model_file);
        } catch (const ModelFileError& e) {
          std::cerr << "xasmapd: " << *file << ": library.model_file: " << e.what() << "\n";
          return kExitDataError;
        }
      }
      std::cout << "xasmapd: " << *file << ": configuration is valid (library " +
                       config::to_string(cfg.library.source) + ", embedding " +
                       std::string(xasmap::to_string(cfg.model.method)) + ", input " + cfg.input.endpoint +
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

    // SIGTERM, SIGINT and SIGHUP are taken by the main thread with sigtimedwait(); every thread
    // the daemon starts inherits this mask, so no other thread is interrupted by them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    const auto log = service::setup_logging(cfg.logging, "xasmapd");
    int status = kExitOk;
    {
      service::Daemon daemon(cfg, file, overrides, log);
      status = daemon.run();
    }
    spdlog::shutdown();
    return status == 0 || status == kExitDataError || status == kExitConfig ? status : kExitUnavailable;
  } catch (const service::UsageError& e) {
    std::cerr << "xasmapd: " << e.what() << "\nTry 'xasmapd --help'.\n";
    return kExitUsage;
  } catch (const config::ConfigError& e) {
    std::cerr << "xasmapd: " << e.what() << "\n";
    return kExitConfig;
  } catch (const std::exception& e) {
    // Not the configuration's fault (that is ConfigError above): systemd may restart on this.
    std::cerr << "xasmapd: " << e.what() << "\n";
    return kExitUnavailable;
  }
}
