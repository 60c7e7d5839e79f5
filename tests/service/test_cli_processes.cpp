// Runs the real xasmapd and xasmap executables as processes and checks their output and exit codes.

#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

struct Run {
  int status;
  std::string output;  // standard output and standard error together
};

Run run(const std::string& command) {
  Run r{-1, {}};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.output.append(buffer.data(), n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

const std::string kDaemon = XASMAPD_EXE;
const std::string kTool = XASMAP_EXE;
const std::string kDeployConfig = std::string(XASMAP_SOURCE_DIR) + "/deploy/xasmapd.yaml";

std::string write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path.string();
}

}  // namespace

TEST_CASE("xasmapd --check-config accepts the shipped config", "[integration][cli]") {
  const Run r = run(kDaemon + " --check-config " + kDeployConfig);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("configuration is valid") != std::string::npos);
  CHECK(r.output.find("input tcp://127.0.0.1:5555") != std::string::npos);
}

TEST_CASE("xasmapd --check-config refuses a broken config in one line", "[integration][cli]") {
  const std::string file = write_temp("xasmap_cli_bad.yaml", "embedding:\n  landmark: 32\n");
  const Run r = run(kDaemon + " --check-config " + file);
  INFO(r.output);
  CHECK(r.status == 78);
  CHECK(r.output == "xasmapd: " + file +
                        ":2:3: embedding.landmark: found unknown key 'landmark', expected a known "
                        "key (did you mean 'landmarks'?)\n");
  std::filesystem::remove(file);
}

TEST_CASE("endpoint flags override the config and are validated", "[integration][cli]") {
  const Run ok = run(kDaemon + " --print-config --config " + kDeployConfig +
                     " --input tcp://127.0.0.1:6100 --output tcp://127.0.0.1:6101 "
                     "--control tcp://127.0.0.1:6102");
  INFO(ok.output);
  CHECK(ok.status == 0);
  CHECK(ok.output.find("endpoint: tcp://127.0.0.1:6100") != std::string::npos);
  CHECK(ok.output.find("endpoint: tcp://127.0.0.1:6101") != std::string::npos);
  CHECK(ok.output.find("endpoint: tcp://127.0.0.1:6102") != std::string::npos);

  const Run bad = run(kDaemon + " --check-config " + kDeployConfig + " --input tcp://nowhere");
  INFO(bad.output);
  CHECK(bad.status == 78);
  CHECK(bad.output.find("input.endpoint (from --input): found 'tcp://nowhere'") != std::string::npos);
}

TEST_CASE("usage errors exit 64 with a suggestion", "[integration][cli]") {
  const Run r = run(kDaemon + " --chek-config x.yaml");
  CHECK(r.status == 64);
  CHECK(r.output.find("did you mean '--check-config'?") != std::string::npos);
  const Run t = run(kTool + " chek-config x.yaml");
  CHECK(t.status == 64);
  CHECK(t.output.find("did you mean 'check-config'?") != std::string::npos);
}

TEST_CASE("version and help", "[integration][cli]") {
  const Run d = run(kDaemon + " --version");
  CHECK(d.status == 0);
  CHECK(d.output.rfind("xasmapd 0.", 0) == 0);
  const Run t = run(kTool + " --version");
  CHECK(t.status == 0);
  CHECK(t.output.rfind("xasmap 0.", 0) == 0);
  CHECK(t.output.find("protocol v1") != std::string::npos);
  const Run h = run(kTool + " --help");
  CHECK(h.status == 0);
  CHECK(h.output.find("check-config") != std::string::npos);
}

TEST_CASE("xasmap check-config and print-config", "[integration][cli]") {
  const Run ok = run(kTool + " check-config " + kDeployConfig);
  CHECK(ok.status == 0);
  const std::string file = write_temp("xasmap_cli_range.yaml", "metrics:\n  interval_s: -1\n");
  const Run bad = run(kTool + " check-config " + file);
  CHECK(bad.status == 78);
  CHECK(bad.output.find(":2:15: metrics.interval_s: found -1") != std::string::npos);
  std::filesystem::remove(file);
  const Run printed = run(kTool + " print-config " + kDeployConfig);
  CHECK(printed.status == 0);
  CHECK(printed.output.find("landmarks: 64") != std::string::npos);
}
