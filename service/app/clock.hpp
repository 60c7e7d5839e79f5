#pragma once
// The wall clock the daemon stamps its messages with and the tools compare them to.

namespace xasmap::service {

// The wall clock in seconds since the Unix epoch.
double wall_seconds();

}  // namespace xasmap::service
