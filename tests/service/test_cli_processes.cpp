// Runs the real xasmapd and xasmap executables as processes and checks their output and exit codes.

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "xasmap/core/model.hpp"

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
  CHECK(t.output.find("Try 'xasmap --help'.") != std::string::npos);
  // A known subcommand's usage error points at that subcommand's own help.
  const Run e = run(kTool + " estimate --modle m.xasm x.csv");
  CHECK(e.status == 64);
  CHECK(e.output ==
        "xasmap: unknown option '--modle' (did you mean '--model'?)\nTry 'xasmap estimate "
        "--help'.\n");
  const Run none = run(kTool + " estimate");
  CHECK(none.status == 64);
  CHECK(none.output.find("Try 'xasmap estimate --help'.") != std::string::npos);
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

namespace {

std::vector<std::pair<double, double>> read_csv_pairs(const std::string& text) {
  std::vector<std::pair<double, double>> rows;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    const auto comma = line.find(',');
    if (comma == std::string::npos) continue;
    rows.emplace_back(std::stod(line.substr(0, comma)), std::stod(line.substr(comma + 1)));
  }
  return rows;
}

}  // namespace

TEST_CASE("xasmap simulate writes energy_eV,intensity", "[integration][cli][simulate]") {
  const Run r = run(kTool + " simulate --ion Mn3+ --tendq 0.9");
  INFO(r.output.substr(0, 300));
  REQUIRE(r.status == 0);
  CHECK(r.output.rfind("energy_eV,intensity\n", 0) == 0);
  const auto rows = read_csv_pairs(r.output);
  CHECK(rows.size() > 300);
  for (std::size_t i = 1; i < rows.size(); ++i) CHECK(rows[i].first > rows[i - 1].first);
}

TEST_CASE("xasmap simulate on the absolute scale, with sticks", "[integration][cli][simulate]") {
  const auto sticks = std::filesystem::temp_directory_path() / "xasmap_cli_sticks.csv";
  const auto out = std::filesystem::temp_directory_path() / "xasmap_cli_spectrum.csv";
  const Run r = run(kTool + " simulate --ion Mn2+ --tendq 0.9 --energy absolute --emin 635 " +
                    "--emax 660 --estep 0.01 --sticks " + sticks.string() + " --out " +
                    out.string() + " --verbose");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("initial dim 252, final dim 1260") != std::string::npos);
  std::ifstream spectrum_file(out);
  const std::string spectrum((std::istreambuf_iterator<char>(spectrum_file)), {});
  const auto rows = read_csv_pairs(spectrum);
  REQUIRE(rows.size() == 2501);
  // The shipped calibration puts the Mn2+ (10Dq 0.9) L3 maximum at the poster's 640.40 eV.
  auto peak = rows.front();
  for (const auto& row : rows) {
    if (row.first < 646 && row.second > peak.second) peak = row;
  }
  CHECK(peak.first == Approx(640.40).margin(0.05));
  std::ifstream sticks_file(sticks);
  const std::string stick_text((std::istreambuf_iterator<char>(sticks_file)), {});
  double sum = 0;
  for (const auto& row : read_csv_pairs(stick_text)) sum += row.second;
  CHECK(sum == Approx(5 * 2.0 / 15.0).epsilon(1e-6));  // 5 holes, 2/15 each
  std::filesystem::remove(sticks);
  std::filesystem::remove(out);
}

TEST_CASE("xasmap simulate refuses bad options with the reason", "[integration][cli][simulate]") {
  const Run no_ion = run(kTool + " simulate --tendq 1");
  CHECK(no_ion.status == 64);
  CHECK(no_ion.output.find("needs --ion") != std::string::npos);
  const Run bad_ion = run(kTool + " simulate --ion Zn2+");
  CHECK(bad_ion.status == 1);
  CHECK(bad_ion.output.find("Ti..Cu") != std::string::npos);
  const Run unsigned_ion = run(kTool + " simulate --ion Mn2 --tendq 1");
  CHECK(unsigned_ion.status == 1);
  CHECK(unsigned_ion.output.find("ion 'Mn2': write the charge with its sign, e.g. Mn2+") !=
        std::string::npos);
  CHECK(unsigned_ion.output.find("energy_eV") == std::string::npos);  // no spectrum
  const Run oh_ds = run(kTool + " simulate --ion Mn3+ --ds 0.1 --symmetry Oh");
  CHECK(oh_ds.status == 64);
  CHECK(oh_ds.output.find("need --symmetry D4h") != std::string::npos);
  const Run bad_set = run(kTool + " simulate --ion Mn3+ --set zeta_2p=7");
  CHECK(bad_set.status == 64);
  CHECK(bad_set.output.find("did you mean 'zeta2p'?") != std::string::npos);
  const Run no_offset = run(kTool + " simulate --ion Fe3+ --energy absolute");
  CHECK(no_offset.status == 64);
  CHECK(no_offset.output.find("no energy offset for Fe3+") != std::string::npos);
}

// The energy and the first configuration weight of `xasmap simulate --ground-state-json`'s object.
std::pair<double, double> ground_state_json(const std::string& output) {
  const auto energy_at = output.find("\"energy_ev\": ");
  const auto weights_at = output.find("\"weights\": [");
  REQUIRE(energy_at != std::string::npos);
  REQUIRE(weights_at != std::string::npos);
  return {std::stod(output.substr(energy_at + 13)), std::stod(output.substr(weights_at + 12))};
}

