#include "paths.hpp"

#include <cstdlib>
#include <system_error>

namespace xasmap::service {

namespace fs = std::filesystem;

namespace {

fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

fs::path first_existing(const std::vector<fs::path>& candidates) {
  std::error_code ec;
  for (const auto& p : candidates) {
    if (fs::exists(p, ec)) return p;
  }
  return candidates.empty() ? fs::path() : candidates.back();
}

}  // namespace

std::vector<fs::path> data_dir_candidates() {
  std::vector<fs::path> c;
  if (const char* env = std::getenv("XASMAP_DATA_DIR"); env && *env) c.emplace_back(env);
  if (const fs::path exe = executable_dir(); !exe.empty()) {
    c.push_back((exe / ".." / XASMAP_RELATIVE_DATA_DIR).lexically_normal());
  }
  c.emplace_back(XASMAP_INSTALLED_DATA_DIR);
  c.emplace_back(XASMAP_SOURCE_DATA_DIR);
  return c;
}

std::vector<fs::path> config_file_candidates() {
  std::vector<fs::path> c;
  if (const char* env = std::getenv("XASMAP_CONFIG"); env && *env) return {fs::path(env)};
  if (const fs::path exe = executable_dir(); !exe.empty()) {
    c.push_back((exe / ".." / XASMAP_RELATIVE_CONFIG).lexically_normal());
  }
  c.emplace_back(XASMAP_INSTALLED_CONFIG);
  c.emplace_back(XASMAP_SOURCE_CONFIG);
  return c;
}

fs::path data_dir() { return first_existing(data_dir_candidates()); }

fs::path default_config_file() { return first_existing(config_file_candidates()); }

}  // namespace xasmap::service
