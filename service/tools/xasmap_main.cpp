// xasmap: the offline tool. Subcommands grow with the project; each has its own --help.

#include <exception>
#include <functional>
#include <iostream>
#include <map>

#include "cli_args.hpp"
#include "commands.hpp"
#include "paths.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/core/text.hpp"
#include "xasmap/core/version.hpp"
#include "xasmap/protocol/messages.hpp"

namespace {

using xasmap::service::CliArgs;
using xasmap::service::OptionSpec;
using xasmap::service::UsageError;

constexpr int kExitUsage = 64;
constexpr int kExitConfig = 78;
constexpr int kExitFailure = 1;

struct Command {
  std::string summary;
  std::vector<OptionSpec> options;
  std::string usage;
  std::function<int(const CliArgs&)> run;
};

int run_version(const CliArgs&) {
  std::cout << "xasmap " << xasmap::kVersion << " (protocol v" << xasmap::protocol::kProtocolVersion
            << ")\n"
            << "data: " << xasmap::service::data_dir().string() << "\n"
            << "default config: " << xasmap::service::default_config_file().string() << "\n";
  return 0;
}

// A config file given as the argument, or by --config, or the default one.
xasmap::config::Config load(const CliArgs& args) {
  if (!args.positionals().empty()) return xasmap::config::load_config(args.positionals().front());
  return xasmap::service::config_from_args(args);
}

int run_check_config(const CliArgs& args) {
  if (args.positionals().size() != 1) throw UsageError("check-config needs exactly one FILE");
  const auto cfg = load(args);
  std::cout << args.positionals().front() << ": configuration is valid\n";
  return 0;
}

int run_print_config(const CliArgs& args) {
  if (args.positionals().size() > 1) throw UsageError("print-config takes at most one FILE");
  if (args.has("defaults") && (!args.positionals().empty() || args.value("config"))) {
    throw UsageError("--defaults takes no FILE");
  }
  const xasmap::config::Config cfg = args.has("defaults") ? xasmap::config::Config{} : load(args);
  if (args.has("keys")) {
    std::cout << xasmap::config::keys_markdown(cfg);
  } else if (args.has("documented")) {
    std::cout << xasmap::config::documented_yaml(cfg);
  } else {
    std::cout << xasmap::config::to_yaml(cfg);
  }
  return 0;
}

const std::map<std::string, Command>& commands() {
  static const std::map<std::string, Command> kCommands = {
      {"version", {"print the version, data folder and default config", {}, "xasmap version", run_version}},
      {"check-config",
       {"validate a configuration file", {}, "xasmap check-config FILE", run_check_config}},
      {"simulate",
       {"simulate one 2p (L2,3) XAS spectrum with the crystal-field multiplet model",
        xasmap::service::kSimulateOptions, "xasmap simulate --ion ION [--tendq EV] [options]",
        xasmap::service::run_simulate}},
      {"library",
       {"simulate the library.simulate grid of a config into one CSV per spectrum + manifest.csv",
        xasmap::service::kLibraryOptions, "xasmap library [--config FILE] --out DIR",
        xasmap::service::run_library}},
      {"scale-library",
       {"write the synthetic beamline-scale library (simulator sweep + interpolation) as spectra.npy",
        xasmap::service::kScaleLibraryOptions,
        "xasmap scale-library --out DIR [--spectra N] [--points D] [--seed N]",
        xasmap::service::run_scale_library}},
      {"embed",
       {"fit the model a config describes (library, preprocessing, embedding) and save it",
        xasmap::service::kEmbedOptions, "xasmap embed [--config FILE] --out MODEL",
        xasmap::service::run_embed}},
      {"estimate",
       {"estimate the parameters of spectrum files (CSV, .xy, XDI), as the daemon does",
        xasmap::service::kEstimateOptions,
        "xasmap estimate [--model MODEL | --config FILE] [--json] SPECTRUM...",
        xasmap::service::run_estimate}},
      {"calibrate",
       {"the session's energy offset from a standard of known charge measured this session",
        xasmap::service::kCalibrateOptions,
        "xasmap calibrate [--model MODEL | --config FILE] --charge Q REFERENCE",
        xasmap::service::run_calibrate}},
      {"bench",
       {"load-test a running xasmapd: offered rate or flat out, throughput, latency histogram, drops",
        xasmap::service::kBenchOptions,
        "xasmap bench --library DIR [--rate HZ] [--count N] [--stack RxC] [--input EP] [--output EP]",
        xasmap::service::run_bench}},
      {"feed",
       {"publish spectra to xasmapd as an acquisition system would (library, files or a stack)",
        xasmap::service::kFeedOptions,
        "xasmap feed [--input EP] [--rate HZ] [--count N] (--library DIR | --stack RxC | FILE...)",
        xasmap::service::run_feed}},
      {"watch",
       {"live terminal dashboard of xasmapd's estimates, errors and metrics",
        xasmap::service::kWatchOptions, "xasmap watch [--output EP] [--seconds S] [--count N] [--plain] [--rows N]",
        xasmap::service::run_watch}},
      {"dashboard",
       {"a live web page of a running xasmapd: map, spectra, estimates, latency, stack maps, status",
        xasmap::service::kDashboardOptions,
        "xasmap dashboard [--output EP] [--control EP] [--listen HOST:PORT] [--input EP] [--library DIR]",
        xasmap::service::run_dashboard}},
      {"map",
       {"draw the library's 2-D embedding (SVG) with measured spectra, spectrum comparisons and stack maps",
        xasmap::service::kMapOptions,
        "xasmap map (--model M | --config FILE | --control EP) [--live S] [--out-dir DIR] [SPECTRUM...]",
        xasmap::service::run_map}},
      {"status",
       {"ask a running xasmapd for its status (or library, config, reload, shutdown)",
        xasmap::service::kStatusOptions, "xasmap status [--control EP] [--wait S] [--cmd CMD]",
        xasmap::service::run_status}},
      {"keygen",
       {"write a CURVE key pair (NAME.key, NAME.pub) for a daemon socket or a client",
        xasmap::service::kKeygenOptions, "xasmap keygen --out NAME [--force]", xasmap::service::run_keygen}},
      {"print-config",
       {"print the effective configuration (defaults filled in) as YAML",
        {{"config", true, "FILE", "configuration file (or give it as the argument)"},
         {"defaults", false, "", "the built-in defaults, not a file"},
         {"documented", false, "", "with every key's comment (deploy/xasmapd.yaml is --defaults --documented)"},
         {"keys", false, "", "a Markdown table of every key, its value and what it accepts"}},
        "xasmap print-config [FILE] [--defaults] [--documented | --keys]",
        run_print_config}},
  };
  return kCommands;
}

void print_help() {
  std::cout << "Usage: xasmap COMMAND [OPTIONS]\n\n"
               "Offline tool of xasmap: on-the-fly estimation of physical parameters from X-ray\n"
               "absorption spectra.\n\nCommands:\n";
  for (const auto& [name, c] : commands()) {
    std::string head = "  " + name;
    head.resize(18, ' ');
    std::cout << head << c.summary << "\n";
  }
  std::cout << "\nRun 'xasmap COMMAND --help' for a command's options; 'xasmap --man' prints them all\n"
               "as a manual page (roff).\n";
}

// The manual page: every command's usage, summary and options as its --help gives them, as man(7)
// roff. The build installs it as share/man/man1/xasmap.1.
void print_man() {
  using xasmap::service::roff_escape;
  std::cout << ".TH XASMAP 1 \"\" \"xasmap " << xasmap::kVersion << "\" \"User Commands\"\n"
            << ".SH NAME\nxasmap \\- the offline tool of xasmap\n"
            << ".SH SYNOPSIS\n.B xasmap\n\\fICOMMAND\\fR [\\fIOPTIONS\\fR]\n"
            << ".SH DESCRIPTION\n"
            << roff_escape(
                   "On-the-fly estimation of physical parameters from X-ray absorption spectra: the "
                   "offline side of the xasmapd daemon. It simulates spectra and libraries, fits and "
                   "saves models, estimates spectrum files as the daemon does, calibrates a session's "
                   "energy offset, and drives a running daemon (feed, watch, map, bench, status).")
            << "\n.SH COMMANDS\n";
  for (const auto& [name, c] : commands()) {
    std::vector<OptionSpec> options = c.options;
    options.push_back({"help", false, "", "print this help and exit"});
    std::cout << ".SS " << roff_escape(name) << "\n" << roff_escape(c.usage) << "\n.PP\n"
              << roff_escape(c.summary) << "\n" << xasmap::service::describe_options_roff(options);
  }
  std::cout << ".SH EXIT STATUS\n.TP\n0\nsuccess\n.TP\n1\nfailure, with the reason on standard error\n"
            << ".TP\n64\nusage error\n.TP\n78\nbad configuration, named in one line\n"
            << ".SH ENVIRONMENT\n.TP\nXASMAP_CONFIG\nthe configuration file when none is given\n"
            << ".TP\nXASMAP_DATA_DIR\nthe data folder (atomic parameters)\n"
            << ".SH SEE ALSO\n.BR xasmapd (1)\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_help();
    return kExitUsage;
  }
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    print_help();
    return 0;
  }
  if (name == "--version") return run_version(CliArgs(argc, argv, 2, {}));
  if (name == "--man") {
    print_man();
    return 0;
  }
  const auto it = commands().find(name);
  try {
    if (it == commands().end()) {
      std::vector<std::string> names;
      for (const auto& [n, c] : commands()) names.push_back(n);
      std::string message = "unknown command '" + name + "'";
      if (const std::string near = xasmap::closest_match(name, names); !near.empty()) {
        message += " (did you mean '" + near + "'?)";
      }
      throw UsageError(message);
    }
    std::vector<OptionSpec> options = it->second.options;
    options.push_back({"help", false, "", "print this help and exit"});
    const CliArgs args(argc, argv, 2, options);
    if (args.has("help")) {
      std::cout << "Usage: " << it->second.usage << "\n\n" << it->second.summary << "\n\nOptions:\n"
                << xasmap::service::describe_options(options);
      return 0;
    }
    return it->second.run(args);
  } catch (const UsageError& e) {
    // A known subcommand's own help lists the options it takes; the general help lists commands.
    const std::string help =
        it == commands().end() ? "xasmap --help" : "xasmap " + name + " --help";
    std::cerr << "xasmap: " << e.what() << "\nTry '" << help << "'.\n";
    return kExitUsage;
  } catch (const xasmap::config::ConfigError& e) {
    std::cerr << "xasmap: " << e.what() << "\n";
    return kExitConfig;
  } catch (const std::exception& e) {
    std::cerr << "xasmap: " << e.what() << "\n";
    return kExitFailure;
  }
}
