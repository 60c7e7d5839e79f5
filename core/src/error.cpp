#include "xasmap/core/error.hpp"

namespace xasmap {

Error::Error(const std::string& message) : std::runtime_error(message) {}
Error::~Error() = default;

}  // namespace xasmap
