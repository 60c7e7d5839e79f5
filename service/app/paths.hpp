#pragma once
// Where xasmap finds its data files and default config, installed or in a build tree.

#include <filesystem>
#include <vector>

namespace xasmap::service {

// The data folder, the first that exists of: $XASMAP_DATA_DIR; <exe>/../share/xasmap (a relocated
// install); the configured install prefix's share/xasmap; the source tree's data/ (a build tree).
std::filesystem::path data_dir();

// The default config file: $XASMAP_CONFIG, else the first that exists of <exe>/../etc/xasmap,
// the install prefix's etc/xasmap, and the source tree's deploy/xasmapd.yaml.
std::filesystem::path default_config_file();

// Every place data_dir() and default_config_file() look, in order, for --help and error messages.
std::vector<std::filesystem::path> data_dir_candidates();
std::vector<std::filesystem::path> config_file_candidates();

}  // namespace xasmap::service
