#include "nexus.hpp"

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <system_error>
#include <type_traits>

namespace xasmap::service {

NexusError::NexusError(const std::filesystem::path& file, const std::string& in_file, const std::string& what)
    : Error(file.string() + ":" + (in_file.empty() ? "" : in_file + ":") + " " + what) {}

namespace {

// ---- handles --------------------------------------------------------------------------------------

// An HDF5 identifier closed with the close function of its kind when it goes.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      close();
      id_ = o.id_;
      o.id_ = -1;
    }
    return *this;
  }
  ~Handle() { close(); }
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }

 private:
  void close() {
    if (id_ < 0) return;
    switch (H5Iget_type(id_)) {
      case H5I_FILE:
        H5Fclose(id_);
        break;
      case H5I_GROUP:
        H5Gclose(id_);
        break;
      case H5I_DATASET:
        H5Dclose(id_);
        break;
      case H5I_ATTR:
        H5Aclose(id_);
        break;
      case H5I_DATATYPE:
        H5Tclose(id_);
        break;
      case H5I_DATASPACE:
        H5Sclose(id_);
        break;
      case H5I_GENPROP_LST:
        H5Pclose(id_);
        break;
      default:
        H5Oclose(id_);
        break;
    }
    id_ = -1;
  }
  hid_t id_ = -1;
};

// HDF5 prints its error stack to standard error by default; ours say what was wrong instead.
void silence_hdf5() {
  static const bool done = [] {
    H5open();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

std::string child_path(const std::string& parent, const std::string& name) {
  return parent == "/" ? "/" + name : parent + "/" + name;
}

// The names in a group, in name order.
std::vector<std::string> members(hid_t group) {
  H5G_info_t info{};
  std::vector<std::string> out;
  if (H5Gget_info(group, &info) < 0) return out;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t n = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n <= 0) continue;
    std::string name(static_cast<std::size_t>(n) + 1, '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<std::size_t>(n));
    out.push_back(std::move(name));
  }
  return out;
}

// What kind of object `name` in `group` is (a dangling or external link: H5I_BADID).
H5I_type_t kind_of(hid_t group, const std::string& name) {
  if (H5Lexists(group, name.c_str(), H5P_DEFAULT) <= 0) return H5I_BADID;
  Handle o(H5Oopen(group, name.c_str(), H5P_DEFAULT));
  return o ? H5Iget_type(o.get()) : H5I_BADID;
}

// A string attribute's values (fixed or variable length, scalar or an array); nullopt when the
// object has no such attribute or it is not text.
std::optional<std::vector<std::string>> string_attribute(hid_t object, const char* name) {
  if (H5Aexists(object, name) <= 0) return std::nullopt;
  Handle attr(H5Aopen(object, name, H5P_DEFAULT));
  Handle type(H5Aget_type(attr.get()));
  if (!attr || !type || H5Tget_class(type.get()) != H5T_STRING) return std::nullopt;
  Handle space(H5Aget_space(attr.get()));
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  if (count <= 0 || count > 4096) return std::nullopt;
  std::vector<std::string> out;
  Handle memory(H5Tcopy(H5T_C_S1));
  H5Tset_cset(memory.get(), H5Tget_cset(type.get()));
  if (H5Tis_variable_str(type.get()) > 0) {
    H5Tset_size(memory.get(), H5T_VARIABLE);
    std::vector<char*> values(static_cast<std::size_t>(count), nullptr);
    if (H5Aread(attr.get(), memory.get(), values.data()) < 0) return std::nullopt;
    for (char* v : values) out.emplace_back(v ? v : "");
    H5Dvlen_reclaim(memory.get(), space.get(), H5P_DEFAULT, values.data());
  } else {
    const std::size_t size = H5Tget_size(type.get());
    H5Tset_size(memory.get(), size);
    std::vector<char> buffer(size * static_cast<std::size_t>(count), '\0');
    if (H5Aread(attr.get(), memory.get(), buffer.data()) < 0) return std::nullopt;
    for (hssize_t i = 0; i < count; ++i) {
      const char* begin = buffer.data() + static_cast<std::size_t>(i) * size;
      std::string v(begin, strnlen(begin, size));
      while (!v.empty() && v.back() == ' ') v.pop_back();
      out.push_back(std::move(v));
    }
  }
  return out;
}

std::optional<std::string> string_attribute_one(hid_t object, const char* name) {
  auto v = string_attribute(object, name);
  if (!v || v->empty()) return std::nullopt;
  return v->front();
}

// An integer attribute's first value; nullopt when absent or not a number.
std::optional<long long> integer_attribute(hid_t object, const char* name) {
  if (H5Aexists(object, name) <= 0) return std::nullopt;
  Handle attr(H5Aopen(object, name, H5P_DEFAULT));
  Handle type(H5Aget_type(attr.get()));
  if (!attr || !type || H5Tget_class(type.get()) != H5T_INTEGER) return std::nullopt;
  Handle space(H5Aget_space(attr.get()));
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  if (count <= 0 || count > 16) return std::nullopt;
  std::vector<long long> v(static_cast<std::size_t>(count));
  if (H5Aread(attr.get(), H5T_NATIVE_LLONG, v.data()) < 0) return std::nullopt;
  return v.front();
}

// A names list as NeXus writes @axes: an array of strings, or one string with ':' or ','
// between names (older files). Brackets, quotes and spaces around names are dropped.
std::vector<std::string> split_names(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const std::string& v : values) {
    std::string name;
    for (const char c : v + ":") {
      if (c == ':' || c == ',') {
        if (!name.empty()) out.push_back(name);
        name.clear();
      } else if (c != ' ' && c != '[' && c != ']' && c != '"' && c != '\'') {
        name += c;
      }
    }
  }
  return out;
}

