// Matrix libraries (spectra.npy + energy.npy + manifest.csv), the .npy reader and writer, and the
// synthetic scale library.

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "xasmap/core/error.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/npy.hpp"
#include "xasmap/core/scale_library.hpp"

using namespace xasmap;
using Catch::Matchers::Contains;

namespace {

std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Three spectra on 5 points, with a text-valued category.
GridLibrary small_library() {
  GridLibrary lib;
  lib.parameters = {{"charge", true, {}}, {"tendq", false, {}}, {"site", true, {"oct", "tet"}}};
  lib.labels = {"a", "b", "c"};
  lib.values = {{2, 0.5, 0}, {3, 1.25, 1}, {4, 2.0, 0}};
  lib.rows.resize(3, 5);
  for (Eigen::Index r = 0; r < 3; ++r) {
    for (Eigen::Index c = 0; c < 5; ++c) lib.rows(r, c) = static_cast<float>(10 * r + c);
  }
  return lib;
}

std::string bytes_of(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

}  // namespace

TEST_CASE("npy header is NumPy's version 1.0 layout, padded to a multiple of 64 bytes", "[core][npy]") {
  const auto dir = fresh_dir("xasmap_npy_layout");
  const float values[6] = {1, 2, 3, 4, 5, 6};
  write_npy(dir / "m.npy", values, 2, 3);
  const std::string b = bytes_of(dir / "m.npy");
  // 10 bytes of magic, version and length, then a 59-character dict, spaces and '\n' up to 128.
  REQUIRE(b.size() == 128 + 6 * 4);
  CHECK(b.substr(0, 8) == std::string("\x93NUMPY\x01\x00", 8));
  CHECK(static_cast<unsigned char>(b[8]) + 256 * static_cast<unsigned char>(b[9]) == 118);
  CHECK(b[127] == '\n');
  CHECK_THAT(b.substr(10, 117), Contains("'descr': '<f4'") && Contains("'fortran_order': False") &&
                                   Contains("'shape': (2, 3)"));
  std::ifstream in;
  const NpyArray a = open_npy(dir / "m.npy", in);
  CHECK(a.item_bytes == 4);
  CHECK(a.shape == std::vector<std::int64_t>{2, 3});
  float back[6] = {};
  read_npy_values(in, a, dir / "m.npy", back, 6);
  for (int i = 0; i < 6; ++i) CHECK(back[i] == values[i]);

  const Eigen::VectorXd e = Eigen::VectorXd::LinSpaced(7, 640.0, 643.0);
  write_npy(dir / "e.npy", e);
  CHECK(read_npy_vector(dir / "e.npy") == e);
  std::filesystem::remove_all(dir);
}

TEST_CASE("npy reader refuses what it cannot read, naming the file", "[core][npy]") {
  const auto dir = fresh_dir("xasmap_npy_bad");
  const float values[4] = {1, 2, 3, 4};
  write_npy(dir / "ok.npy", values, 2, 2);
  const std::string good = bytes_of(dir / "ok.npy");
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name, std::ios::binary) << text;
    return dir / name;
  };
  std::ifstream in;
  CHECK_THROWS_WITH(open_npy(write("text.npy", "energy,intensity\n"), in), Contains("text.npy: not a NumPy .npy file"));
  in = std::ifstream();
  CHECK_THROWS_WITH(open_npy(write("short.npy", good.substr(0, good.size() - 3)), in), Contains("truncated"));
  std::string f8 = good;
  f8.replace(f8.find("<f4"), 3, "<i4");
  in = std::ifstream();
  CHECK_THROWS_WITH(open_npy(write("int.npy", f8), in), Contains("dtype '<i4'"));
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  in = std::ifstream();
  CHECK_THROWS_WITH(open_npy(write("fortran.npy", fortran), in), Contains("fortran_order"));
  CHECK_THROWS_WITH(read_npy_vector(dir / "ok.npy"), Contains("one-dimensional"));
  in = std::ifstream();
  CHECK_THROWS_WITH(open_npy(dir / "missing.npy", in), Contains("missing.npy: cannot open"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("matrix library round trip, on its own grid and interpolated", "[core][library]") {
  const auto dir = fresh_dir("xasmap_matrix_library");
  const GridLibrary lib = small_library();
  const Eigen::VectorXd energy = Eigen::VectorXd::LinSpaced(5, 640.0, 644.0);
  save_matrix_library(dir, energy, lib);
  REQUIRE(is_matrix_library(dir));
  CHECK(bytes_of(dir / "manifest.csv") == "label,charge,tendq,site\na,2,0.5,oct\nb,3,1.25,tet\nc,4,2,oct\n");

  const GridLibrary same = load_grid_library(dir, EnergyGrid::from_range(640.0, 644.0, 1.0));
  CHECK(same.labels == lib.labels);
  CHECK(same.parameters == lib.parameters);
  CHECK(same.values == lib.values);
  CHECK(same.rows == lib.rows);

  // A finer grid that reaches beyond the stored energies: linear in between, ends held.
  const GridLibrary fine = load_grid_library(dir, EnergyGrid::from_range(639.0, 645.0, 0.5));
  REQUIRE(fine.rows.cols() == 13);
  CHECK(fine.rows(1, 0) == Approx(10.0));   // 639 eV: held at 640's value
  CHECK(fine.rows(1, 3) == Approx(10.5));   // 640.5 eV, halfway between 10 and 11
  CHECK(fine.rows(2, 12) == Approx(24.0));  // 645 eV: held at 644's value

  // Every tool reads it as a Library too.
  const Library as_spectra = load_library(dir);
  REQUIRE(as_spectra.size() == 3);
  CHECK(as_spectra.spectra[2].energy_ev == energy);
  CHECK(as_spectra.spectra[2].intensity[4] == Approx(24.0));
  CHECK(as_spectra.values[1] == std::vector<double>{3, 1.25, 1});
  std::filesystem::remove_all(dir);
}

TEST_CASE("matrix library refusals name the file", "[core][library]") {
  const auto dir = fresh_dir("xasmap_matrix_bad");
  const GridLibrary lib = small_library();
  const Eigen::VectorXd energy = Eigen::VectorXd::LinSpaced(5, 640.0, 644.0);
  const EnergyGrid grid = EnergyGrid::from_range(640.0, 644.0, 1.0);
  save_matrix_library(dir, energy, lib);
  {
    std::ofstream(dir / "manifest.csv") << "label,charge,tendq,site\na,2,0.5,oct\nb,3,1.25,tet\n";
    CHECK_THROWS_WITH(load_grid_library(dir, grid), Contains("spectra.npy: 3 rows, but manifest.csv lists 2 spectra"));
    std::ofstream(dir / "manifest.csv") << "label,charge,tendq,site\na,2,0.5,oct\na,3,1.25,tet\nc,4,2,oct\n";
    CHECK_THROWS_WITH(load_grid_library(dir, grid), Contains("manifest.csv:3: 'a' listed twice"));
    std::ofstream(dir / "manifest.csv") << "file,charge\na.csv,2\n";
    CHECK_THROWS_WITH(load_grid_library(dir, grid), Contains("expected a header 'label,<parameter>,...'"));
    std::ofstream(dir / "manifest.csv") << "label,charge,tendq,site\na,2,0.5\n";
    CHECK_THROWS_WITH(load_grid_library(dir, grid), Contains("manifest.csv:2: expected 4 fields, found 3"));
  }
  save_matrix_library(dir, energy, lib);
  write_npy(dir / "energy.npy", Eigen::VectorXd::LinSpaced(4, 640.0, 643.0));
  CHECK_THROWS_WITH(load_grid_library(dir, grid), Contains("spectra.npy: 5 energies per row, but energy.npy holds 4"));
  Eigen::VectorXd unordered = energy;
  unordered[3] = 641.0;
  write_npy(dir / "energy.npy", unordered);
  CHECK_THROWS_WITH(load_grid_library(dir, grid), Contains("energy.npy: energies must be finite and strictly increasing (index 3)"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("scale library: reproducible, independent of threads, nodes exact", "[core][library][scale]") {
  const AtomicTable table = AtomicTable::load(std::string(XASMAP_SOURCE_DIR) + "/data/atomic");
  ScaleLibraryOptions o;
  o.spectra = 400;
  o.points = 251;
  o.ions = {"Mn4+"};  // the smallest calculation: 120 / 1260 states
  o.tendq_step_ev = 1.25;
  o.tendq_max_ev = 2.5;
  o.ds_dt_ev = {{0.0, 0.0}};
  o.slater_scales = {0.8};
  o.broadenings = {{0.4, 0.8, 0.3}};
  o.threads = 1;
  const ScaleLibrary one = make_scale_library(o, table);
  o.threads = 2;
  const ScaleLibrary two = make_scale_library(o, table);
  CHECK(one.simulated == 3);
  CHECK(one.library.rows == two.library.rows);
  CHECK(one.library.values == two.library.values);
  REQUIRE(one.library.rows.rows() == 400);
  REQUIRE(one.library.rows.cols() == 251);
  CHECK(one.library.rows.allFinite());
  double lo = 10, hi = -10;
  for (const auto& v : one.library.values) {
    CHECK(v[0] == 4);
    lo = std::min(lo, v[1]);
    hi = std::max(hi, v[1]);
  }
  CHECK(lo < 0.1);  // 10Dq spans [0, 2.5]
  CHECK(hi > 2.4);
  CHECK(hi <= 2.5);

  // Without shift, amplitude or background, a row drawn at 10Dq ~ 1.25 matches the simulator's
  // own spectrum there (the interpolation weight on the far node is small).
  o.max_shift_ev = 0;
  o.amplitude_min = o.amplitude_max = 1;
  o.max_slope_per_ev = 0;
  const ScaleLibrary plain = make_scale_library(o, table);
  std::size_t best = 0;
  for (std::size_t r = 0; r < plain.library.values.size(); ++r) {
    if (std::abs(plain.library.values[r][1] - 1.25) < std::abs(plain.library.values[best][1] - 1.25)) best = r;
  }
  REQUIRE(std::abs(plain.library.values[best][1] - 1.25) < 0.02);
  MultipletParameters p = make_parameters(parse_ion("Mn4+"), table.lookup(parse_ion("Mn4+")), ParameterScaling{0.8, 0.8, 1.0});
  p.tendq = 1.25;
  p.temperature_k = o.temperature_k;
  const Eigen::VectorXd direct =
      broaden(compute_sticks(p), o.broadenings[0], plain.energy_ev, o.energy_offset_ev.at("Mn4+"));
  const Eigen::VectorXd row = plain.library.rows.row(static_cast<Eigen::Index>(best)).transpose().cast<double>();
  CHECK((row - direct).cwiseAbs().maxCoeff() < 0.03 * direct.maxCoeff());
}
