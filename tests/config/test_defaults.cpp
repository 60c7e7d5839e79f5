#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "xasmap/config/config.hpp"

using namespace xasmap::config;

namespace {
const std::filesystem::path kDeployConfig =
    std::filesystem::path(XASMAP_SOURCE_DIR) / "deploy" / "xasmapd.yaml";
}

TEST_CASE("deploy/xasmapd.yaml holds exactly the built-in defaults", "[config]") {
  // The shipped file documents every default; if the two drift apart this fails.
  Config from_file = load_config(kDeployConfig);
  CHECK(from_file.source_file == kDeployConfig);
  from_file.source_file.clear();
  const Config built_in;
  CHECK(to_yaml(from_file) == to_yaml(built_in));
  CHECK(from_file == built_in);
}

TEST_CASE("the defaults keep every endpoint on loopback", "[config]") {
  const Config c;
  for (const auto& ep : {c.input.endpoint, c.output.endpoint, c.control.endpoint}) {
    CHECK(ep.rfind("tcp://127.0.0.1:", 0) == 0);
  }
  CHECK(c.validate().empty());
}

TEST_CASE("an empty document gives the defaults", "[config]") {
  Config c = parse_config("", "empty.yaml");
  c.source_file.clear();
  CHECK(c == Config{});
  Config comments_only = parse_config("# nothing here\n", "comments.yaml");
  comments_only.source_file.clear();
  CHECK(comments_only == Config{});
}

TEST_CASE("to_yaml round-trips a non-default configuration", "[config]") {
  const std::string yaml = R"(
library:
  simulate:
    ions: [Fe2+, Fe3+]
    symmetry: D4h
    tendq_ev: [0.5, 1.0, 1.5]
    ds_ev: {start: -0.1, stop: 0.1, step: 0.05}
    slater_scale: 0.8
    slater_scale_dd: 0.7
    temperature_k: {start: 100, stop: 300, step: 100}
    gauss_fwhm_ev: [0.25, 0.5]
    lorentz_scale: 1.2
    polarization: left
    energy_offset_ev: {Fe2+: 707.5, Fe3+: 709.0}
  grid: {emin_ev: 700, emax_ev: 730, step_ev: 0.05}
  preprocess: {background: edge_step, normalize: max, align: fit_shift}
embedding: {method: isomap, distance: wasserstein, landmarks: 128, estimate_dims: 12}
input: {pattern: pull, bind: true, endpoint: "tcp://*:6000", overflow: block}
output: {endpoint: "ipc:///tmp/xasmap-out"}
control: {endpoint: "inproc://control"}
logging: {format: json, level: debug}
estimation: {mixture: auto}
)";
  const Config c = parse_config(yaml, "custom.yaml");
  CHECK(c.library.simulate.ions == std::vector<std::string>{"Fe2+", "Fe3+"});
  CHECK(c.library.simulate.symmetry == Symmetry::kD4h);
  CHECK(c.library.simulate.tendq_ev.values() == std::vector<double>{0.5, 1.0, 1.5});
  CHECK(c.library.simulate.ds_ev.values() == std::vector<double>{-0.1, -0.05, 0.0, 0.05, 0.1});
  REQUIRE(c.library.simulate.slater_scale_dd.has_value());
  CHECK(*c.library.simulate.slater_scale_dd == Approx(0.7).margin(1e-15));
  CHECK_FALSE(c.library.simulate.slater_scale_pd.has_value());
  CHECK(c.library.simulate.slater_scale.values() == std::vector<double>{0.8});
  CHECK(c.library.simulate.temperature_k.values() == std::vector<double>{100, 200, 300});
  CHECK(c.library.simulate.gauss_fwhm_ev.values() == std::vector<double>{0.25, 0.5});
  CHECK(c.library.simulate.lorentz_scale.values() == std::vector<double>{1.2});
  CHECK(c.embedding.method == EmbeddingMethod::kIsomap);
  CHECK(c.input.pattern == InputPattern::kPull);
  CHECK(c.logging.format == LogFormat::kJson);
  CHECK(c.estimation.mixture == MixtureMode::kAuto);
  const Config again = parse_config(to_yaml(c), "custom.yaml");
  CHECK(again == c);
}