TEST_CASE("xasmap simulate with charge transfer prints the ground state as JSON", "[integration][cli][simulate]") {
  // ttmult's ni2_d8_oh fixture: ground state -3.449934 eV, weights 0.88520 / 0.11480
  // (tests/core/test_charge_transfer.cpp checks the model itself).
  const Run r = run(kTool + " simulate --ion Ni2+ --tendq 1.0 --delta 5 --upd 6 --veg 2 --vt2g 1 --ground-state-json");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto [energy, weight] = ground_state_json(r.output);
  CHECK(energy == Approx(-3.4499).margin(1e-3));
  CHECK(weight == Approx(0.8852).margin(5e-4));
  CHECK(r.output.find("energy_eV") == std::string::npos);  // no spectrum
  const Run hop_without_ct = run(kTool + " simulate --ion Ni2+ --veg 2");
  CHECK(hop_without_ct.status == 64);
  CHECK(hop_without_ct.output.find("--veg needs charge transfer") != std::string::npos);
  const Run too_many = run(kTool + " simulate --ion Cu2+ --configurations 3 --delta 3");
  CHECK(too_many.status == 1);
  CHECK(too_many.output.find("room for 1") != std::string::npos);
}

TEST_CASE("xasmap simulate --ttmult runs a ttmult input as it is, on ttmult's axis", "[integration][cli][simulate]") {
  // The fixtures' .ban files as CTM4XAS users have them: the ground state as ttmult prints it, and
  // the spectrum on the fixture's own energy grid with its broadening, compared point for point
  // with no shift (measured: cosine 0.9996 and 0.9994, maxima at the same energy).
  const std::string dir = std::string(XASMAP_TEST_DATA_DIR) + "/ttmult/";
  struct Case {
    const char* stem;
    double energy, weight;  // ttmult's lowest Eg0 and its first configuration weight
  };
  for (const Case& c : {Case{"ni2_d8_oh", -3.449934483, 0.88520}, Case{"ti4_d0_oh", -3.261953354, 0.67015}}) {
    INFO(c.stem);
    const Run ground = run(kTool + " simulate --ttmult " + dir + c.stem + ".ban --ground-state-json");
    INFO(ground.output);
    REQUIRE(ground.status == 0);
    const auto [energy, weight] = ground_state_json(ground.output);
    CHECK(energy == Approx(c.energy).margin(5e-3));
    CHECK(weight == Approx(c.weight).margin(5e-3));
    const std::string out = (std::filesystem::temp_directory_path() / (std::string("xasmap_tt_") + c.stem + ".csv")).string();
    const Run spectrum = run(kTool + " simulate --ttmult " + dir + c.stem + ".ban --out " + out);
    REQUIRE(spectrum.status == 0);
    std::ifstream ours_file(out);
    const std::string ours_text((std::istreambuf_iterator<char>(ours_file)), {});
    const auto ours = read_csv_pairs(ours_text);
    std::ifstream xy(dir + c.stem + ".xy");
    std::vector<std::pair<double, double>> ref;
    for (double e = 0, y = 0; xy >> e >> y;) ref.emplace_back(e, y);
    REQUIRE(ours.size() == ref.size());
    double ab = 0, aa = 0, bb = 0;
    std::size_t top_ours = 0, top_ref = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      CHECK(ours[i].first == Approx(ref[i].first).margin(1e-3));
      ab += ours[i].second * ref[i].second;
      aa += ours[i].second * ours[i].second;
      bb += ref[i].second * ref[i].second;
      if (ours[i].second > ours[top_ours].second) top_ours = i;
      if (ref[i].second > ref[top_ref].second) top_ref = i;
    }
    CHECK(ab / std::sqrt(aa * bb) >= 0.99);
    CHECK(std::abs(ours[top_ours].first - ref[top_ref].first) <= 0.02);
    std::filesystem::remove(out);
  }
  // A D4h input with its .rcg beside it (nid8ct; tests/core/test_charge_transfer.cpp compares its
  // sticks), and the same with the Ni1+ Hartree-Fock output of ni2_d8_oh instead (the first
  // configuration's terms then come from the atomic table).
  for (const std::string& extra : {std::string(), " --hartree-fock " + dir + "ni2_d8_oh.rcn31_out"}) {
    const Run d4h = run(kTool + " simulate --ttmult " + dir + "nid8ct.ban --ground-state-json" + extra);
    INFO(d4h.output);
    REQUIRE(d4h.status == 0);
    const auto [energy, weight] = ground_state_json(d4h.output);
    CHECK(energy == Approx(-3.450601).margin(5e-3));
    CHECK(weight == Approx(0.88502).margin(5e-3));
  }
  const Run lone = run(kTool + " simulate --ion Ni2+ --hartree-fock " + dir + "ni2_d8_oh.rcn31_out");
  CHECK(lone.status == 64);
  CHECK(lone.output.find("--hartree-fock needs --ttmult") != std::string::npos);
  const Run both = run(kTool + " simulate --ttmult " + dir + "ni2_d8_oh.ban --ion Ni2+");
  CHECK(both.status == 64);
  CHECK(both.output.find("--ion cannot be given with --ttmult") != std::string::npos);
}

