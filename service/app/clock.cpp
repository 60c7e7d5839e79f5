#include "clock.hpp"

#include <chrono>

namespace xasmap::service {

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace xasmap::service
