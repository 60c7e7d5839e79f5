#pragma once
// What every command reads its configuration and atomic data from.

#include "cli_args.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/core/atomic_data.hpp"

namespace xasmap::service {

// The config named by --config, else the default config file (paths.hpp).
config::Config config_from_args(const CliArgs& args);

// The atomic data (Slater integrals, spin-orbit constants, edges) of the data folder (paths.hpp).
AtomicTable load_atomic_table();

}  // namespace xasmap::service