TEST_CASE("xasmap library writes one CSV per spectrum and a manifest", "[integration][cli][library]") {
  const auto dir = std::filesystem::temp_directory_path() / "xasmap_cli_library";
  std::filesystem::remove_all(dir);
  const std::string config = write_temp(
      "xasmap_cli_library.yaml",
      "library:\n  simulate:\n    ions: [Mn2+, Mn4+]\n    tendq_ev: [0.5, 1.5]\n"
      "    slater_scale: 0.8\n    temperature_k: 300\n    gauss_fwhm_ev: 0.3\n"
      "  grid: {emin_ev: 636, emax_ev: 658, step_ev: 0.2}\n");
  const Run r = run(kTool + " library --config " + config + " --out " + dir.string());
  INFO(r.output);
  REQUIRE(r.status == 0);
  std::ifstream manifest(dir / "manifest.csv");
  const std::string text((std::istreambuf_iterator<char>(manifest)), {});
  CHECK(text ==
        "file,charge,tendq\nMn2_tendq0.5.csv,2,0.5\nMn2_tendq1.5.csv,2,1.5\n"
        "Mn4_tendq0.5.csv,4,0.5\nMn4_tendq1.5.csv,4,1.5\n");
  std::ifstream spectrum(dir / "Mn4_tendq1.5.csv");
  const std::string spectrum_text((std::istreambuf_iterator<char>(spectrum)), {});
  CHECK(read_csv_pairs(spectrum_text).size() == 111);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(config);
}

TEST_CASE("xasmap library sweeps charge transfer and labels each spectrum's ground state", "[integration][cli][library]") {
  // Ni2+ 3d8 + 3d9L at two charge-transfer energies: the smaller one mixes more 3d9L into the
  // ground state; n_d = 8 + w(3d9L) and covalency = w(3d9L) come from the simulation.
  const auto dir = std::filesystem::temp_directory_path() / "xasmap_cli_ct_library";
  std::filesystem::remove_all(dir);
  const std::string config = write_temp(
      "xasmap_cli_ct_library.yaml",
      "library:\n  simulate:\n    ions: [Ni2+]\n    tendq_ev: 1.0\n    energy_offset_ev: {Ni2+: 855.0}\n"
      "    slater_scale: 0.8\n    temperature_k: 300\n    gauss_fwhm_ev: 0.3\n"
      "    charge_transfer: {configurations: 2, delta_ev: [2.0, 6.0], udd_ev: 7.0, upd_ev: 8.0, veg_ev: 2.0, vt2g_ev: 1.0}\n"
      "  grid: {emin_ev: 845, emax_ev: 880, step_ev: 0.2}\n");
  const Run r = run(kTool + " library --config " + config + " --out " + dir.string());
  INFO(r.output);
  REQUIRE(r.status == 0);
  std::ifstream manifest(dir / "manifest.csv");
  std::string header, row;
  REQUIRE(std::getline(manifest, header));
  CHECK(header == "file,charge,tendq,delta,n_d,covalency");
  std::vector<std::vector<std::string>> rows;
  while (std::getline(manifest, row)) {
    std::vector<std::string> cells;
    std::istringstream in(row);
    for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
    rows.push_back(cells);
  }
  REQUIRE(rows.size() == 2);
  CHECK(rows[0][0] == "Ni2_tendq1_delta2.csv");
  CHECK(rows[1][0] == "Ni2_tendq1_delta6.csv");
  const double covalent = std::stod(rows[0][5]), ionic = std::stod(rows[1][5]);
  CHECK(std::stod(rows[0][4]) == Approx(8.0 + covalent).margin(2e-6));
  CHECK(std::stod(rows[1][4]) == Approx(8.0 + ionic).margin(2e-6));
  CHECK(ionic > 0.02);
  CHECK(covalent > ionic + 0.05);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(config);
}

