// Every class of broken configuration is refused with one line that names the file, line, column,
// key path, what was found and what was expected.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "xasmap/config/config.hpp"

using namespace xasmap::config;

namespace {

struct Expectation {
  std::string key_path;
  int line;       // 1-based; 0 = no place in a file
  int column;     // 1-based; 0 = do not check
  std::string found_part;
  std::string expected_part;
};

ConfigError rejection(const std::string& yaml, const Overrides& o = {}) {
  try {
    parse_config(yaml, "broken.yaml", {}, o);
  } catch (const ConfigError& e) {
    return e;
  }
  FAIL("configuration was accepted:\n" << yaml);
  throw;  // unreachable
}

void check(const ConfigError& e, const Expectation& x) {
  const std::string what = e.what();
  INFO(what);
  CHECK(e.key_path() == x.key_path);
  CHECK(e.line() == x.line);
  if (x.column > 0) CHECK(e.column() == x.column);
  CHECK(e.found().find(x.found_part) != std::string::npos);
  CHECK(e.expected().find(x.expected_part) != std::string::npos);
  // One line, starting with file:line:column and naming the key path.
  CHECK(what.find('\n') == std::string::npos);
  if (x.line > 0) {
    CHECK(what.rfind("broken.yaml:" + std::to_string(x.line) + ":", 0) == 0);
  }
  CHECK(what.find(x.key_path) != std::string::npos);
  CHECK(what.find("found ") != std::string::npos);
  CHECK(what.find("expected ") != std::string::npos);
}

}  // namespace

TEST_CASE("unknown keys are refused with the closest known key", "[config][reject]") {
  check(rejection("embedding:\n  method: lmds\n  landmark: 32\n"),
        {"embedding.landmark", 3, 3, "unknown key 'landmark'", "did you mean 'landmarks'?"});
  check(rejection("libary:\n  source: simulate\n"),
        {"libary", 1, 1, "unknown key", "did you mean 'library'?"});
  // Far from every key: the known keys are listed instead.
  const ConfigError e = rejection("metrics:\n  xyzzy_plugh: 1\n");
  check(e, {"metrics.xyzzy_plugh", 2, 3, "unknown key", "interval_s"});
}

TEST_CASE("wrong types are refused", "[config][reject]") {
  check(rejection("embedding:\n  landmarks: many\n"),
        {"embedding.landmarks", 2, 14, "'many'", "an integer"});
  check(rejection("embedding:\n  landmarks: 12.5\n"),
        {"embedding.landmarks", 2, 14, "'12.5'", "an integer"});
  check(rejection("metrics:\n  interval_s: \"1.0\"\n"),
        {"metrics.interval_s", 2, 15, "quoted string", "a number"});
  check(rejection("input:\n  bind: yes please\n"), {"input.bind", 2, 9, "'yes please'", "true or false"});
  check(rejection("library:\n  simulate:\n    ions: Mn2+\n"),
        {"library.simulate.ions", 3, 11, "'Mn2+'", "a list of strings"});
  check(rejection("input: 5\n"), {"input", 1, 8, "'5'", "a map of keys"});
  check(rejection("- library\n- input\n"), {"(document)", 1, 1, "a list", "a map of sections"});
}

TEST_CASE("values out of range are refused", "[config][reject]") {
  check(rejection("embedding:\n  landmarks: -3\n"),
        {"embedding.landmarks", 2, 14, "-3", "an integer in [3, 100000]"});
  check(rejection("metrics:\n  interval_s: 0\n"),
        {"metrics.interval_s", 2, 15, "0", "a number in [0.01, 3600]"});
  check(rejection("library:\n  simulate:\n    lorentz_fwhm_l3_ev: -0.2\n"),
        {"library.simulate.lorentz_fwhm_l3_ev", 3, 25, "-0.2", "(0, 10]"});
  check(rejection("library:\n  simulate:\n    tendq_ev: {start: 0, stop: 2.5, step: 0}\n"),
        {"library.simulate.tendq_ev.step", 3, 43, "0", "a step > 0"});
  check(rejection("metrics:\n  interval_s: .nan\n"),
        {"metrics.interval_s", 2, 15, "'.nan'", "a finite number"});
  check(rejection("input:\n  memory_budget_bytes: 1000\n"),
        {"input.memory_budget_bytes", 2, 24, "1000", "an integer in [1048576, 1099511627776]"});
}

TEST_CASE("unknown choices suggest the closest spelling", "[config][reject]") {
  check(rejection("embedding:\n  method: lmsd\n"),
        {"embedding.method", 2, 11, "'lmsd'", "did you mean 'lmds'?"});
  check(rejection("input:\n  overflow: drop_olderst\n"),
        {"input.overflow", 2, 13, "'drop_olderst'", "did you mean 'drop_oldest'?"});
  check(rejection("logging:\n  level: verbose\n"),
        {"logging.level", 2, 10, "'verbose'", "one of trace, debug, info"});
  check(rejection("estimation:\n  mixture: on\n"), {"estimation.mixture", 2, 12, "'on'", "one of auto, off"});
}

