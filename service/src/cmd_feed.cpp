// xasmap feed: placeholder.
#include "commands.hpp"
namespace xasmap::service {
const std::vector<OptionSpec> kFeedOptions = {};
int run_feed(const CliArgs&) { throw UsageError("feed is not built yet"); }
}  // namespace xasmap::service