TEST_CASE("xasmap embed writes a model that xasmap estimate uses", "[integration][cli][estimate]") {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string config = write_temp(
      "xasmap_cli_embed.yaml",
      "library:\n  simulate:\n    ions: [Mn2+, Mn4+]\n    tendq_ev: [0.5, 1.0, 1.5]\n"
      "    slater_scale: 0.8\n    temperature_k: 300\n    gauss_fwhm_ev: 0.3\n"
      "embedding: {landmarks: 32, estimate_dims: 6}\n");
  const std::string model = (dir / "xasmap_cli.xasm").string();
  const Run embed = run(kTool + " embed --config " + config + " --out " + model);
  INFO(embed.output);
  REQUIRE(embed.status == 0);
  CHECK(embed.output.find("6 spectra (126 rows with shifted copies)") != std::string::npos);

  const std::string data = XASMAP_TEST_DATA_DIR;
  const std::string broken = write_temp("xasmap_cli_broken.csv", "energy,intensity\n640,1\n641,x\n");
  const Run json = run(kTool + " estimate --json --model " + model + " " + data +
                       "/xrm2018/poster_fig2_MnO_measured.csv " + broken);
  INFO(json.output);
  CHECK(json.status == 1);  // one file failed
  std::istringstream lines(json.output);
  std::string first, second;
  std::getline(lines, first);
  std::getline(lines, second);
  CHECK(first.find("\"params\":{\"charge\":2,\"tendq\":") != std::string::npos);
  CHECK(first.find("\"confidence\":{\"charge\":") != std::string::npos);
  CHECK(first.find("\"uncertainty\":{\"tendq\":") != std::string::npos);
  CHECK(first.find("\"neighbors\":[{\"label\":\"Mn2_tendq") != std::string::npos);
  CHECK(first.find("\"in_library\":") != std::string::npos);
  CHECK(second.find("\"error\":") != std::string::npos);
  CHECK(second.find("xasmap_cli_broken.csv:3: expected numbers") != std::string::npos);

  const Run table = run(kTool + " estimate --model " + model + " " + data +
                        "/experimental/xinhuolin_MnEdgeNet/Data2_SrMnO3.csv");
  INFO(table.output);
  CHECK(table.status == 0);
  CHECK(table.output.find("charge") != std::string::npos);
  CHECK(table.output.find("4 (") != std::string::npos);
  CHECK(table.output.find("valence (mixture)") == std::string::npos);  // estimation.mixture off

  // --mixture auto: the mixture map in JSON (the protocol's keys) and a column in the table.
  const Run mixed_json = run(kTool + " estimate --json --mixture auto --model " + model + " " + data +
                             "/experimental/xinhuolin_MnEdgeNet/Data2_MnO.csv");
  INFO(mixed_json.output);
  CHECK(mixed_json.status == 0);
  CHECK(mixed_json.output.find("\"mixture\":{\"mean_valence\":2,\"mean_valence_sd\":") != std::string::npos);
  CHECK(mixed_json.output.find("\"components\":[{\"charge\":2,\"fraction\":1,") != std::string::npos);
  const Run mixed_table = run(kTool + " estimate --mixture auto --model " + model + " " + data +
                              "/experimental/xinhuolin_MnEdgeNet/Data2_MnO.csv");
  INFO(mixed_table.output);
  CHECK(mixed_table.output.find("valence (mixture)") != std::string::npos);
  CHECK(mixed_table.output.find("2.00 single phase") != std::string::npos);
  const Run bad_mode = run(kTool + " estimate --mixture maybe --model " + model + " " + data +
                           "/experimental/xinhuolin_MnEdgeNet/Data2_MnO.csv");
  CHECK(bad_mode.status == 64);
  CHECK(bad_mode.output.find("--mixture must be auto or off, not 'maybe'") != std::string::npos);

  // A folder and a missing file among the inputs are reported; the other files still get their row.
  const auto folder = dir / "xasmap_cli_scans";
  std::filesystem::create_directories(folder);
  const Run mixed = run(kTool + " estimate --model " + model + " " + folder.string() + " " + data +
                        "/experimental/xinhuolin_MnEdgeNet/Data2_SrMnO3.csv " +
                        (dir / "xasmap_none.csv").string());
  INFO(mixed.output);
  CHECK(mixed.status == 1);
  CHECK(mixed.output.find("xasmap estimate: " + folder.string() +
                          ": is a directory; give the spectrum files in it") != std::string::npos);
  CHECK(mixed.output.find("xasmap_none.csv: no such file") != std::string::npos);
  CHECK(mixed.output.find("Data2_SrMnO3.csv") != std::string::npos);
  CHECK(mixed.output.find("4 (") != std::string::npos);
  CHECK(mixed.output.find("basic_filebuf") == std::string::npos);
  std::filesystem::remove_all(folder);

  // Energy, I0 and TEY columns: TEY / I0 is the spectrum, and it is the one the two columns hold.
  {
    std::ifstream in(data + "/experimental/xinhuolin_MnEdgeNet/Data2_SrMnO3.csv");
    std::string line, three = "energy_kev;i0;tey\n";
    std::getline(in, line);
    for (int row = 0; std::getline(in, line); ++row) {
      const auto comma = line.find(',');
      if (comma == std::string::npos) continue;
      const double i0 = 1.0 + 0.01 * (row % 7);
      std::ostringstream out;
      out.precision(12);
      out << std::stod(line.substr(0, comma)) / 1000.0 << ";" << i0 << ";"
          << std::stod(line.substr(comma + 1)) * i0 << "\n";
      three += out.str();
    }
    const std::string file = write_temp("xasmap_cli_three.csv", three);
    const Run columns =
        run(kTool + " estimate --model " + model + " --energy-unit keV --intensity-column tey " +
            "--normalize-by 2 " + file);
    INFO(columns.output);
    CHECK(columns.status == 0);
    CHECK(columns.output.find("4 (") != std::string::npos);
    const Run unknown =
        run(kTool + " estimate --model " + model + " --intensity-column it " + file);
    CHECK(unknown.status == 1);
    CHECK(unknown.output.find("no intensity column 'it' among 3 columns (energy_kev, i0, tey)") !=
          std::string::npos);
    std::filesystem::remove(file);
  }

  const Run missing = run(kTool + " estimate --model " + (dir / "xasmap_none.xasm").string() + " x.csv");
  CHECK(missing.status == 1);
  CHECK(missing.output.find("cannot read the model file") != std::string::npos);
  std::filesystem::remove(model);
  std::filesystem::remove(config);
  std::filesystem::remove(broken);
}

