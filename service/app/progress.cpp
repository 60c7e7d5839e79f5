#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace xasmap::service {

ProgressBar::ProgressBar(std::string what)
    : what_(std::move(what)),
      enabled_(isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() {
  if (drawn_) std::fputc('\n', stderr);
}

void ProgressBar::update(int done, int total) {
  if (!enabled_ || total <= 0) return;
  constexpr int kWidth = 30;
  const int filled = done * kWidth / total;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::string bar(static_cast<std::size_t>(filled), '=');
  bar.resize(kWidth, ' ');
  std::fprintf(stderr, "\r%s [%s] %d/%d  %.1f s", what_.c_str(), bar.c_str(), done, total, seconds);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace xasmap::service