TEST_CASE("cross-field rules are checked and located", "[config][reject]") {
  check(rejection("embedding:\n  map_dims: 3\n  estimate_dims: 2\n"),
        {"embedding.estimate_dims", 3, 18, "2", "at least embedding.map_dims (3)"});
  check(rejection("library:\n  grid:\n    emin_ev: 660\n    emax_ev: 635\n"),
        {"library.grid.emax_ev", 4, 14, "635", "above library.grid.emin_ev"});
  check(rejection("library:\n  simulate:\n    ds_ev: 0.1\n"),
        {"library.simulate.ds_ev", 3, 12, "0.1 with symmetry Oh", "D4h"});
  check(rejection("library:\n  simulate:\n    ions: [Mn2+, Fe3+]\n"),
        {"library.simulate.energy_offset_ev", 3, 5, "no entry for Fe3+", "every ion"});
  check(rejection("library:\n  simulate:\n    ions: [Mn2+, Mn9]\n"),
        {"library.simulate.ions[1]", 3, 18, "'Mn9'", "a 3d ion"});
  check(rejection("control:\n  endpoint: tcp://127.0.0.1:5556\n"),
        {"control.endpoint", 2, 13, "the same as output.endpoint", "an endpoint of its own"});
  check(rejection("metrics:\n  http_endpoint: http://127.0.0.1:9464\n"),
        {"metrics.http_endpoint", 2, 18, "'http://127.0.0.1:9464'", "HOST:PORT, for example 127.0.0.1:9464"});
  check(rejection("input:\n  max_message_bytes: 67108864\n  memory_budget_bytes: 33554432\n"),
        {"input.memory_budget_bytes", 3, 24, "33554432", "at least input.max_message_bytes (67108864)"});
  // A swept Slater scale applies to F(dd) and F(pd) alike: separate scales need one value.
  check(rejection("library:\n  simulate:\n    slater_scale_dd: 0.7\n"),
        {"library.simulate.slater_scale", 3, 5, "several values with slater_scale_dd", "one value"});
  check(rejection("library:\n  simulate:\n    gauss_fwhm_ev: [0.2, -0.1]\n"),
        {"library.simulate.gauss_fwhm_ev[1]", 3, 5, "-0.1", "a number in [0, 10]"});
  // Every swept setting multiplies the library: 5001 10Dq values x 3 ions x 12 nuisance variants.
  check(rejection("library:\n  simulate:\n    tendq_ev: {start: 0, stop: 2.5, step: 0.0005}\n"),
        {"library.simulate", 3, 5, "180036 spectra", "at most 100000 spectra"});
  // Charge transfer needs room in the 3d shell for its electrons.
  check(rejection("library:\n  simulate:\n    ions: [Cu2+]\n    energy_offset_ev: {Cu2+: 930}\n"
                  "    charge_transfer:\n      configurations: 3\n"),
        {"library.simulate.charge_transfer.configurations", 6, 23, "3 with Cu2+ (room for 1", "at most 2"});
  check(rejection("library:\n  simulate:\n    charge_transfer:\n      configurations: 4\n"),
        {"library.simulate.charge_transfer.configurations", 4, 23, "4", "an integer in [1, 3]"});
  check(rejection("library:\n  simulate:\n    charge_transfer:\n      veg_ev: [1.0, -2.0]\n"),
        {"library.simulate.charge_transfer.veg_ev[1]", 4, 7, "-2", "a number in [0, 10]"});
  // A per-ion shift of Delta names an ion of the library, and keeps every Delta in range.
  check(rejection("library:\n  simulate:\n    charge_transfer:\n      delta_shift_ev: {Fe3+: 1.0}\n"),
        {"library.simulate.charge_transfer.delta_shift_ev.Fe3+", 4, 30, "'Fe3+', not in library.simulate.ions",
         "an ion of library.simulate.ions"});
  check(rejection("library:\n  simulate:\n    charge_transfer:\n      delta_ev: [2, 10]\n"
                  "      delta_shift_ev: {Mn2+: 15}\n"),
        {"library.simulate.charge_transfer.delta_shift_ev.Mn2+", 5, 30, "25", "[-20, 20]"});
  // The acknowledged input's ROUTER binds; senders' DEALERs connect.
  check(rejection("input:\n  pattern: router\n"), {"input.bind", 2, 3, "false", "true with pattern router"});
  check(rejection("input:\n  pattern: router\n  bind: true\n  dedup_ids: -1\n"),
        {"input.dedup_ids", 4, 14, "-1", "an integer in [0, 100000000]"});
  // A key left at its default is located at its section's first key.
  check(rejection("embedding:\n  estimate_dims: 64\n"),
        {"embedding.landmarks", 2, 3, "64", "more landmarks than embedding.estimate_dims"});
}