TEST_CASE("xasmap feed reads its files with the column and unit options",
          "[integration][cli][feed]") {
  const Run help = run(kTool + " feed --help");
  CHECK(help.output.find("--energy-unit eV|keV") != std::string::npos);
  CHECK(help.output.find("--normalize-by COL") != std::string::npos);
  const std::string file =
      write_temp("xasmap_cli_feed_three.dat", "energy i0 tey\n640 1 2\n641 1 3\n");
  // The files are read before any socket is opened: these fail on the reading alone.
  const Run unknown =
      run(kTool + " feed --endpoint ipc:///nonexistent/x --intensity-column it " + file);
  CHECK(unknown.status == 1);
  CHECK(unknown.output.find("no intensity column 'it' among 3 columns (energy, i0, tey)") !=
        std::string::npos);
  const Run unit = run(kTool + " feed --energy-unit mev " + file);
  CHECK(unit.status == 64);
  CHECK(unit.output.find("--energy-unit must be eV or keV") != std::string::npos);
  std::filesystem::remove(file);
}

TEST_CASE("xasmap status prints a table, and the reply's JSON with --json",
          "[integration][cli][status]") {
  const auto dir = std::filesystem::temp_directory_path() / "xasmap_cli_status";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string tiny =
      write_temp("xasmap_cli_status_lib.yaml",
                 "library:\n  simulate:\n    ions: [Mn2+, Mn4+]\n    tendq_ev: [0.5, 1.5]\n"
      "    slater_scale: 0.8\n    temperature_k: 300\n    gauss_fwhm_ev: 0.3\n"
                 "embedding: {landmarks: 16, estimate_dims: 3}\n");
  REQUIRE(run(kTool + " embed --config " + tiny + " --out " + (dir / "m.xasm").string()).status ==
          0);
  const std::string control = "ipc://" + (dir / "control.ipc").string();
  std::ofstream(dir / "d.yaml") << "library:\n  source: model\n  model_file: m.xasm\n"
                                << "input:\n  endpoint: ipc://" << (dir / "in.ipc").string() << "\n"
                                << "output:\n  endpoint: ipc://" << (dir / "out.ipc").string()
                                << "\n"
                                << "control:\n  endpoint: " << control << "\n";
  // The daemon in the background; the table once it is ready, then the JSON, then shut it down.
  Run r = run(kDaemon + " --config " + (dir / "d.yaml").string() + " > " + (dir / "log").string() +
              " 2>&1 & pid=$!; " + kTool + " status --control " + control +
              " --wait 60 && echo '--- json' && " + kTool + " status --json --control " + control +
              "; echo \"--- status $?\"; " + kTool + " status --cmd shutdown --control " + control +
              " > /dev/null || kill $pid; wait $pid");
  INFO(r.output);
  REQUIRE(r.status == 0);  // the daemon's, which stopped cleanly
  CHECK(r.output.find("--- status 0\n") != std::string::npos);
  r.output.resize(r.output.find("--- status"));
  const auto split = r.output.find("--- json\n");
  REQUIRE(split != std::string::npos);
  const std::string table = r.output.substr(0, split), json = r.output.substr(split + 9);
  // One "key  value" line per field, values in one column; nested maps as dotted keys.
  std::istringstream lines(table);
  std::string line;
  std::size_t column = std::string::npos;
  int rows = 0;
  while (std::getline(lines, line)) {
    ++rows;
    const auto gap = line.find("  ");
    REQUIRE(gap != std::string::npos);
    const auto value_at = line.find_first_not_of(' ', gap);
    if (column == std::string::npos) column = value_at;
    CHECK(value_at == column);
  }
  CHECK(rows >= 20);
  CHECK(table.rfind("ready ", 0) == 0);  // "ok: true" is implied and left out
  CHECK(table.find("\nready") == std::string::npos);
  CHECK(table.find("yes\n") != std::string::npos);
  CHECK(table.find("\nendpoints.control") != std::string::npos);
  CHECK(table.find(control + "\n") != std::string::npos);
  CHECK(table.find('{') == std::string::npos);
  CHECK(json.rfind("{\"ok\":true,", 0) == 0);
  CHECK(json.find("\"ready\":true") != std::string::npos);
  CHECK(std::count(json.begin(), json.end(), '\n') == 1);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(tiny);
}

TEST_CASE("xasmap feed reports its rate to 3 significant digits", "[integration][cli][feed]") {
  // PUB connecting to an endpoint nobody binds: the messages are dropped, not queued, and feed
  // ends.
  const std::string data = XASMAP_TEST_DATA_DIR;
  const auto endpoint =
      "ipc://" + (std::filesystem::temp_directory_path() / "xasmap_cli_nobody").string();
  const Run r =
      run(kTool + " feed --connect --pattern pub --input " + endpoint + " --rate 7 --count 3 " +
          data + "/experimental/xinhuolin_MnEdgeNet/Data2_SrMnO3.csv");
  INFO(r.output);
  REQUIRE(r.status == 0);
  const auto at = r.output.find("xasmap feed: sent 3 file messages to " + endpoint + " in ");
  REQUIRE(at != std::string::npos);
  // "in 0.29 s (10.5 /s)": two decimals of seconds; the rate (3 messages in 2/7 s and a little) to
  // 3 digits.
  double seconds = 0, rate = 0;
  char unit[8] = {};
  REQUIRE(std::sscanf(r.output.c_str() + r.output.find(" in ", at) + 4, "%lf s (%lf %7s", &seconds,
                      &rate, unit) == 3);
  CHECK(std::string(unit) == "/s)");
  const std::string text = r.output.substr(r.output.find('(', at) + 1);
  const std::string digits = text.substr(0, text.find(' '));
  CHECK(digits.size() <= 4);  // e.g. 10.5
  CHECK(rate == Approx(3 / seconds).epsilon(0.05));
  CHECK(rate < 12);
}

