#include "app_config.hpp"

#include <filesystem>

#include "paths.hpp"

namespace xasmap::service {

config::Config config_from_args(const CliArgs& args) {
  const std::filesystem::path file =
      args.value("config") ? std::filesystem::path(*args.value("config")) : default_config_file();
  return config::load_config(file);
}

AtomicTable load_atomic_table() { return AtomicTable::load(data_dir() / "atomic"); }

}  // namespace xasmap::service