// ---- reading ----------------------------------------------------------------------------------------

class Reader {
 public:
  explicit Reader(std::filesystem::path file) : file_(std::move(file)) {
    silence_hdf5();
    std::error_code ec;
    if (!std::filesystem::exists(file_, ec)) throw NexusError(file_, "", "no such file");
    if (!is_hdf5_file(file_)) throw NexusError(file_, "", "not an HDF5 file (no HDF5 signature at its start)");
    handle_ = Handle(H5Fopen(file_.string().c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!handle_) throw NexusError(file_, "", "HDF5 could not open it (damaged or truncated?)");
  }

  [[noreturn]] void fail(const std::string& in_file, const std::string& what) const {
    throw NexusError(file_, in_file, what);
  }

  // The NXentry groups under the root (by @NX_class), or every group when none says so.
  std::vector<std::string> entries() const {
    std::vector<std::string> tagged, groups;
    for (const std::string& name : members(handle_.get())) {
      if (kind_of(handle_.get(), name) != H5I_GROUP) continue;
      groups.push_back("/" + name);
      Handle g(H5Gopen2(handle_.get(), name.c_str(), H5P_DEFAULT));
      if (string_attribute_one(g.get(), "NX_class") == std::string("NXentry")) tagged.push_back("/" + name);
    }
    if (tagged.empty() && groups.empty()) fail("/", "no group: a NeXus file has an NXentry group under its root");
    return tagged.empty() ? groups : tagged;
  }

  // The NXdata groups of an entry (by @NX_class; else groups that hold a `data` dataset).
  std::vector<std::string> data_groups(const std::string& entry) const {
    Handle g = group(entry);
    std::vector<std::string> tagged, untagged;
    for (const std::string& name : members(g.get())) {
      if (kind_of(g.get(), name) != H5I_GROUP) continue;
      Handle child(H5Gopen2(g.get(), name.c_str(), H5P_DEFAULT));
      const std::string path = child_path(entry, name);
      if (string_attribute_one(child.get(), "NX_class") == std::string("NXdata")) {
        tagged.push_back(path);
      } else if (kind_of(child.get(), "data") == H5I_DATASET) {
        untagged.push_back(path);
      }
    }
    return tagged.empty() ? untagged : tagged;
  }

  Handle group(const std::string& path) const {
    Handle g(H5Gopen2(handle_.get(), path.c_str(), H5P_DEFAULT));
    if (!g) fail(path, "not a group");
    return g;
  }

  // The signal dataset of an NXdata group: @signal, else the first of `fallbacks` present.
  std::optional<std::string> signal(const std::string& data_group, const std::vector<std::string>& fallbacks) const {
    Handle g = group(data_group);
    if (const auto s = string_attribute_one(g.get(), "signal")) {
      if (kind_of(g.get(), *s) != H5I_DATASET) fail(data_group + "/@signal", "names '" + *s + "', which is not a dataset here");
      return child_path(data_group, *s);
    }
    for (const std::string& f : fallbacks) {
      if (kind_of(g.get(), f) == H5I_DATASET) return child_path(data_group, f);
    }
    return std::nullopt;
  }

  std::vector<hsize_t> shape(const std::string& dataset) const {
    Handle d = open_dataset(dataset);
    Handle space(H5Dget_space(d.get()));
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) fail(dataset, "its dataspace cannot be read");
    std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
    if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    return dims;
  }

