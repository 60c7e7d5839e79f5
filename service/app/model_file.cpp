#include "model_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "xasmap/core/error.hpp"

namespace xasmap::service {

namespace {

// fsync()s a file or folder; throws naming it.
void sync_path(const std::filesystem::path& path, bool folder) {
  const int fd = ::open(path.c_str(), (folder ? O_RDONLY | O_DIRECTORY : O_WRONLY) | O_CLOEXEC);
  if (fd < 0) throw Error(path.string() + ": cannot open to flush to disk: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw Error(path.string() + ": flushing to disk failed: " + std::strerror(err));
}

std::uint64_t abort_after_bytes() {
  const char* v = std::getenv("XASMAP_TEST_ABORT_MODEL_WRITE_AFTER_BYTES");
  return v ? std::strtoull(v, nullptr, 10) : 0;
}

}  // namespace

void write_model_file(const Model& model, const std::filesystem::path& file) {
  const std::filesystem::path folder = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  const std::filesystem::path temp =
      folder / ("." + file.filename().string() + ".tmp-" + std::to_string(::getpid()));
  SaveProgress progress;
  if (const std::uint64_t limit = abort_after_bytes(); limit > 0) {
    progress = [limit](std::uint64_t written) {
      if (written >= limit) std::abort();
    };
  }
  try {
    model.save(temp, progress);
    sync_path(temp, false);
    std::error_code ec;
    std::filesystem::rename(temp, file, ec);
    if (ec) throw Error(file.string() + ": cannot replace it with the new model file: " + ec.message());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
    throw;
  }
  sync_path(folder, true);
}

std::optional<std::string> model_checksum_text(const Model& model, const std::string& name) {
  const auto sum = model.file_checksum();
  if (!sum) return std::nullopt;
  char hex[40];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(*sum));
  return std::string(hex) + " (" + name + ")";
}

}  // namespace xasmap::service
