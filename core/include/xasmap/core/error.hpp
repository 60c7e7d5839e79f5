#pragma once
// The root of every exception xasmap throws for bad external input (files, messages, config).
// Broken internal invariants are asserts, not exceptions.

#include <stdexcept>
#include <string>

namespace xasmap {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message);
  ~Error() override;
};

}  // namespace xasmap