  Handle open_dataset(const std::string& path) const {
    Handle d(H5Dopen2(handle_.get(), path.c_str(), H5P_DEFAULT));
    if (!d) fail(path, "not a dataset");
    return d;
  }

  // Every value of a numeric dataset, converted by HDF5 to T (double or float).
  template <class T>
  std::vector<T> numbers(const std::string& path, std::size_t expected = 0) const {
    Handle d = open_numbers(path);
    std::size_t n = 1;
    for (hsize_t dim : shape(path)) n *= static_cast<std::size_t>(dim);
    if (expected && n != expected) {
      fail(path, std::to_string(n) + " values, expected " + std::to_string(expected));
    }
    std::vector<T> out(n);
    const hid_t memory = std::is_same_v<T, float> ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
    if (n > 0 && H5Dread(d.get(), memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
      fail(path, "its values could not be read (damaged file, or a filter this HDF5 lacks)");
    }
    return out;
  }

  // A dataset of numbers (float or integer, which HDF5 converts on reading).
  Handle open_numbers(const std::string& path) const {
    Handle d = open_dataset(path);
    Handle type(H5Dget_type(d.get()));
    const H5T_class_t c = H5Tget_class(type.get());
    if (c != H5T_FLOAT && c != H5T_INTEGER) fail(path, "expected numbers, found another type (a string or compound?)");
    return d;
  }

  // A [d0, rows, d2] slab (rows r0..r0+rows of dimension 1) of a 3-D numeric dataset, as float,
  // into `out` (d0 * rows * d2 values, C order).
  void slab(const Handle& d, const std::string& path, const std::array<hsize_t, 3>& dims, hsize_t r0,
            hsize_t rows, float* out) const {
    Handle space(H5Dget_space(d.get()));
    const std::array<hsize_t, 3> start{0, r0, 0}, count{dims[0], rows, dims[2]};
    Handle memory(H5Screate_simple(3, count.data(), nullptr));
    if (H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0 ||
        H5Dread(d.get(), H5T_NATIVE_FLOAT, memory.get(), space.get(), H5P_DEFAULT, out) < 0) {
      fail(path, "its values could not be read (damaged file, or a filter this HDF5 lacks)");
    }
  }

  // The energies of `path` in eV: @units eV (or none) as they are, keV times 1000.
  Eigen::VectorXd energy(const std::string& path, std::size_t expected) const {
    const std::vector<double> values = numbers<double>(path, expected);
    Handle d = open_dataset(path);
    double scale = 1.0;
    if (const auto units = string_attribute_one(d.get(), "units")) {
      if (*units == "keV") {
        scale = 1000.0;
      } else if (*units != "eV" && *units != "ev" && !units->empty()) {
        fail(path + "/@units", "'" + *units + "'; expected eV or keV");
      }
    }
    Eigen::VectorXd e(static_cast<Eigen::Index>(values.size()));
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i])) fail(path, "value " + std::to_string(i) + " is not finite");
      e[static_cast<Eigen::Index>(i)] = values[i] * scale;
    }
    return e;
  }

  std::optional<std::string> units(const std::string& path) const {
    Handle d = open_dataset(path);
    return string_attribute_one(d.get(), "units");
  }

  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  Handle handle_;
};

// The names of a data group's axes: @axes, or nothing.
std::vector<std::string> axes_of(const Reader& r, const std::string& data_group) {
  Handle g = r.group(data_group);
  const auto axes = string_attribute(g.get(), "axes");
  return axes ? split_names(*axes) : std::vector<std::string>{};
}

// Finds the signal of the given rank in the file's entries: (data group, signal path).
std::pair<std::string, std::string> find_signal(const Reader& r, std::size_t rank, const char* what) {
  std::string seen;
  for (const std::string& entry : r.entries()) {
    for (const std::string& group : r.data_groups(entry)) {
      const auto s = r.signal(group, {"data", "absorbed_beam", "intensity"});
      if (!s) continue;
      const auto dims = r.shape(*s);
      if (dims.size() == rank) return {group, *s};
      seen += (seen.empty() ? "" : ", ") + *s + " (" + std::to_string(dims.size()) + " dimensions)";
    }
  }
  r.fail("/", std::string("no ") + what + " found: expected an NXentry with an NXdata group whose signal has " +
                  std::to_string(rank) + (rank == 1 ? " dimension" : " dimensions") +
                  (seen.empty() ? " (found no NXdata signal at all)" : "; found " + seen));
}

}  // namespace

