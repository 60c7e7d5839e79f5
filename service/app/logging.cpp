#include "logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>

#include "xasmap/core/error.hpp"

namespace xasmap::service {

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buffer[8];
          std::snprintf(buffer, sizeof buffer, "\\u%04x", c);
          out += buffer;
        } else {
          out += ch;
        }
    }
  }
  return out;
}

namespace {

// %J: the log message, escaped for a JSON string.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string escaped =
        json_escape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

constexpr const char* kJsonPattern =
    R"({"time":"%Y-%m-%dT%H:%M:%S.%f%z","level":"%l","logger":"%n","pid":%P,"thread":%t,"msg":"%J"})";

spdlog::level::level_enum to_spdlog(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::kTrace:
      return spdlog::level::trace;
    case config::LogLevel::kDebug:
      return spdlog::level::debug;
    case config::LogLevel::kInfo:
      return spdlog::level::info;
    case config::LogLevel::kWarn:
      return spdlog::level::warn;
    case config::LogLevel::kError:
      return spdlog::level::err;
    case config::LogLevel::kCritical:
      return spdlog::level::critical;
    case config::LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

std::shared_ptr<spdlog::logger> setup_logging(const config::LoggingConfig& cfg,
                                              const std::string& name) {
  spdlog::sink_ptr sink;
  if (cfg.file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  } else {
    try {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(cfg.file.string(), false);
    } catch (const spdlog::spdlog_ex& e) {
      throw xasmap::Error("logging.file: cannot open '" + cfg.file.string() + "': " + e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>(name, sink);
  if (cfg.format == config::LogFormat::kJson) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonMessageFlag>('J').set_pattern(kJsonPattern);
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern(cfg.pattern);
  }
  logger->set_level(to_spdlog(cfg.level));
  // Warnings and errors reach the file at once; everything else within a second, so that whoever
  // tails the log sees progress (a reload's) while it happens. The periodic flusher serves the
  // registered loggers, which the default logger is.
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
  return logger;
}

}  // namespace xasmap::service