TEST_CASE("xasmap estimate refuses spectra outside the library's domain, naming why", "[integration][cli][estimate]") {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string config = write_temp(
      "xasmap_cli_domain.yaml",
      "library:\n  simulate:\n    ions: [Mn2+, Mn4+]\n    tendq_ev: [0.5, 1.0, 1.5]\n"
      "    slater_scale: 0.8\n    temperature_k: 300\n    gauss_fwhm_ev: 0.3\n"
      "embedding: {landmarks: 32, estimate_dims: 6}\n");
  const std::string model = (dir / "xasmap_cli_domain.xasm").string();
  REQUIRE(run(kTool + " embed --config " + config + " --out " + model).status == 0);
  // Noise; a scan over Fe L2,3 (Lorentzian lines at 708.8 and 721.6 eV); energies in keV.
  std::ostringstream noise, fe, kev;
  noise << "energy,intensity\n";
  fe << "energy,intensity\n";
  kev << "energy,intensity\n";
  unsigned state = 12345;
  for (int i = 0; i <= 250; ++i) {
    const double e = 635.0 + 0.1 * i;
    state = state * 1103515245u + 12345u;
    noise << e << "," << 1.0 + 0.1 * (static_cast<double>((state >> 8) % 1000) / 1000.0 - 0.5) << "\n";
    const double x = (e - 640.0) / 0.8;
    kev << e / 1000.0 << "," << 0.1 + 1.0 / (1 + x * x) << "\n";
  }
  for (int i = 0; i <= 1000; ++i) {
    const double e = 630.0 + 0.1 * i, x3 = (e - 708.8) / 0.5, x2 = (e - 721.6) / 0.8;
    fe << e << "," << 2.0 / (1 + x3 * x3) + 1.0 / (1 + x2 * x2) << "\n";
  }
  const std::string files = " " + write_temp("xasmap_cli_noise.csv", noise.str()) + " " +
                            write_temp("xasmap_cli_fe.csv", fe.str()) + " " +
                            write_temp("xasmap_cli_kev.csv", kev.str());
  const Run r = run(kTool + " estimate --model " + model + files);
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("xasmap_cli_noise.csv: no absorption edge on 635.0-660.0 eV") != std::string::npos);
  CHECK(r.output.find("times its noise") != std::string::npos);
  CHECK(r.output.find("xasmap_cli_fe.csv: no absorption edge") != std::string::npos);
  CHECK(r.output.find("near Fe L3 (706.8 eV)") != std::string::npos);
  CHECK(r.output.find(
            "xasmap_cli_kev.csv: the energies (0.6350-0.6600) look like keV; the library's grid is "
            "635.0-660.0 eV; use --energy-unit keV\n") != std::string::npos);
  // None of them got an estimate row.
  CHECK(r.output.find("xasmap_cli_noise.csv   ") == std::string::npos);
  // Told the unit, the keV file is read in eV and estimated.
  const Run in_kev = run(kTool + " estimate --json --energy-unit keV --model " + model + " " +
                         write_temp("xasmap_cli_kev.csv", kev.str()));
  INFO(in_kev.output);
  CHECK(in_kev.status == 0);
  CHECK(in_kev.output.find("\"params\":{\"charge\":") != std::string::npos);
  const Run bad_unit = run(kTool + " estimate --energy-unit meV --model " + model + files);
  CHECK(bad_unit.status == 64);
  CHECK(bad_unit.output.find("--energy-unit must be eV or keV, not 'meV'") != std::string::npos);
  // A scan wholly on the Fe L edge (700-747 eV) misses the grid: the reason names the edge it is
  // on.
  std::ostringstream fe_only;
  fe_only << "energy,intensity\n";
  for (int i = 0; i <= 470; ++i) {
    const double e = 700.0 + 0.1 * i, x3 = (e - 708.8) / 0.5, x2 = (e - 721.6) / 0.8;
    fe_only << e << "," << 2.0 / (1 + x3 * x3) + 1.0 / (1 + x2 * x2) << "\n";
  }
  const Run other_edge = run(kTool + " estimate --model " + model + " " +
                             write_temp("xasmap_cli_fe_only.csv", fe_only.str()));
  INFO(other_edge.output);
  CHECK(other_edge.status == 1);
  CHECK(other_edge.output.find(
            "xasmap_cli_fe_only.csv: the spectrum (700.0-747.0 eV) covers 0% of the library's grid "
            "635.0-660.0 eV; at least") != std::string::npos);
  CHECK(other_edge.output.find("near Fe L3 (706.8 eV)") != std::string::npos);
  std::filesystem::remove(model);
  std::filesystem::remove(config);
}

