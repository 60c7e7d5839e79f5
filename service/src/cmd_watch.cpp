// xasmap watch: placeholder until the dashboard lands.
#include "commands.hpp"
namespace xasmap::service {
const std::vector<OptionSpec> kWatchOptions = {};
int run_watch(const CliArgs&) { throw UsageError("watch is not built yet"); }
}  // namespace xasmap::service
