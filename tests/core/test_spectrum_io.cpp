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
  CHECK_THROWS_WITH(read_spectrum("/nonexistent.csv"), Catch::Contains("cannot read"));
  SpectrumReadOptions missing;
  missing.intensity_column = "mu";
  CHECK_THROWS_WITH(read_spectrum(kData + "/ctm4xas/cr3+_data.xy", missing),
                    Catch::Contains("no intensity column 'mu'"));
  for (const auto& p : {bad_number, ragged, with_nan, short_file}) std::filesystem::remove(p);
}