TEST_CASE("xasmap scale-library writes a matrix library that embed fits in place", "[integration][cli][library]") {
  const auto dir = std::filesystem::temp_directory_path() / "xasmap_cli_scale";
  std::filesystem::remove_all(dir);
  // 3 ions x 3 10Dq nodes x one (Ds, Dt) x one scaling: 9 calculations, 3000 interpolated spectra.
  const Run made = run(kTool + " scale-library --out " + dir.string() +
                       " --spectra 3000 --points 251 --tendq-step 1.25 --slater 0.8 --ds-dt 0:0 --threads 2");
  INFO(made.output);
  REQUIRE(made.status == 0);
  CHECK(made.output.find("3000 spectra x 251 points") != std::string::npos);
  CHECK(made.output.find("from 9 simulations (27 broadened nodes)") != std::string::npos);
  std::ifstream manifest(dir / "manifest.csv");
  std::string header;
  std::getline(manifest, header);
  CHECK(header == "label,charge,tendq,ds,dt,slater_scale,lorentz_l3");
  const Run bad = run(kTool + " scale-library --out " + dir.string() + "_bad --slater 0.8,x");
  CHECK(bad.status == 64);
  CHECK(bad.output.find("--slater: 'x' is not a number") != std::string::npos);

  const std::string config = write_temp(
      "xasmap_cli_scale.yaml",
      "library:\n  source: files\n  directory: " + dir.string() +
          "\n  grid: {emin_ev: 635, emax_ev: 660, step_ev: 0.1}\n  preprocess: {align: none}\n"
          "embedding: {landmarks: 32, estimate_dims: 6}\n");
  const std::string model = (dir / "scale.xasm").string();
  const Run embed = run(kTool + " embed --config " + config + " --out " + model);
  INFO(embed.output);
  REQUIRE(embed.status == 0);
  CHECK(embed.output.find("3000 spectra") != std::string::npos);
  const std::string data = XASMAP_TEST_DATA_DIR;
  const Run json = run(kTool + " estimate --json --model " + model + " " + data +
                       "/xrm2018/poster_fig2_MnO_measured.csv");
  INFO(json.output);
  CHECK(json.status == 0);
  CHECK(json.output.find("\"charge\":2,") != std::string::npos);

  // The daemon's own start-up path refuses shifted copies for a matrix library, naming the key.
  const std::string shifted = write_temp(
      "xasmap_cli_scale_shift.yaml",
      "library:\n  source: files\n  directory: " + dir.string() + "\n  preprocess: {align: fit_shift}\n");
  const Run refused = run(kTool + " embed --config " + shifted + " --out " + model);
  CHECK(refused.status != 0);
  CHECK(refused.output.find("library.preprocess.align") != std::string::npos);
  std::filesystem::remove_all(dir);
  std::filesystem::remove(config);
  std::filesystem::remove(shifted);
}

namespace {

// `text` (a CSV of energy,intensity with one header line) with every energy moved by `shift_ev`.
std::string shifted_csv(const std::string& path, double shift_ev) {
  std::ifstream in(path);
  std::string line, out;
  std::getline(in, line);
  out = line + "\n";
  while (std::getline(in, line)) {
    const auto comma = line.find(',');
    if (comma == std::string::npos) continue;
    std::ostringstream row;
    row.precision(10);
    row << std::stod(line.substr(0, comma)) + shift_ev << "," << line.substr(comma + 1) << "\n";
    out += row.str();
  }
  return out;
}

double json_number(const std::string& text, const std::string& key) {
  const auto at = text.find("\"" + key + "\":");
  REQUIRE(at != std::string::npos);
  return std::stod(text.substr(at + key.size() + 3));
}

}  // namespace

TEST_CASE("xasmap calibrate finds a session offset from a standard, and estimate uses it", "[integration][cli][calibrate]") {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string config = write_temp(
      "xasmap_cli_calibrate.yaml",
      "library:\n  simulate:\n    ions: [Mn2+, Mn3+, Mn4+]\n    tendq_ev: [0.5, 1.0, 1.5]\n"
      "    slater_scale: 0.8\n    temperature_k: 300\n    gauss_fwhm_ev: 0.3\n"
      "embedding: {landmarks: 32, estimate_dims: 6}\n");
  const std::string model = (dir / "xasmap_cli_calibrate.xasm").string();
  REQUIRE(run(kTool + " embed --config " + config + " --out " + model).status == 0);
  const std::string mno = std::string(XASMAP_TEST_DATA_DIR) + "/experimental/xinhuolin_MnEdgeNet/Data3_MnO.csv";
  const std::string moved = write_temp("xasmap_cli_MnO_moved.csv", shifted_csv(mno, 0.9));

  const Run as_is = run(kTool + " calibrate --json --charge 2 --model " + model + " " + mno);
  const Run shifted = run(kTool + " calibrate --json --charge 2 --model " + model + " " + moved);
  INFO(as_is.output << shifted.output);
  REQUIRE(as_is.status == 0);
  REQUIRE(shifted.status == 0);
  const double o0 = json_number(as_is.output, "session_offset_ev");
  const double o1 = json_number(shifted.output, "session_offset_ev");
  CHECK(std::abs(o1 - o0 - 0.9) <= 0.1);
  CHECK(json_number(shifted.output, "probability") >= 0.9);

  // A config naming the standard: estimate calibrates on it, says so, and places the standard.
  const std::string calibrated = write_temp(
      "xasmap_cli_calibrated.yaml", "calibration: {reference_file: " + moved + ", reference_charge: 2}\n");
  const Run e = run(kTool + " estimate --model " + model + " --config " + calibrated + " " + moved);
  INFO(e.output);
  CHECK(e.status == 0);
  CHECK(e.output.find("session offset +0.") != std::string::npos);
  CHECK(e.output.find("(calibrated on " + moved) != std::string::npos);
  CHECK(e.output.find("2 (") != std::string::npos);

  // Not calibrated, the session offset is searched (--search; calibration.search_ev, 1 eV): the
  // standard moved 0.9 eV up is found there, beyond the per-spectrum search's 0.5 eV.
  const Run searched = run(kTool + " estimate --json --model " + model + " " + moved);
  INFO(searched.output);
  CHECK(searched.status == 0);
  CHECK(searched.output.find("\"charge\":2,") != std::string::npos);
  CHECK(std::abs(json_number(searched.output, "energy_shift_ev") - o1) <= 0.15);
  const Run bad_search = run(kTool + " estimate --search 5 --model " + model + " " + moved);
  CHECK(bad_search.status == 64);
  CHECK(bad_search.output.find("--search must be within 0-3 eV") != std::string::npos);

  const Run no_charge = run(kTool + " calibrate --model " + model + " " + mno);
  CHECK(no_charge.status == 64);
  CHECK(no_charge.output.find("--charge") != std::string::npos);
  const Run bad_charge = run(kTool + " calibrate --charge 7 --model " + model + " " + mno);
  CHECK(bad_charge.status == 1);
  CHECK(bad_charge.output.find("no spectrum of charge 7") != std::string::npos);
  for (const std::string& f : {model, config, moved, calibrated}) std::filesystem::remove(f);
}

