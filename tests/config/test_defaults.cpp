#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "xasmap/config/config.hpp"

using namespace xasmap::config;

namespace {
const std::filesystem::path kDeployConfig =
    std::filesystem::path(XASMAP_SOURCE_DIR) / "deploy" / "xasmapd.yaml";
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST_CASE("deploy/xasmapd.yaml is what the key table writes for the defaults", "[config]") {
  // `xasmap print-config --defaults --documented > deploy/xasmapd.yaml` regenerates it.
  CHECK(read_text(kDeployConfig) == documented_yaml(Config{}));
}

TEST_CASE("docs/configuration.md lists every key as the table gives it", "[config]") {
  const std::string page = read_text(std::filesystem::path(XASMAP_SOURCE_DIR) / "docs" / "configuration.md");
  CHECK(page.find(keys_markdown(Config{})) != std::string::npos);
}

TEST_CASE("the key table: each key once, documented, read back as written", "[config]") {
  const std::vector<KeyInfo> keys = key_table(Config{});
  REQUIRE(keys.size() > 90);
  // The sections the documented YAML gives a comment (a comment line right above "name:").
  std::set<std::string> commented_sections;
  {
    std::istringstream text(documented_yaml(Config{}));
    std::vector<std::string> path;
    std::string line, previous;
    while (std::getline(text, line)) {
      const auto indent = line.find_first_not_of(' ');
      if (indent != std::string::npos && line[indent] != '#' && line.back() == ':') {
        path.resize(indent / 2);
        path.push_back(line.substr(indent, line.size() - indent - 1));
        std::string joined;
        for (const auto& p : path) joined += (joined.empty() ? "" : ".") + p;
        if (previous.find_first_not_of(' ') != std::string::npos && previous[previous.find_first_not_of(' ')] == '#') {
          commented_sections.insert(joined);
        }
      }
      previous = line;
    }
  }
  CHECK(commented_sections.contains("library.grid"));
  CHECK(commented_sections.contains("output.curve"));
  std::set<std::string> paths;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    INFO(keys[i].path);
    CHECK(paths.insert(keys[i].path).second);
    CHECK_FALSE(keys[i].accepts.empty());
    // Every key carries a comment, or shares the one of the key before it in its section.
    const std::string section = keys[i].path.substr(0, keys[i].path.rfind('.'));
    if (keys[i].doc.empty() && !commented_sections.contains(section)) {
      REQUIRE(i > 0);
      CHECK(section == keys[i - 1].path.substr(0, keys[i - 1].path.rfind('.')));
    }
    // The YAML written for the defaults holds the key with its value.
    const std::string name = keys[i].path.substr(keys[i].path.rfind('.') + 1);
    CHECK(to_yaml(Config{}).find(name + ":") != std::string::npos);
  }
  CHECK(paths.contains("estimation.neighbors"));
  CHECK(paths.contains("input.curve.secret_key_file"));
}

TEST_CASE("the model's keys fill core's options, whose defaults are the configuration's", "[config]") {
  // No second set of defaults to drift: the YAML keys write xasmap::ModelOptions' members.
  CHECK(Config{}.model == xasmap::ModelOptions{});
  CHECK(xasmap::ModelOptions{}.max_shift_ev == 0.5);
  const Config c = parse_config(R"(
library: {preprocess: {max_shift_ev: 0.3, shift_step_ev: 0.1, background: edge_step, min_coverage: 0.5}}
embedding: {method: isomap, distance: wasserstein, landmarks: 40, landmark_selection: random, seed: 7}
estimation: {neighbors: 6, weighting: inverse_distance, novelty_threshold: 3.5, exact_partial_rows: 5}
)",
                                "model.yaml");
  CHECK(c.model.max_shift_ev == 0.3);
  CHECK(c.model.shift_step_ev == 0.1);
  CHECK(c.model.preprocess.background == xasmap::BackgroundKind::kEdgeStep);
  CHECK(c.model.preprocess.min_coverage == 0.5);
  CHECK(c.model.method == xasmap::EmbeddingKind::kIsomap);
  CHECK(c.model.distance == xasmap::DistanceKind::kWasserstein);
  CHECK(c.model.landmarks == 40);
  CHECK(c.model.landmark_choice == xasmap::LandmarkChoice::kRandom);
  CHECK(c.model.seed == 7u);
  CHECK(c.model.neighbors == 6);
  CHECK(c.model.weighting == xasmap::Weighting::kInverseDistance);
  CHECK(c.model.novelty_threshold == 3.5);
  CHECK(c.model.exact_partial_rows == 5);
  // What is not a key keeps core's default.
  CHECK(c.model.threads == xasmap::ModelOptions{}.threads);
}

TEST_CASE("differences() names the keys that differ, in table order", "[config]") {
  Config a, b;
  b.model.landmarks = 32;
  b.library.grid.step_ev = 0.2;
  b.model.neighbors = 6;  // an estimation key: not fixed by a fitted model
  const std::vector<KeyChange> all = differences(a, b);
  REQUIRE(all.size() == 3);
  CHECK(all[0].path == "library.grid.step_ev");
  CHECK(all[0].from == "0.1");
  CHECK(all[0].to == "0.2");
  CHECK(all[1].path == "embedding.landmarks");
  CHECK(all[2].path == "estimation.neighbors");
  const std::vector<KeyChange> fitted = differences(a, b, true);
  REQUIRE(fitted.size() == 2);
  CHECK(fitted[1].from == "64");
  CHECK(fitted[1].to == "32");
  CHECK(differences(a, a).empty());
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
  CHECK(c.model.method == xasmap::EmbeddingKind::kIsomap);
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
  c.model.preprocess.min_coverage = 0.3;
  c.library.simulate.tendq_ev = Sweep{};
  c.library.simulate.tendq_ev.list = {0.1, 0.2, 0.7, 1.0 / 3.0};
  c.library.simulate.symmetry = Symmetry::kD4h;
  c.library.simulate.ds_ev = Sweep{};
  c.library.simulate.ds_ev.start = -0.1;
  c.library.simulate.ds_ev.stop = 0.1;
  c.library.simulate.ds_ev.step = 0.05;
  c.library.simulate.slater_scale = Sweep::single(0.8);  // separate dd/pd scales need one value
  c.library.simulate.slater_scale_dd = 0.7;
  c.model.novelty_threshold = 1e-7;
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

TEST_CASE("docs/examples/charge_transfer_library.yaml is a valid configuration", "[config]") {
  const Config c = load_config(std::filesystem::path(XASMAP_SOURCE_DIR) / "docs" / "examples" /
                               "charge_transfer_library.yaml");
  CHECK(c.library.simulate.charge_transfer.configurations == 2);
  CHECK(c.library.simulate.charge_transfer.delta_ev.values() == std::vector<double>{1.0, 3.0, 5.0});
  CHECK(c.library.simulate.tendq_ev.values().size() == 11);
}

TEST_CASE("docs/examples/charge_transfer_library_per_ion.yaml is a valid configuration", "[config]") {
  const Config c = load_config(std::filesystem::path(XASMAP_SOURCE_DIR) / "docs" / "examples" /
                               "charge_transfer_library_per_ion.yaml");
  const ChargeTransferConfig& ct = c.library.simulate.charge_transfer;
  CHECK(ct.configurations == 2);
  CHECK(ct.delta_ev.values() == std::vector<double>{-2.0, 0.0, 2.0});
  CHECK(ct.delta_shift_ev == std::map<std::string, double>{{"Mn2+", 7.0}, {"Mn3+", 4.5}, {"Mn4+", 2.0}});
}