bool is_hdf5_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  char head[8] = {};
  if (!in.read(head, sizeof head)) return false;
  return std::memcmp(head, "\x89HDF\r\n\x1a\n", 8) == 0;
}

bool is_nexus_file(const std::filesystem::path& file) {
  std::string ext = file.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".h5" || ext == ".hdf5" || ext == ".hdf" || ext == ".nxs" || ext == ".nx5" || is_hdf5_file(file);
}

NexusKind nexus_kind(const std::filesystem::path& file) {
  const Reader r(file);
  std::string seen;
  for (const std::string& entry : r.entries()) {
    for (const std::string& group : r.data_groups(entry)) {
      const auto s = r.signal(group, {"data", "absorbed_beam", "intensity"});
      if (!s) continue;
      const auto rank = r.shape(*s).size();
      if (rank == 3) return NexusKind::kStack;
      if (rank == 1) return NexusKind::kSpectrum;
      seen += (seen.empty() ? "" : ", ") + *s + " (" + std::to_string(rank) + " dimensions)";
    }
  }
  r.fail("/", "neither a spectrum (NXxas: a one-dimensional NXdata signal) nor a stack (NXstxm: three "
              "dimensions)" + (seen.empty() ? std::string(": no NXdata signal at all") : "; found " + seen));
}

NexusSpectrum read_nxxas(const std::filesystem::path& file) {
  const Reader r(file);
  const auto [group, signal] = find_signal(r, 1, "spectrum");
  const std::size_t n = static_cast<std::size_t>(r.shape(signal).front());
  std::string energy_path = child_path(group, "energy");
  if (const auto axes = axes_of(r, group); !axes.empty() && axes.front() != ".") energy_path = child_path(group, axes.front());
  const Eigen::VectorXd energy = r.energy(energy_path, n);
  const std::vector<double> y = r.numbers<double>(signal, n);
  // Sorted by energy, repeated energies averaged (as read_spectrum does for text files).
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return energy[static_cast<Eigen::Index>(a)] < energy[static_cast<Eigen::Index>(b)];
  });
  std::vector<double> e_out, y_out, counts;
  for (const std::size_t i : order) {
    if (!std::isfinite(y[i])) r.fail(signal, "value " + std::to_string(i) + " is not finite");
    const double e = energy[static_cast<Eigen::Index>(i)];
    if (!e_out.empty() && e == e_out.back()) {
      y_out.back() += y[i];
      counts.back() += 1;
    } else {
      e_out.push_back(e);
      y_out.push_back(y[i]);
      counts.push_back(1);
    }
  }
  NexusSpectrum out;
  out.signal_path = signal;
  out.spectrum.energy_ev = Eigen::Map<const Eigen::VectorXd>(e_out.data(), static_cast<Eigen::Index>(e_out.size()));
  out.spectrum.intensity.resize(static_cast<Eigen::Index>(y_out.size()));
  for (std::size_t i = 0; i < y_out.size(); ++i) out.spectrum.intensity[static_cast<Eigen::Index>(i)] = y_out[i] / counts[i];
  if (const auto problem = check_spectrum(out.spectrum)) r.fail(signal, *problem);
  return out;
}