TEST_CASE("xasmapd --check-config warns about a control endpoint on every interface", "[integration][cli]") {
  // Only checked, never bound: no socket is opened on a public interface.
  const std::string file = write_temp("xasmap_cli_wildcard.yaml", "control:\n  endpoint: tcp://*:5557\n");
  const Run r = run(kDaemon + " --check-config " + file);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("xasmapd: warning: control.endpoint 'tcp://*:5557' listens on every network "
                      "interface") != std::string::npos);
  const Run local = run(kDaemon + " --check-config " + kDeployConfig);
  CHECK(local.output.find("warning") == std::string::npos);
  std::filesystem::remove(file);
}

TEST_CASE("a model write killed midway leaves the old model file loadable", "[integration][cli][model]") {
  const auto dir = std::filesystem::temp_directory_path() / "xasmap_cli_model_write";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string model = (dir / "model.xasm").string();
  // A small library (6 spectra, a model of about 160 kB) so that the two writes take a second.
  const std::string config =
      write_temp("xasmap_cli_model_write.yaml",
                 "library:\n  simulate:\n    ions: [Mn2+, Mn4+]\n    tendq_ev: [0.5, 1.0, 1.5]\n"
                 "    slater_scale: 0.8\n    temperature_k: 300\n    gauss_fwhm_ev: 0.3\n"
                 "embedding: {landmarks: 16, estimate_dims: 3}\n");
  const Run first = run(kTool + " embed --config " + config + " --out " + model);
  INFO(first.output);
  REQUIRE(first.status == 0);
  const auto read_all = [](const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string before = read_all(model);
  REQUIRE(before.size() > 100000);
  // The second writer aborts (SIGABRT) after 50,000 bytes of the new model, a crash mid-write.
  const Run killed = run("XASMAP_TEST_ABORT_MODEL_WRITE_AFTER_BYTES=50000 " + kTool + " embed --config " +
                         config + " --out " + model);
  INFO(killed.output);
  CHECK(killed.status != 0);
  CHECK(read_all(model) == before);
  CHECK_NOTHROW(xasmap::Model::load(model));
  CHECK(xasmap::Model::check_file(model).payload_bytes + 28 == before.size());
  std::filesystem::remove_all(dir);
  std::filesystem::remove(config);
}

TEST_CASE("a damaged model file fails --check-config and start-up with 65, which systemd does not retry",
          "[integration][cli][model]") {
  const auto dir = std::filesystem::temp_directory_path() / "xasmap_cli_damaged_model";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // A model file's header announcing 1000 bytes of payload, with 10 bytes of garbage behind it.
  {
    std::ofstream f(dir / "bad.xasm", std::ios::binary);
    const std::uint32_t version = 3;  // the current format (model_io.cpp)
    const std::uint64_t length = 1000;
    f.write("XASMAPMD", 8);
    f.write(reinterpret_cast<const char*>(&version), 4);
    f.write(reinterpret_cast<const char*>(&length), 8);
    f.write("0123456789", 10);
  }
  std::ofstream(dir / "bad.yaml") << "library:\n  source: model\n  model_file: bad.xasm\n"
                                  << "output:\n  endpoint: ipc://" << (dir / "out.ipc").string() << "\n"
                                  << "control:\n  endpoint: ipc://" << (dir / "control.ipc").string() << "\n";
  const std::string config = (dir / "bad.yaml").string();
  const Run check = run(kDaemon + " --check-config " + config);
  INFO(check.output);
  CHECK(check.status == 65);
  CHECK(check.output.find("library.model_file") != std::string::npos);
  CHECK(check.output.find("truncated model file") != std::string::npos);
  const Run start = run(kDaemon + " --config " + config);
  INFO(start.output);
  CHECK(start.status == 65);
  CHECK(start.output.find("truncated model file") != std::string::npos);

  std::ifstream unit(std::string(XASMAP_SOURCE_DIR) + "/deploy/xasmapd.service");
  std::string line, prevent;
  while (std::getline(unit, line)) {
    if (line.rfind("RestartPreventExitStatus=", 0) == 0) prevent = line;
  }
  CHECK(prevent == "RestartPreventExitStatus=64 65 78");
  std::filesystem::remove_all(dir);
}