TEST_CASE("to_yaml writes each number as the shortest decimal that reads back exactly",
          "[config]") {
  const Config defaults =
      parse_config("logging: {level: info}\n", "shortest.yaml");  // paths resolved
  Config c = defaults;
  c.library.grid.step_ev = 0.1;
  c.library.preprocess.min_coverage = 0.3;
  c.library.simulate.tendq_ev = Sweep{};
  c.library.simulate.tendq_ev.list = {0.1, 0.2, 0.7, 1.0 / 3.0};
  c.library.simulate.symmetry = Symmetry::kD4h;
  c.library.simulate.ds_ev = Sweep{};
  c.library.simulate.ds_ev.start = -0.1;
  c.library.simulate.ds_ev.stop = 0.1;
  c.library.simulate.ds_ev.step = 0.05;
  c.library.simulate.slater_scale = Sweep::single(0.8);  // separate dd/pd scales need one value
  c.library.simulate.slater_scale_dd = 0.7;
  c.estimation.novelty_threshold = 1e-7;
  const std::string yaml = to_yaml(c);
  INFO(yaml);
  CHECK(yaml.find("step_ev: 0.1\n") != std::string::npos);
  CHECK(yaml.find("min_coverage: 0.3\n") != std::string::npos);
  CHECK(yaml.find("tendq_ev: [0.1, 0.2, 0.7, 0.3333333333333333]\n") != std::string::npos);
  CHECK(yaml.find("ds_ev: {start: -0.1, stop: 0.1, step: 0.05}\n") != std::string::npos);
  CHECK(yaml.find("slater_scale_dd: 0.7\n") != std::string::npos);
  CHECK(yaml.find("novelty_threshold: 1e-07\n") != std::string::npos);
  CHECK(yaml.find("0000000") == std::string::npos);
  CHECK(parse_config(yaml, "shortest.yaml") == c);
  // The shipped defaults read back identically too.
  CHECK(parse_config(to_yaml(defaults), "shortest.yaml") == defaults);
}

TEST_CASE("the default 10Dq sweep is the seed study's 26 values", "[config]") {
  const std::vector<double> v = Config{}.library.simulate.tendq_ev.values();
  REQUIRE(v.size() == 26);
  CHECK(v.front() == 0.0);
  CHECK(v[3] == 0.3);  // exact: the grid is rounded to 1e-12, not accumulated
  CHECK(v.back() == 2.5);
}

TEST_CASE("relative paths resolve against the config file's folder", "[config]") {
  const auto dir = std::filesystem::temp_directory_path() / "xasmap_test_paths";
  std::filesystem::create_directories(dir / "lib");
  {
    std::ofstream(dir / "lib" / "manifest.csv") << "file,charge,tendq\n";
    std::ofstream(dir / "c.yaml") << "library: {source: files, directory: lib}\n";
  }
  const Config c = load_config(dir / "c.yaml");
  CHECK(c.library.directory == (dir / "lib").lexically_normal());
  std::filesystem::remove_all(dir);
}

TEST_CASE("command-line overrides replace endpoints", "[config]") {
  Overrides o;
  o.input_endpoint = "tcp://127.0.0.1:7001";
  o.output_endpoint = "tcp://127.0.0.1:7002";
  o.control_endpoint = "ipc:///tmp/xasmap-ctl";
  const Config c = load_config(kDeployConfig, o);
  CHECK(c.input.endpoint == "tcp://127.0.0.1:7001");
  CHECK(c.output.endpoint == "tcp://127.0.0.1:7002");
  CHECK(c.control.endpoint == "ipc:///tmp/xasmap-ctl");
}
