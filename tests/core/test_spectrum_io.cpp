#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "xasmap/core/error.hpp"
#include "xasmap/core/spectrum.hpp"

using namespace xasmap;

namespace {
const std::string kData = XASMAP_TEST_DATA_DIR;

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}
}  // namespace

TEST_CASE("digitised CSV with BOM, header and repeated energies", "[core][spectrum]") {
  SpectrumReadReport report;
  const Spectrum s =
      read_spectrum(kData + "/experimental/xinhuolin_MnEdgeNet/Data2_MnO.csv", {}, &report);
  CHECK(report.rows == 275);
  CHECK_FALSE(report.reordered);
  CHECK(report.merged_duplicates == 4);  // four repeated energies, each averaged
  CHECK(report.rows - report.merged_duplicates == s.energy_ev.size());
  CHECK_FALSE(check_spectrum(s).has_value());
  CHECK(s.energy_ev[0] == Approx(636.31828));
  CHECK(report.energy_column == "Column2");
  SpectrumReadOptions strict;
  strict.sort_and_merge = false;
  CHECK_THROWS_WITH(read_spectrum(kData + "/experimental/xinhuolin_MnEdgeNet/Data2_MnO.csv", strict),
                    Catch::Contains("Data2_MnO.csv:") && Catch::Contains("appears twice"));
  // Backward steps are sorted (or refused when strict).
  std::string text = "energy,intensity\n";
  for (int i : {0, 1, 2, 4, 3, 5, 6, 7, 8, 9}) text += std::to_string(640 + i) + "," + std::to_string(i) + "\n";
  const auto path = std::filesystem::temp_directory_path() / "xasmap_backwards.csv";
  std::ofstream(path) << text;
  SpectrumReadReport r2;
  const Spectrum sorted = read_spectrum(path, {}, &r2);
  CHECK(r2.reordered);
  CHECK(sorted.intensity[3] == 3.0);
  CHECK_THROWS_WITH(read_spectrum(path, strict), Catch::Contains("xasmap_backwards.csv:6: energy goes backwards"));
  std::filesystem::remove(path);
}

TEST_CASE("named columns: the poster's file has its intensity in column 3", "[core][spectrum]") {
  SpectrumReadReport report;
  const Spectrum s = read_spectrum(kData + "/xrm2018/poster_fig2_MnO_measured.csv", {}, &report);
  CHECK(report.energy_column == "energy_eV");
  CHECK(report.intensity_column == "intensity_frame");
  CHECK(s.energy_ev[0] == Approx(638.0).margin(0.03));
  CHECK(s.energy_ev[s.energy_ev.size() - 1] == Approx(655.0).margin(0.03));
  SpectrumReadOptions raw;
  raw.energy_column = "energy_eV_raw";
  raw.intensity_column = "3";
  CHECK(read_spectrum(kData + "/xrm2018/poster_fig2_MnO_measured.csv", raw).energy_ev.size() > 100);
}

TEST_CASE("whitespace columns as CTM4XAS writes them", "[core][spectrum]") {
  const Spectrum s = read_spectrum(kData + "/ctm4xas/cr3+_data.xy");
  CHECK(s.energy_ev.size() == 3001);
  CHECK(s.energy_ev[0] == 571.0);
  CHECK(s.intensity[0] == Approx(9.67e-4));
}

TEST_CASE("XDI column names and CR-only line ends", "[core][spectrum]") {
  std::string xdi = "# XDI/1.0\r# Column.1: energy eV\r# Column.2: i0\r# Column.3: mutrans\r#----\r";
  for (int i = 0; i < 20; ++i) {
    xdi += std::to_string(640.0 + 0.5 * i) + " 1000 " + std::to_string(0.1 * i) + "\r";
  }
  const auto path = write_temp("xasmap_test.xdi", xdi);
  SpectrumReadReport report;
  const Spectrum s = read_spectrum(path, {}, &report);
  CHECK(report.intensity_column == "mutrans");
  CHECK(s.intensity[19] == Approx(1.9));
  std::filesystem::remove(path);
}

TEST_CASE("broken spectrum files name the file, line and reason", "[core][spectrum]") {
  const auto bad_number = write_temp("xasmap_bad1.csv", "e,i\n640,1\n641,x\n");
  CHECK_THROWS_WITH(read_spectrum(bad_number), Catch::Contains("xasmap_bad1.csv:3") &&
                                                   Catch::Contains("expected numbers"));
  const auto ragged = write_temp("xasmap_bad2.csv", "640,1\n641,2,3\n");
  CHECK_THROWS_WITH(read_spectrum(ragged), Catch::Contains("xasmap_bad2.csv:2") &&
                                               Catch::Contains("expected 2 columns, found 3"));
  std::string nan_text = "e,i\n";
  for (int i = 0; i < 10; ++i) nan_text += std::to_string(640 + i) + (i == 4 ? ",nan\n" : ",1\n");
  const auto with_nan = write_temp("xasmap_bad3.csv", nan_text);
  CHECK_THROWS_WITH(read_spectrum(with_nan), Catch::Contains("intensity[4] is not finite"));
  const auto short_file = write_temp("xasmap_bad4.csv", "640,1\n641,2\n");
  CHECK_THROWS_WITH(read_spectrum(short_file), Catch::Contains("only 2 points"));
  CHECK_THROWS_WITH(read_spectrum("/nonexistent.csv"),
                    Catch::Equals("/nonexistent.csv: no such file"));
  SpectrumReadOptions missing;
  missing.intensity_column = "mu";
  CHECK_THROWS_WITH(read_spectrum(kData + "/ctm4xas/cr3+_data.xy", missing),
                    Catch::Contains("no intensity column 'mu'"));
  for (const auto& p : {bad_number, ragged, with_nan, short_file}) std::filesystem::remove(p);
}