NexusStack read_nxstxm(const std::filesystem::path& file) {
  const Reader r(file);
  const auto [group, signal] = find_signal(r, 3, "stack");
  const std::vector<hsize_t> dims = r.shape(signal);
  std::vector<std::string> axes = axes_of(r, group);
  Handle g = r.group(group);
  // Which dimension is the energy: @axes, else @energy_indices, else the one a 1-D `energy` fits.
  int e_dim = -1;
  std::string energy_name = "energy";
  if (axes.size() == 3) {
    for (int k = 0; k < 3; ++k) {
      if (axes[static_cast<std::size_t>(k)] == "energy" || axes[static_cast<std::size_t>(k)] == "photon_energy") {
        e_dim = k;
        energy_name = axes[static_cast<std::size_t>(k)];
      }
    }
    if (e_dim < 0) {
      r.fail(group + "/@axes", "names no energy axis (" + axes[0] + ", " + axes[1] + ", " + axes[2] +
                                   "); expected one named energy");
    }
  } else if (!axes.empty()) {
    r.fail(group + "/@axes", std::to_string(axes.size()) + " names for a signal of 3 dimensions");
  } else if (const auto idx = integer_attribute(g.get(), "energy_indices")) {
    if (*idx < 0 || *idx > 2) r.fail(group + "/@energy_indices", std::to_string(*idx) + "; expected 0, 1 or 2");
    e_dim = static_cast<int>(*idx);
  } else if (kind_of(g.get(), "energy") == H5I_DATASET) {
    const auto e_dims = r.shape(child_path(group, "energy"));
    for (int k = 0; k < 3 && e_dims.size() == 1; ++k) {
      if (dims[static_cast<std::size_t>(k)] == e_dims[0]) {
        e_dim = k;
        break;
      }
    }
  }
  if (e_dim < 0) r.fail(group, "cannot tell which dimension of " + signal + " is the energy: give @axes");
  const std::string energy_path = child_path(group, energy_name);
  if (kind_of(g.get(), energy_name) != H5I_DATASET) r.fail(energy_path, "missing: the stack's energy axis");
  NexusStack s;
  s.signal_path = signal;
  const std::size_t n_e = static_cast<std::size_t>(dims[static_cast<std::size_t>(e_dim)]);
  s.energy_ev = r.energy(energy_path, n_e);
  for (Eigen::Index i = 1; i < s.energy_ev.size(); ++i) {
    if (!(s.energy_ev[i] > s.energy_ev[i - 1])) {
      r.fail(energy_path, "not strictly increasing at index " + std::to_string(i) + " (" +
                              std::to_string(s.energy_ev[i - 1]) + ", " + std::to_string(s.energy_ev[i]) + " eV)");
    }
  }
  std::array<int, 2> spatial{};
  for (int k = 0, j = 0; k < 3; ++k) {
    if (k != e_dim) spatial[static_cast<std::size_t>(j++)] = k;
  }
  s.ny = static_cast<std::size_t>(dims[static_cast<std::size_t>(spatial[0])]);
  s.nx = static_cast<std::size_t>(dims[static_cast<std::size_t>(spatial[1])]);
  if (s.ny == 0 || s.nx == 0 || n_e < 2) r.fail(signal, "an empty stack");
  std::vector<std::string> names(3);
  for (int k = 0; k < 3; ++k) {
    names[static_cast<std::size_t>(k)] = k == e_dim ? "energy" : (k == spatial[0] ? "y" : "x");
  }
  s.layout = names[0] + "," + names[1] + "," + names[2];
  // The spatial axes' values, when the group has them.
  const auto axis_values = [&](int dim, std::size_t n, std::vector<double>& values, std::string& units) {
    values.resize(n);
    for (std::size_t i = 0; i < n; ++i) values[i] = static_cast<double>(i);
    if (axes.size() != 3) return;
    const std::string& a = axes[static_cast<std::size_t>(dim)];
    if (a == "." || kind_of(g.get(), a) != H5I_DATASET) return;
    const std::string path = child_path(group, a);
    if (r.shape(path).size() != 1) return;  // 2-D positions (a non-rectangular scan): indices
    values = r.numbers<double>(path, n);
    units = r.units(path).value_or("");
  };
  axis_values(spatial[0], s.ny, s.y, s.y_units);
  axis_values(spatial[1], s.nx, s.x, s.x_units);

  // To pixel-major [y][x][energy] from whichever order the file has.
  const std::size_t d1 = dims[1], d2 = dims[2];
  if (e_dim == 0) {
    // [e][y][x], NXstxm's order: read a few rows of y at a time (all energies, about 1 MiB) and
    // reorder them from cache, in blocks of 64 pixels so that both the reads (64 pixels of one
    // energy) and the writes (64 whole spectra, 51 KB at 200 energies) stay in cache. No copy
    // of the whole stack in the file's order is made.
    const Handle d = r.open_numbers(signal);
    s.intensity.resize(n_e * s.ny * s.nx);
    const std::size_t rows = std::clamp<std::size_t>((std::size_t{1} << 20) / (4 * n_e * s.nx), 1, s.ny);
    std::vector<float> buffer(n_e * rows * s.nx);
    constexpr std::size_t kBlock = 64;
    for (std::size_t y0 = 0; y0 < s.ny; y0 += rows) {
      const std::size_t k = std::min(rows, s.ny - y0);
      r.slab(d, signal, {n_e, s.ny, s.nx}, y0, k, buffer.data());
      const std::size_t slab_pixels = k * s.nx;
      float* out = s.intensity.data() + y0 * s.nx * n_e;
      for (std::size_t p0 = 0; p0 < slab_pixels; p0 += kBlock) {
        const std::size_t p1 = std::min(slab_pixels, p0 + kBlock);
        for (std::size_t e = 0; e < n_e; ++e) {
          const float* in = buffer.data() + e * slab_pixels;
          for (std::size_t px = p0; px < p1; ++px) out[px * n_e + e] = in[px];
        }
      }
    }
  } else if (e_dim == 2) {
    s.intensity = r.numbers<float>(signal);  // [y][x][e] already
  } else {
    const std::vector<float> raw = r.numbers<float>(signal);
    s.intensity.resize(raw.size());
    std::array<std::size_t, 3> stride{d1 * d2, d2, 1};  // of the stored dimensions
    const std::size_t se = stride[static_cast<std::size_t>(e_dim)], sy = stride[static_cast<std::size_t>(spatial[0])],
                      sx = stride[static_cast<std::size_t>(spatial[1])];
    float* out = s.intensity.data();
    for (std::size_t y = 0; y < s.ny; ++y) {
      for (std::size_t x = 0; x < s.nx; ++x) {
        const float* in = raw.data() + y * sy + x * sx;
        for (std::size_t e = 0; e < n_e; ++e) *out++ = in[e * se];
      }
    }
  }
  for (std::size_t i = 0; i < s.intensity.size(); ++i) {
    if (!std::isfinite(s.intensity[i])) {
      const std::size_t px = i / n_e;
      r.fail(signal, "pixel (y " + std::to_string(px / s.nx) + ", x " + std::to_string(px % s.nx) + "), energy " +
                         std::to_string(i % n_e) + " is not finite");
    }
  }
  return s;
}

