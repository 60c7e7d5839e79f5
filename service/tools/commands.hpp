#pragma once
// The xasmap subcommands, each with its option list and entry point.

#include <vector>

#include "app_config.hpp"
#include "cli_args.hpp"

namespace xasmap::service {

extern const std::vector<OptionSpec> kSimulateOptions;
int run_simulate(const CliArgs& args);

extern const std::vector<OptionSpec> kLibraryOptions;
int run_library(const CliArgs& args);

extern const std::vector<OptionSpec> kScaleLibraryOptions;
int run_scale_library(const CliArgs& args);

extern const std::vector<OptionSpec> kEmbedOptions;
int run_embed(const CliArgs& args);

extern const std::vector<OptionSpec> kEstimateOptions;
int run_estimate(const CliArgs& args);

extern const std::vector<OptionSpec> kCalibrateOptions;
int run_calibrate(const CliArgs& args);

// Beamline-facing tools (cmd_feed.cpp, cmd_watch.cpp, cmd_map.cpp, cmd_status.cpp).
extern const std::vector<OptionSpec> kFeedOptions;
int run_feed(const CliArgs& args);

extern const std::vector<OptionSpec> kWatchOptions;
int run_watch(const CliArgs& args);

extern const std::vector<OptionSpec> kDashboardOptions;
int run_dashboard(const CliArgs& args);

extern const std::vector<OptionSpec> kMapOptions;
int run_map(const CliArgs& args);

extern const std::vector<OptionSpec> kStatusOptions;
int run_status(const CliArgs& args);

extern const std::vector<OptionSpec> kBenchOptions;
int run_bench(const CliArgs& args);

// CURVE key pairs (cmd_keygen.cpp).
extern const std::vector<OptionSpec> kKeygenOptions;
int run_keygen(const CliArgs& args);

}  // namespace xasmap::service