TEST_CASE("the calibration section is checked", "[config][reject]") {
  check(rejection("calibration:\n  session_offset_ev: 7\n"),
        {"calibration.session_offset_ev", 2, 22, "7", "[-5, 5]"});
  check(rejection("calibration:\n  reference_file: /nonexistent/MnO.csv\n  reference_charge: 2\n"),
        {"calibration.reference_file", 2, 19, "no such file", "a measured spectrum"});
  const std::string here = std::string(XASMAP_SOURCE_DIR) + "/tests/data/xrm2018/poster_fig2_MnO_measured.csv";
  check(rejection("calibration:\n  reference_file: " + here + "\n"),
        {"calibration.reference_charge", 2, 3, "nothing", "the standard's charge"});
  check(rejection("calibration:\n  reference_file: " + here + "\n  reference_charge: 2\n  session_offset_ev: 0.3\n"),
        {"calibration.session_offset_ev", 4, 22, "with a reference_file", "one of them"});
  check(rejection("calibration:\n  track_window: 4\n  track_min_samples: 8\n"),
        {"calibration.track_min_samples", 3, 22, "8", "at most calibration.track_window (4)"});
  check(rejection("calibration:\n  track: always\n"), {"calibration.track", 2, 10, "always", "apply"});
}

TEST_CASE("malformed endpoints are refused", "[config][reject]") {
  check(rejection("input:\n  endpoint: tcp//127.0.0.1:5555\n"),
        {"input.endpoint", 2, 13, "'tcp//127.0.0.1:5555'", "tcp://HOST:PORT"});
  check(rejection("output:\n  endpoint: tcp://127.0.0.1:99999\n"),
        {"output.endpoint", 2, 13, "99999", "a tcp port in [1, 65535]"});
  check(rejection("input:\n  endpoint: \"tcp://*:5555\"\n"),
        {"input.endpoint", 2, 13, "tcp://*:5555", "only for binding"});
}

TEST_CASE("a malformed command-line endpoint names its flag", "[config][reject]") {
  Overrides o;
  o.output_endpoint = "tcp://127.0.0.1";
  check(rejection("", o), {"output.endpoint (from --output)", 0, 0, "'tcp://127.0.0.1'", "tcp://"});
}

TEST_CASE("malformed YAML is refused with its place", "[config][reject]") {
  check(rejection("embedding:\n  method: [lmds\n  landmarks: 3\n"),
        {"(document)", 3, 0, "malformed YAML", "well-formed YAML"});
}

TEST_CASE("repeated keys are refused", "[config][reject]") {
  check(rejection("embedding:\n  landmarks: 32\n  landmarks: 64\n"),
        {"embedding.landmarks", 3, 3, "a second time", "each key once"});
}

TEST_CASE("missing files are refused", "[config][reject]") {
  SECTION("the config file itself") {
    try {
      load_config("/nonexistent/xasmapd.yaml");
      FAIL("a missing config file was accepted");
    } catch (const ConfigError& e) {
      CHECK(e.file() == "/nonexistent/xasmapd.yaml");
      CHECK(std::string(e.what()) ==
            "/nonexistent/xasmapd.yaml: (file): found no such file, expected a readable YAML "
            "config file");
    }
  }
  SECTION("a model file the config names") {
    check(rejection("library:\n  source: model\n  model_file: /nonexistent/model.xasm\n"),
          {"library.model_file", 3, 15, "no such file", "an existing model file"});
  }
  SECTION("a library folder without its manifest") {
    const auto dir = std::filesystem::temp_directory_path() / "xasmap_test_no_manifest";
    std::filesystem::create_directories(dir);
    check(rejection("library:\n  source: files\n  directory: " + dir.string() + "\n"),
          {"library.directory", 3, 14, "no manifest.csv", "a folder holding manifest.csv"});
    std::filesystem::remove_all(dir);
  }
  SECTION("source model with no model file") {
    check(rejection("library:\n  source: model\n"),
          {"library.model_file", 2, 3, "nothing", "a model file"});
  }
}

TEST_CASE("the first problem in a file is reported with the file's own name", "[config][reject]") {
  const auto file = std::filesystem::temp_directory_path() / "xasmap_test_bad.yaml";
  std::ofstream(file) << "# comment line\nembedding:\n  landmarks: 0\n";
  try {
    load_config(file);
    FAIL("accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()) ==
          file.string() +
              ":3:14: embedding.landmarks: found 0, expected an integer in [3, 100000]");
  }
  std::filesystem::remove(file);
}
