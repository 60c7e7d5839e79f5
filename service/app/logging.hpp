#pragma once
// spdlog set-up from LoggingConfig: level, pattern, standard error or a file, text or JSON lines.

#include <spdlog/logger.h>

#include <memory>
#include <string>

#include "xasmap/config/config.hpp"

namespace xasmap::service {

// Builds the process-wide default logger. In JSON format every record is one line:
//   {"time":"2026-11-24T10:00:00.123456+00:00","level":"info","logger":"xasmapd","pid":42,
//    "thread":43,"msg":"..."}
// with the message JSON-escaped. A log file is flushed at every warning or error and at least once a
// second. Throws xasmap::Error when the log file cannot be opened.
std::shared_ptr<spdlog::logger> setup_logging(const config::LoggingConfig& cfg,
                                              const std::string& name);

// Escapes text for a JSON string body (quotes, backslashes, control characters as \uXXXX).
std::string json_escape(std::string_view text);

}  // namespace xasmap::service