// ---- writing ----------------------------------------------------------------------------------------

namespace {

class Writer {
 public:
  // Creates `target` (file itself, or its .part), or with `append` opens the existing file.
  Writer(std::filesystem::path file, const std::filesystem::path& target, bool append) : file_(std::move(file)) {
    silence_hdf5();
    if (append) {
      handle_ = Handle(H5Fopen(target.string().c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
      if (!handle_) throw NexusError(file_, "", "cannot be opened for appending (damaged, or open in another program?)");
    } else {
      handle_ = Handle(H5Fcreate(target.string().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
      if (!handle_) throw NexusError(file_, "", "cannot create " + target.string() + " (folder missing or not writable?)");
    }
  }
  hid_t root() const { return handle_.get(); }

  void check(herr_t status, const std::string& where) const {
    if (status < 0) throw NexusError(file_, where, "could not be written (disk full?)");
  }

  Handle group(hid_t parent, const std::string& name, const std::string& nx_class, const std::string& where) const {
    Handle g(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    if (!g) throw NexusError(file_, where, "could not be created");
    attribute(g.get(), "NX_class", nx_class, where);
    return g;
  }

  static Handle utf8_type() {
    Handle t(H5Tcopy(H5T_C_S1));
    H5Tset_size(t.get(), H5T_VARIABLE);
    H5Tset_cset(t.get(), H5T_CSET_UTF8);
    return t;
  }

  void attribute(hid_t object, const char* name, const std::string& value, const std::string& where) const {
    attribute(object, name, std::vector<std::string>{value}, where, true);
  }
  void attribute(hid_t object, const char* name, const std::vector<std::string>& values, const std::string& where,
                 bool scalar = false) const {
    Handle type = utf8_type();
    const hsize_t n = values.size();
    Handle space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr));
    Handle attr(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    std::vector<const char*> pointers;
    for (const std::string& v : values) pointers.push_back(v.c_str());
    check(attr ? H5Awrite(attr.get(), type.get(), pointers.data()) : -1, where + "/@" + name);
  }
  void attribute(hid_t object, const char* name, long long value, const std::string& where) const {
    Handle space(H5Screate(H5S_SCALAR));
    Handle attr(H5Acreate2(object, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT));
    check(attr ? H5Awrite(attr.get(), H5T_NATIVE_LLONG, &value) : -1, where + "/@" + name);
  }

  Handle text(hid_t parent, const char* name, const std::string& value, const std::string& where) const {
    Handle type = utf8_type();
    Handle space(H5Screate(H5S_SCALAR));
    Handle d(H5Dcreate2(parent, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    const char* p = value.c_str();
    check(d ? H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p) : -1, where + "/" + name);
    return d;
  }

  Handle number(hid_t parent, const char* name, double value, const std::string& where) const {
    Handle space(H5Screate(H5S_SCALAR));
    Handle d(H5Dcreate2(parent, name, H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    check(d ? H5Dwrite(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) : -1, where + "/" + name);
    return d;
  }

  template <class T>
  Handle array(hid_t parent, const char* name, const std::vector<T>& values, std::vector<hsize_t> dims,
               const std::string& where) const {
    const bool f4 = std::is_same_v<T, float>;
    Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
    Handle d(H5Dcreate2(parent, name, f4 ? H5T_IEEE_F32LE : H5T_IEEE_F64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                        H5P_DEFAULT));
    check(d ? H5Dwrite(d.get(), f4 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                       values.data())
            : -1,
          where + "/" + name);
    return d;
  }

  void close() {
    if (H5Fflush(handle_.get(), H5F_SCOPE_GLOBAL) < 0) throw NexusError(file_, "", "could not be flushed (disk full?)");
    handle_ = Handle();
  }

 private:
  std::filesystem::path file_;
  Handle handle_;
};

std::string iso_time_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

}  // namespace

NexusMap nexus_map(const std::string& name, std::size_t pixels) {
  const auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  const std::string base = ends_with(name, "_uncertainty") ? name.substr(0, name.size() - 12) : name;
  std::string units = "1";
  if (base == "charge" || base == "valence") units = "e";
  if (base == "tendq" || ends_with(base, "_ev")) units = "eV";
  if (ends_with(name, "_confidence")) units = "1";
  std::string long_name = base == "tendq" ? "10Dq" : base == "valence" ? "mean valence" : base;
  if (ends_with(name, "_uncertainty")) long_name = "68 % half-width of " + long_name;
  if (ends_with(name, "_confidence")) long_name = "probability of the " + name.substr(0, name.size() - 11);
  if (name == "novelty") long_name = "novelty (distance to the library over its spacing)";
  if (name == "edge_step") long_name = "edge-step continuum removed, over the pixel's highest point";
  if (name.rfind("fraction_", 0) == 0) long_name = "atom fraction of charge " + name.substr(9);
  if (units != "1") long_name += " (" + units + ")";
  return {name, units, long_name, std::vector<float>(pixels, std::numeric_limits<float>::quiet_NaN())};
}

namespace {

void check_maps(const NexusResult& res) {
  if (res.maps.empty()) throw Error("write_nexus_result: no maps to write");
  const std::size_t pixels = res.ny * res.nx;
  for (const NexusMap& m : res.maps) {
    if (m.values.size() != pixels) {
      throw Error("write_nexus_result: map '" + m.name + "' has " + std::to_string(m.values.size()) +
                  " values for " + std::to_string(res.ny) + " x " + std::to_string(res.nx) + " pixels");
    }
  }
}

// The root's attributes, once per file.
void write_root(const Writer& w, const NexusResult& res, const std::string& default_entry) {
  w.attribute(w.root(), "default", default_entry, "/");
  w.attribute(w.root(), "creator", "xasmap " + res.version, "/");
  w.attribute(w.root(), "file_time", iso_time_now(), "/");
  unsigned major = 0, minor = 0, release = 0;
  H5get_libversion(&major, &minor, &release);
  w.attribute(w.root(), "HDF5_Version", std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release),
              "/");
}

// /NAME (NXentry) / xasmap (NXprocess) / maps (NXdata).
void write_entry(const Writer& w, const std::string& name, const NexusResult& res) {
  const std::string at = "/" + name;
  Handle entry = w.group(w.root(), name, "NXentry", at);
  w.attribute(entry.get(), "default", "xasmap/maps", at);
  w.text(entry.get(), "title", res.title, at);
  w.text(entry.get(), "start_time", iso_time_now(), at);
  const std::string pat = at + "/xasmap";
  Handle process = w.group(entry.get(), "xasmap", "NXprocess", pat);
  w.attribute(process.get(), "default", "maps", pat);
  w.text(process.get(), "program", "xasmap", pat);
  w.text(process.get(), "version", res.version, pat);
  w.text(process.get(), "date", iso_time_now(), pat);
  w.text(process.get(), "model_checksum", res.model_checksum, pat);
  w.text(process.get(), "library", res.library, pat);
  w.text(process.get(), "config", res.config_yaml, pat);
  w.text(process.get(), "source", res.source, pat);
  {
    Handle d = w.number(process.get(), "session_offset", res.session_offset_ev, pat);
    w.attribute(d.get(), "units", "eV", pat + "/session_offset");
  }
  w.number(process.get(), "rejected_pixels", static_cast<double>(res.rejected_pixels), pat);

  const std::string where = pat + "/maps";
  Handle data = w.group(process.get(), "maps", "NXdata", where);
  w.attribute(data.get(), "signal", res.maps.front().name, where);
  std::vector<std::string> auxiliary;
  for (std::size_t i = 1; i < res.maps.size(); ++i) auxiliary.push_back(res.maps[i].name);
  if (!auxiliary.empty()) w.attribute(data.get(), "auxiliary_signals", auxiliary, where);
  w.attribute(data.get(), "axes", std::vector<std::string>{"y", "x"}, where);
  w.attribute(data.get(), "y_indices", 0, where);
  w.attribute(data.get(), "x_indices", 1, where);
  for (const NexusMap& m : res.maps) {
    Handle d = w.array(data.get(), m.name.c_str(), m.values, {res.ny, res.nx}, where);
    w.attribute(d.get(), "units", m.units, where + "/" + m.name);
    w.attribute(d.get(), "long_name", m.long_name.empty() ? m.name : m.long_name, where + "/" + m.name);
  }
  const auto axis = [&](const std::string& axis_name, const std::vector<double>& v, std::size_t n,
                        const std::string& units) {
    std::vector<double> values = v;
    if (values.size() != n) {
      values.resize(n);
      for (std::size_t i = 0; i < n; ++i) values[i] = static_cast<double>(i);
    }
    Handle d = w.array(data.get(), axis_name.c_str(), values, {n}, where);
    w.attribute(d.get(), "units", units.empty() ? std::string("pixel") : units, where + "/" + axis_name);
  };
  axis("y", res.y, res.ny, res.y_units);
  axis("x", res.x, res.nx, res.x_units);
}

}  // namespace

void write_nexus_result(const std::filesystem::path& file, const NexusResult& res) {
  check_maps(res);
  std::filesystem::path part = file;
  part += ".part";
  try {
    Writer w(file, part, false);
    write_root(w, res, "entry");
    write_entry(w, "entry", res);
    w.close();
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(part, ignored);
    throw;
  }
  std::error_code ec;
  std::filesystem::rename(part, file, ec);
  if (ec) {
    std::filesystem::remove(part, ec);
    throw NexusError(file, "", "could not be renamed from its .part file");
  }
}

std::string append_nexus_result(const std::filesystem::path& file, const NexusResult& res) {
  check_maps(res);
  std::error_code ec;
  const bool exists = std::filesystem::exists(file, ec);
  if (exists && !is_hdf5_file(file)) throw NexusError(file, "", "exists and is not an HDF5 file: not appended to");
  Writer w(file, file, exists);
  H5G_info_t info{};
  H5Gget_info(w.root(), &info);
  std::string entry;
  for (hsize_t n = info.nlinks + 1;; ++n) {
    char name[32];
    std::snprintf(name, sizeof name, "stack_%06llu", static_cast<unsigned long long>(n));
    if (H5Lexists(w.root(), name, H5P_DEFAULT) <= 0) {
      entry = name;
      break;
    }
  }
  if (exists) {
    if (H5Aexists(w.root(), "default") > 0) H5Adelete(w.root(), "default");
    w.attribute(w.root(), "default", entry, "/");
  } else {
    write_root(w, res, entry);
  }
  write_entry(w, entry, res);
  w.close();
  return entry;
}

NexusResult nexus_result_of(const protocol::EstimateMapMessage& m) {
  NexusResult r;
  const std::size_t pixels = m.novelty.size();
  r.ny = m.shape.size() == 3 ? static_cast<std::size_t>(m.shape[0]) : 1;
  r.nx = m.shape.size() == 3 ? static_cast<std::size_t>(m.shape[1]) : pixels;
  const auto add = [&](const std::string& name, const std::vector<float>& values) {
    NexusMap map = nexus_map(name, pixels);
    map.values = values;
    r.maps.push_back(std::move(map));
  };
  const auto find = [](const auto& list, const std::string& name) -> const std::vector<float>* {
    for (const auto& [key, values] : list) {
      if (key == name) return &values;
    }
    return nullptr;
  };
  std::vector<std::string> names;
  for (const auto& [name, values] : m.params) names.push_back(name);
  std::stable_partition(names.begin(), names.end(), [&](const std::string& n) { return find(m.confidence, n) != nullptr; });
  for (const std::string& name : names) {
    add(name, *find(m.params, name));
    if (const auto* c = find(m.confidence, name)) add(name + "_confidence", *c);
    if (const auto* u = find(m.uncertainty, name)) add(name + "_uncertainty", *u);
  }
  add("novelty", m.novelty);
  if (!m.edge_step.empty()) add("edge_step", m.edge_step);
  for (const auto& [charge, values] : m.fractions) add("fraction_" + charge, values);
  r.title = m.id;
  r.rejected_pixels = m.rejected_pixels;
  return r;
}


}  // namespace xasmap::service
