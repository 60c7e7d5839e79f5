// tests/fuzz_corpus: runs every file under the directories given (the committed seed corpus and
// the regressions) through the fuzz target's function, with the project's own compiler and
// sanitizers; exits 1 when a directory holds no input. A crash, a sanitizer report or an escaping
// exception other than ProtocolError fails it.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

int main(int argc, char** argv) {
  for (int a = 1; a < argc; ++a) {
    int count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(argv[a])) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
      LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
      ++count;
    }
    std::printf("%s: %d inputs decoded or refused\n", argv[a], count);
    if (count == 0) return 1;
  }
  return 0;
}
