#pragma once
// Writing model files so that a crash never destroys the model a daemon starts from.

#include <filesystem>
#include <optional>
#include <string>

#include "xasmap/core/model.hpp"

namespace xasmap::service {

// Writes `model` to `file` atomically: into a temporary file in the same folder
// (`.<name>.tmp-<pid>`), flushed to disk with fsync, then renamed over `file`, and the folder
// fsynced so that the rename itself survives a power cut. Until the rename `file` keeps its old
// content, so a writer killed at any moment leaves the old model loadable (and perhaps a stale
// temporary file, which the next write from the same process id replaces). Throws xasmap::Error
// naming the file when any step fails; the temporary file is then removed.
//
// Test hook: with $XASMAP_TEST_ABORT_MODEL_WRITE_AFTER_BYTES=N the process aborts (SIGABRT) once
// N payload bytes are written, to stand for a crash mid-write.
void write_model_file(const Model& model, const std::filesystem::path& file);

// A loaded model's file checksum as provenance reports it: "<16 hex digits> (<name>)", from the
// value load() verified (no second read of the file); none for a model fitted in this process.
std::optional<std::string> model_checksum_text(const Model& model, const std::string& name);

}  // namespace xasmap::service
