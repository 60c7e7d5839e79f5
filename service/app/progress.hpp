#pragma once
// A progress bar on standard error, drawn only when standard error is a terminal.

#include <chrono>
#include <string>

namespace xasmap::service {

class ProgressBar {
 public:
  explicit ProgressBar(std::string what);
  ~ProgressBar();
  void update(int done, int total);

 private:
  std::string what_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace xasmap::service
