#pragma once
// NumPy's .npy array files (format versions 1.0 and 2.0), for libraries too large for one text
// file per spectrum: little-endian float32 or float64, C order, one or two dimensions. NumPy
// reads and writes them with np.load / np.save (np.load(..., mmap_mode="r") without a copy).

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

#include <Eigen/Core>

namespace xasmap {

struct NpyArray {
  int item_bytes = 0;                 // 4 (float32) or 8 (float64)
  std::vector<std::int64_t> shape;    // one or two dimensions
  std::uint64_t data_offset = 0;      // where the values start in the file
};

// Reads and checks the header of `file`, leaving `in` at the first value. Throws xasmap::Error
// naming the file and what is wrong: not an .npy file, another dtype than '<f4'/'<f8', Fortran
// order, a shape of other than one or two dimensions, or fewer bytes than the shape needs.
NpyArray open_npy(const std::filesystem::path& file, std::ifstream& in);

// Reads `count` values from `in` (positioned by open_npy) as float, converting from float64 when
// the file holds that. Throws xasmap::Error naming `file` when the file ends early.
void read_npy_values(std::ifstream& in, const NpyArray& array, const std::filesystem::path& file,
                     float* out, std::size_t count);

// A whole one-dimensional array, as double.
Eigen::VectorXd read_npy_vector(const std::filesystem::path& file);

// Writes a float32 matrix (rows x cols, C order) or a float64 vector. Throws xasmap::Error when
// the file cannot be written.
void write_npy(const std::filesystem::path& file, const float* data, std::int64_t rows,
               std::int64_t cols);
void write_npy(const std::filesystem::path& file, const Eigen::VectorXd& values);

}  // namespace xasmap
