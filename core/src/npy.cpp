#include "xasmap/core/npy.hpp"

#include <bit>
#include <cctype>
#include <cstring>
#include <limits>
#include <string>

#include "xasmap/core/error.hpp"

namespace xasmap {

static_assert(std::endian::native == std::endian::little, "npy: values are read as little-endian");

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& what) {
  throw Error(file.string() + ": " + what);
}

// The text after `'key':` in the header dict, with leading spaces skipped; npos when absent.
std::size_t value_of(const std::string& header, const std::string& key) {
  auto at = header.find("'" + key + "'");
  if (at == std::string::npos) return at;
  at = header.find(':', at);
  if (at == std::string::npos) return at;
  ++at;
  while (at < header.size() && header[at] == ' ') ++at;
  return at;
}

}  // namespace

NpyArray open_npy(const std::filesystem::path& file, std::ifstream& in) {
  in.open(file, std::ios::binary);
  if (!in) fail(file, "cannot open");
  char prefix[kMagicSize + 2] = {};
  in.read(prefix, sizeof prefix);
  if (!in || std::memcmp(prefix, kMagic, kMagicSize) != 0) fail(file, "not a NumPy .npy file");
  const int major = static_cast<unsigned char>(prefix[kMagicSize]);
  std::uint32_t header_size = 0;
  if (major == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    header_size = static_cast<std::uint32_t>(b[0] | (b[1] << 8));
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    header_size = static_cast<std::uint32_t>(b[0]) | (static_cast<std::uint32_t>(b[1]) << 8) |
                  (static_cast<std::uint32_t>(b[2]) << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
  } else {
    fail(file, ".npy format version " + std::to_string(major) + " is not supported (1, 2 or 3)");
  }
  if (!in || header_size > (1u << 20)) fail(file, "truncated or implausible .npy header");
  std::string header(header_size, '\0');
  in.read(header.data(), header_size);
  if (!in) fail(file, "truncated .npy header");

  NpyArray a;
  a.data_offset = kMagicSize + 2 + (major == 1 ? 2 : 4) + header_size;
  const auto descr = value_of(header, "descr");
  if (descr == std::string::npos) fail(file, ".npy header has no 'descr'");
  const std::string type = header.substr(descr, 5);
  if (type == "'<f4'") {
    a.item_bytes = 4;
  } else if (type == "'<f8'") {
    a.item_bytes = 8;
  } else {
    fail(file, "dtype " + type + " is not supported: float32 ('<f4') or float64 ('<f8') expected");
  }
  const auto order = value_of(header, "fortran_order");
  if (order == std::string::npos || header.compare(order, 5, "False") != 0) {
    fail(file, "only C-order arrays are supported (fortran_order must be False)");
  }
  auto at = value_of(header, "shape");
  if (at == std::string::npos || header[at] != '(') fail(file, ".npy header has no 'shape'");
  ++at;
  while (at < header.size() && header[at] != ')') {
    if (std::isdigit(static_cast<unsigned char>(header[at]))) {
      std::size_t used = 0;
      a.shape.push_back(std::stoll(header.substr(at), &used));
      at += used;
    } else {
      ++at;
    }
  }
  if (a.shape.empty() || a.shape.size() > 2) {
    fail(file, "shape of " + std::to_string(a.shape.size()) + " dimensions; 1 or 2 expected");
  }
  std::uint64_t count = 1;
  for (const auto n : a.shape) {
    if (n <= 0 || static_cast<std::uint64_t>(n) > std::numeric_limits<std::uint64_t>::max() / 16 / count) {
      fail(file, "empty or implausible shape");
    }
    count *= static_cast<std::uint64_t>(n);
  }
  const std::uint64_t need = a.data_offset + count * static_cast<std::uint64_t>(a.item_bytes);
  const std::uint64_t have = std::filesystem::file_size(file);
  if (have < need) {
    fail(file, "truncated: the shape needs " + std::to_string(need) + " bytes, the file holds " +
                   std::to_string(have));
  }
  return a;
}

void read_npy_values(std::ifstream& in, const NpyArray& array, const std::filesystem::path& file,
                     float* out, std::size_t count) {
  if (array.item_bytes == 4) {
    in.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(count * sizeof(float)));
  } else {
    double buffer[512];
    for (std::size_t done = 0; done < count && in;) {
      const std::size_t n = std::min<std::size_t>(count - done, 512);
      in.read(reinterpret_cast<char*>(buffer), static_cast<std::streamsize>(n * sizeof(double)));
      for (std::size_t i = 0; i < n; ++i) out[done + i] = static_cast<float>(buffer[i]);
      done += n;
    }
  }
  if (!in) fail(file, "ends before the values its shape announces");
}

Eigen::VectorXd read_npy_vector(const std::filesystem::path& file) {
  std::ifstream in;
  const NpyArray a = open_npy(file, in);
  if (a.shape.size() != 1) fail(file, "a one-dimensional array was expected");
  Eigen::VectorXd v(a.shape[0]);
  if (a.item_bytes == 8) {
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 8));
    if (!in) fail(file, "ends before the values its shape announces");
  } else {
    std::vector<float> f(static_cast<std::size_t>(a.shape[0]));
    read_npy_values(in, a, file, f.data(), f.size());
    for (Eigen::Index i = 0; i < v.size(); ++i) v[i] = f[static_cast<std::size_t>(i)];
  }
  return v;
}

namespace {

void write_npy_data(const std::filesystem::path& file, const char* descr, const std::string& shape,
                    const char* data, std::uint64_t bytes) {
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + length (2) + header + '\n', padded to a multiple of 64.
  const std::size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header.push_back('\n');
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) fail(file, "cannot write");
  out.write(kMagic, kMagicSize);
  const char version[2] = {1, 0};
  out.write(version, 2);
  const unsigned char length[2] = {static_cast<unsigned char>(header.size() & 0xff),
                                   static_cast<unsigned char>(header.size() >> 8)};
  out.write(reinterpret_cast<const char*>(length), 2);
  out << header;
  out.write(data, static_cast<std::streamsize>(bytes));
  out.close();
  if (!out) fail(file, "write failed");
}

}  // namespace

void write_npy(const std::filesystem::path& file, const float* data, std::int64_t rows,
               std::int64_t cols) {
  write_npy_data(file, "<f4", "(" + std::to_string(rows) + ", " + std::to_string(cols) + ")",
                 reinterpret_cast<const char*>(data),
                 static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols) * sizeof(float));
}

void write_npy(const std::filesystem::path& file, const Eigen::VectorXd& values) {
  write_npy_data(file, "<f8", "(" + std::to_string(values.size()) + ",)",
                 reinterpret_cast<const char*>(values.data()),
                 static_cast<std::uint64_t>(values.size()) * sizeof(double));
}

}  // namespace xasmap
