#include <catch2/catch.hpp>

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "logging.hpp"

using namespace xasmap;

TEST_CASE("json_escape escapes quotes, backslashes and control characters", "[service][logging]") {
  CHECK(service::json_escape("plain") == "plain");
  CHECK(service::json_escape("say \"hi\"\\") == "say \\\"hi\\\"\\\\");
  CHECK(service::json_escape("a\nb\tc") == "a\\nb\\tc");
  CHECK(service::json_escape(std::string("\x01", 1)) == "\\u0001");
  CHECK(service::json_escape("10Dq ± 0.1") == "10Dq ± 0.1");  // UTF-8 passes through
}

TEST_CASE("JSON-lines logging writes one escaped object per line", "[service][logging]") {
  const auto file = std::filesystem::temp_directory_path() / "xasmap_test_log.jsonl";
  std::filesystem::remove(file);
  config::LoggingConfig cfg;
  cfg.format = config::LogFormat::kJson;
  cfg.level = config::LogLevel::kDebug;
  cfg.file = file;
  {
    auto log = service::setup_logging(cfg, "test");
    log->debug("spectrum \"{}\" rejected:\nbad energy", "s-1");
    log->trace("not shown at debug level");
    log->flush();
    spdlog::drop_all();
  }
  std::ifstream in(file);
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line.front() == '{');
  CHECK(line.back() == '}');
  CHECK(line.find(R"("level":"debug")") != std::string::npos);
  CHECK(line.find(R"("logger":"test")") != std::string::npos);
  CHECK(line.find(R"("msg":"spectrum \"s-1\" rejected:\nbad energy")") != std::string::npos);
  CHECK_FALSE(std::getline(in, line));  // the trace record was filtered out
  std::filesystem::remove(file);
}

TEST_CASE("text logging follows the configured pattern", "[service][logging]") {
  const auto file = std::filesystem::temp_directory_path() / "xasmap_test_log.txt";
  std::filesystem::remove(file);
  config::LoggingConfig cfg;
  cfg.pattern = "<%l> %v";
  cfg.file = file;
  {
    auto log = service::setup_logging(cfg, "test");
    log->info("ready");
    log->debug("hidden at info level");
    log->flush();
    spdlog::drop_all();
  }
  std::ifstream in(file);
  std::string line;
  REQUIRE(std::getline(in, line));
  CHECK(line == "<info> ready");
  CHECK_FALSE(std::getline(in, line));
  std::filesystem::remove(file);
}

TEST_CASE("an unwritable log file is a clear error", "[service][logging]") {
  config::LoggingConfig cfg;
  cfg.file = "/proc/xasmap-cannot-write-here/log.txt";
  CHECK_THROWS_WITH(service::setup_logging(cfg, "test"), Catch::Contains("logging.file"));
}
