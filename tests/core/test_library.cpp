// Library folders: what a manifest may hold (numeric columns stay numeric) and where its paths may
// point (inside the folder only).

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "xasmap/core/error.hpp"
#include "xasmap/core/library.hpp"

using namespace xasmap;
using Catch::Contains;

namespace {

// A folder with three spectra s0..s2.xy and the given manifest text.
std::filesystem::path library_folder(const std::string& name, const std::string& manifest) {
  const auto dir = std::filesystem::temp_directory_path() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "sub");
  for (int i = 0; i < 3; ++i) {
    std::ofstream f(dir / ("s" + std::to_string(i) + ".xy"));
    for (int k = 0; k < 40; ++k) f << 640 + 0.5 * k << "  " << 1.0 / (1 + (k - 10 - i) * (k - 10 - i)) << "\n";
  }
  std::filesystem::copy_file(dir / "s0.xy", dir / "sub" / "s0.xy");
  std::ofstream(dir / "manifest.csv") << manifest;
  return dir;
}

}  // namespace

TEST_CASE("a text cell in a numeric manifest column is refused, naming file, row and column",
          "[core][library]") {
  const auto dir = library_folder("xasmap_test_manifest_text",
                                  "file,charge,tendq\ns0.xy,2,0.5\ns1.xy,3,n/a\ns2.xy,4,1.5\n");
  CHECK_THROWS_WITH(load_library(dir), Contains("manifest.csv:3") && Contains("column 'tendq' (column 3)") &&
                                           Contains("'n/a'") && Contains("library.categorical"));
  // Declared categorical (by the reader's options, or by the :cat mark), the same column is read.
  const Library by_option = load_library(dir, ManifestOptions{{"tendq"}});
  CHECK(by_option.parameters[1].categorical);
  CHECK(by_option.parameters[1].category_names == std::vector<std::string>{"0.5", "n/a", "1.5"});
  std::ofstream(dir / "manifest.csv") << "file,charge,tendq:cat\ns0.xy,2,0.5\ns1.xy,3,n/a\ns2.xy,4,1.5\n";
  CHECK(load_library(dir).parameters[1].categorical);
  // A column of text only is a category column, as before; a numeric one stays continuous.
  std::ofstream(dir / "manifest.csv") << "file,charge,tendq,site\ns0.xy,2,0.5,Oh\ns1.xy,3,1,Td\ns2.xy,4,1.5,Oh\n";
  const Library lib = load_library(dir);
  CHECK_FALSE(lib.parameters[1].categorical);
  CHECK(lib.parameters[2].category_names == std::vector<std::string>{"Oh", "Td"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("manifest paths stay inside the library folder", "[core][library]") {
  const auto dir = library_folder("xasmap_test_manifest_paths", "file,charge\ns0.xy,2\nsub/s0.xy,3\n");
  CHECK(load_library(dir).size() == 2);  // a subfolder is inside
  for (const std::string path : {"../../../../etc/hostname", "/etc/hostname", "sub/../../s0.xy", ".."}) {
    INFO(path);
    std::ofstream(dir / "manifest.csv") << "file,charge\ns0.xy,2\n" << path << ",3\n";
    CHECK_THROWS_WITH(load_library(dir), Contains("manifest.csv:3") && Contains("'" + path + "'") &&
                                             Contains("leaves the library folder"));
  }
  std::ofstream(dir / "manifest.csv") << "file,charge\nsub/../s1.xy,2\n";  // stays inside
  CHECK(load_library(dir).size() == 1);
  std::filesystem::remove_all(dir);
}