TEST_CASE("a path that is no spectrum text says what it is", "[core][spectrum]") {
  const auto dir = std::filesystem::temp_directory_path() / "xasmap_spectrum_dir";
  std::filesystem::create_directories(dir);
  CHECK_THROWS_WITH(read_spectrum(dir), Catch::Contains("xasmap_spectrum_dir: is a directory"));
  CHECK_THROWS_WITH(read_spectrum(dir / "none.csv"), Catch::EndsWith("none.csv: no such file"));
  std::filesystem::remove_all(dir);

  const std::string rows = "640,1\n641,2\n642,3\n643,4\n644,5\n645,6\n646,7\n647,8\n";
  const auto hdf5 = write_temp("xasmap_scan.h5", std::string("\x89HDF\r\n\x1a\n\0\0\0", 11) + rows);
  CHECK_THROWS_WITH(read_spectrum(hdf5), Catch::Contains("xasmap_scan.h5: looks like an HDF5") &&
                                             Catch::Contains("reads spectra as text columns"));
  const auto png = write_temp("xasmap_scan.png", "\x89PNG\r\n\x1a\n" + rows);
  CHECK_THROWS_WITH(read_spectrum(png), Catch::Contains("looks like a PNG image"));
  const auto gz = write_temp("xasmap_scan.csv.gz", "\x1f\x8b\x08" + rows);
  CHECK_THROWS_WITH(read_spectrum(gz), Catch::Contains("looks like a gzip-compressed file"));
  const auto nul = write_temp("xasmap_scan.bin", std::string("640 1\n\0\0", 8) + rows);
  CHECK_THROWS_WITH(read_spectrum(nul), Catch::Contains("looks like a binary file"));
  // The same rows as text are a spectrum: only the first bytes made the difference.
  const auto text = write_temp("xasmap_scan.csv", rows);
  CHECK(read_spectrum(text).energy_ev.size() == 8);
  for (const auto& p : {hdf5, png, gz, nul, text}) std::filesystem::remove(p);
}

TEST_CASE("semicolon-separated files are read, and decimal commas are named", "[core][spectrum]") {
  std::string semicolon = "energy;i0;tey\n", decimal = "energy;intensity\n";
  for (int i = 0; i < 10; ++i) {
    semicolon += std::to_string(640 + i) + ".5; 2.0; " + std::to_string(i) + ".25\n";
    decimal += std::to_string(640 + i) + ",5;" + std::to_string(i) + ",25\n";
  }
  const auto file = write_temp("xasmap_semicolon.csv", semicolon);
  SpectrumReadReport report;
  SpectrumReadOptions tey;
  tey.intensity_column = "tey";
  const Spectrum s = read_spectrum(file, tey, &report);
  REQUIRE(s.energy_ev.size() == 10);
  CHECK(s.energy_ev[3] == 643.5);
  CHECK(s.intensity[3] == 3.25);
  CHECK(report.intensity_column == "tey");
  const auto comma = write_temp("xasmap_decimal_comma.csv", decimal);
  CHECK_THROWS_WITH(read_spectrum(comma),
                    Catch::Contains("xasmap_decimal_comma.csv:2: expected numbers") &&
                        Catch::Contains("decimal commas"));
  // A file that is merely broken does not blame decimal commas.
  const auto broken = write_temp("xasmap_broken_row.csv", "energy,intensity\n640,1\n641,x\n");
  CHECK_THROWS_WITH(read_spectrum(broken), !Catch::Contains("decimal commas"));
  for (const auto& p : {file, comma, broken}) std::filesystem::remove(p);
}

TEST_CASE("energy, I0 and TEY columns: the intensity divided by I0, keV energies in eV",
          "[core][spectrum]") {
  std::string text = "energy i0 tey\n";
  for (int i = 0; i < 10; ++i) {
    text += std::to_string(0.640 + 0.001 * i) + " " + std::to_string(2 + i) + " " +
            std::to_string(3 * (2 + i)) + "\n";
  }
  const auto file = write_temp("xasmap_three_columns.dat", text);
  SpectrumReadOptions o;
  o.intensity_column = "tey";
  o.normalize_column = "i0";
  o.energy_unit = EnergyUnit::kKev;
  SpectrumReadReport report;
  const Spectrum s = read_spectrum(file, o, &report);
  REQUIRE(s.energy_ev.size() == 10);
  CHECK(s.energy_ev[0] == Approx(640.0));
  CHECK(s.energy_ev[9] == Approx(649.0));
  for (Eigen::Index i = 0; i < 10; ++i) CHECK(s.intensity[i] == Approx(3.0));
  CHECK(report.intensity_column == "tey");
  CHECK(report.normalize_column == "i0");
  // By number, the same; without the options, column 2 (i0) and energies as written.
  o.intensity_column = "3";
  o.normalize_column = "2";
  CHECK(read_spectrum(file, o).intensity[4] == Approx(3.0));
  const Spectrum plain = read_spectrum(file);
  CHECK(plain.energy_ev[0] == Approx(0.640));
  CHECK(plain.intensity[0] == 2.0);
  o.normalize_column = "i1";
  CHECK_THROWS_WITH(read_spectrum(file, o),
                    Catch::Contains("no normalization column 'i1' among 3 columns"));
  const auto zero = write_temp("xasmap_zero_i0.dat", "energy i0 tey\n640 1 1\n641 0 1\n");
  o.normalize_column = "i0";
  CHECK_THROWS_WITH(read_spectrum(zero, o),
                    Catch::Contains("xasmap_zero_i0.dat:3: the normalization column 'i0' is 0"));
  std::filesystem::remove(file);
  std::filesystem::remove(zero);
}
