// xasmap map: placeholder.
#include "commands.hpp"
namespace xasmap::service {
const std::vector<OptionSpec> kMapOptions = {};
int run_map(const CliArgs&) { throw UsageError("map is not built yet"); }
}  // namespace xasmap::service
