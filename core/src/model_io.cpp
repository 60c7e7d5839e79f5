// The model file: one versioned binary file with a checksum.
//
//   bytes 0-7    magic "XASMAPMD"
//   bytes 8-11   format version (uint32, little-endian)
//   bytes 12-19  payload length (uint64)
//   payload      the fields below, in order
//   last 4       CRC-32 (IEEE) of the payload
//
// Numbers are stored little-endian as written by this (x86-64 / arm64) build; strings and arrays
// carry their lengths. load() checks the magic, the version, the length and the checksum before it
// reads a field, so a foreign, newer, older, truncated or corrupt file is refused with a message
// that says which.

#include <array>
#include <bit>
#include <cstring>
#include <fstream>

#include "xasmap/core/error.hpp"
#include "xasmap/core/model.hpp"
#include "xasmap/core/version.hpp"

namespace xasmap {

namespace {

constexpr char kMagic[8] = {'X', 'A', 'S', 'M', 'A', 'P', 'M', 'D'};
constexpr std::uint32_t kFormatVersion = 1;
static_assert(std::endian::native == std::endian::little, "model files are little-endian");

std::uint32_t crc32(const std::string& data) {
  static const std::array<std::uint32_t, 256> kTable = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (const char ch : data) c = kTable[(c ^ static_cast<std::uint8_t>(ch)) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

class Writer {
 public:
  template <class T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    out_.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  void str(const std::string& s) {
    pod<std::uint64_t>(s.size());
    out_ += s;
  }
  template <class T>
  void vec(const std::vector<T>& v) {
    pod<std::uint64_t>(v.size());
    append_bytes(v.data(), v.size() * sizeof(T));
  }
  template <class M>
  void matrix(const M& m) {
    pod<std::int64_t>(m.rows());
    pod<std::int64_t>(m.cols());
    append_bytes(m.data(), static_cast<std::size_t>(m.size()) * sizeof(typename M::Scalar));
  }
  const std::string& bytes() const { return out_; }

 private:
  // An empty array's data() may be null: copy nothing rather than pass it on.
  void append_bytes(const void* data, std::size_t n) {
    if (n > 0) out_.append(static_cast<const char*>(data), n);
  }
  std::string out_;
};

class Reader {
 public:
  Reader(const std::string& data, std::string file) : data_(data), file_(std::move(file)) {}
  template <class T>
  T pod() {
    T v;
    take(&v, sizeof v);
    return v;
  }
  std::string str() {
    const auto n = pod<std::uint64_t>();
    check(n);
    std::string s(data_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  template <class T>
  std::vector<T> vec() {
    const auto n = pod<std::uint64_t>();
    check(n * sizeof(T));
    std::vector<T> v(n);
    take(v.data(), n * sizeof(T));
    return v;
  }
  template <class M>
  void matrix(M& m) {
    const auto rows = pod<std::int64_t>();
    const auto cols = pod<std::int64_t>();
    if (rows < 0 || cols < 0) fail("a negative matrix size");
    check(static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols) * sizeof(typename M::Scalar));
    m.resize(rows, cols);
    take(m.data(), static_cast<std::size_t>(m.size()) * sizeof(typename M::Scalar));
  }
  bool done() const { return pos_ == data_.size(); }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(file_ + ": corrupt model file (" + what + " at byte " + std::to_string(pos_) + ")");
  }

 private:
  void check(std::uint64_t n) const {
    if (n > data_.size() - pos_) fail("a field longer than the file");
  }
  void take(void* dst, std::size_t n) {
    check(n);
    if (n == 0) return;  // an empty array's data() may be null
    std::memcpy(dst, data_.data() + pos_, n);
    pos_ += n;
  }
  const std::string& data_;
  std::string file_;
  std::size_t pos_ = 0;
};

void write_lmds(Writer& w, const LandmarkMds& m) {
  w.matrix(m.pseudo_inverse);
  w.matrix(m.mean_d2);
  w.matrix(m.eigenvalues);
}

void read_lmds(Reader& r, LandmarkMds& m) {
  r.matrix(m.pseudo_inverse);
  r.matrix(m.mean_d2);
  r.matrix(m.eigenvalues);
}

}  // namespace

void Model::save(const std::filesystem::path& file) const {
  Writer w;
  w.str(kVersion);
  const ModelOptions& o = options_;
  const PreprocessOptions& p = o.preprocess;
  w.pod(p.grid.emin_ev);
  w.pod(p.grid.step_ev);
  w.pod(p.grid.size);
  w.pod(p.background);
  w.pod(p.normalize);
  w.pod(p.edge_window_ev);
  w.pod(p.smooth_fwhm_ev);
  w.pod(p.min_coverage);
  w.pod(o.distance);
  w.pod(o.method);
  w.pod(o.landmarks);
  w.pod(o.landmark_choice);
  w.pod(o.map_dims);
  w.pod(o.estimate_dims);
  w.pod(o.isomap_neighbors);
  w.pod(o.seed);
  w.pod(o.max_shift_ev);
  w.pod(o.shift_step_ev);
  w.pod(o.shift_penalty);
  w.pod(o.neighbors);
  w.pod(o.weighting);
  w.pod(o.local_linear_dims);
  w.pod(o.report_neighbors);
  w.pod(o.novelty_threshold);
  w.pod(o.threads);

  w.pod<std::uint64_t>(parameters_.size());
  for (const auto& info : parameters_) {
    w.str(info.name);
    w.pod<std::uint8_t>(info.categorical ? 1 : 0);
    w.pod<std::uint64_t>(info.category_names.size());
    for (const auto& n : info.category_names) w.str(n);
  }
  w.pod<std::uint64_t>(labels_.size());
  for (std::size_t i = 0; i < labels_.size(); ++i) {
    w.str(labels_[i]);
    w.vec(values_[i]);
  }
  w.matrix(prepared_);
  w.pod<std::uint8_t>(rows_are_features_ ? 1 : 0);
  w.vec(row_spectrum_);
  w.vec(row_shift_);
  w.vec(landmarks_);
  write_lmds(w, lmds_);
  w.matrix(coordinates_);
  w.matrix(landmark_features_);
  w.matrix(affine_);
  w.matrix(offset_);
  w.matrix(geodesic_);
  write_lmds(w, aux_lmds_);
  w.matrix(aux_coordinates_);
  w.matrix(aux_affine_);
  w.matrix(aux_offset_);
  w.pod(median_nn_);

  const std::string& payload = w.bytes();
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(file.string() + ": cannot write the model file");
  out.write(kMagic, sizeof kMagic);
  const std::uint32_t version = kFormatVersion;
  const std::uint64_t length = payload.size();
  const std::uint32_t checksum = crc32(payload);
  out.write(reinterpret_cast<const char*>(&version), sizeof version);
  out.write(reinterpret_cast<const char*>(&length), sizeof length);
  out.write(payload.data(), static_cast<std::streamsize>(payload.size()));
  out.write(reinterpret_cast<const char*>(&checksum), sizeof checksum);
  if (!out) throw Error(file.string() + ": writing the model file failed");
}

Model Model::load(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(name + ": cannot read the model file");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  constexpr std::size_t kHeader = sizeof kMagic + sizeof(std::uint32_t) + sizeof(std::uint64_t);
  if (bytes.size() < kHeader || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw Error(name + ": not an xasmap model file (no XASMAPMD header)");
  }
  std::uint32_t version = 0;
  std::uint64_t length = 0;
  std::memcpy(&version, bytes.data() + sizeof kMagic, sizeof version);
  std::memcpy(&length, bytes.data() + sizeof kMagic + sizeof version, sizeof length);
  if (version != kFormatVersion) {
    throw Error(name + ": model file format version " + std::to_string(version) +
                ", but this xasmap " + kVersion + " reads version " +
                std::to_string(kFormatVersion) + "; refit it with 'xasmap embed'");
  }
  if (bytes.size() - kHeader < sizeof(std::uint32_t) ||
      length != bytes.size() - kHeader - sizeof(std::uint32_t)) {
    throw Error(name + ": truncated model file (" + std::to_string(bytes.size()) +
                " bytes; the header announces " +
                std::to_string(length + kHeader + sizeof(std::uint32_t)) + ")");
  }
  const std::string payload = bytes.substr(kHeader, length);
  std::uint32_t stored = 0;
  std::memcpy(&stored, bytes.data() + kHeader + length, sizeof stored);
  if (stored != crc32(payload)) {
    throw Error(name + ": corrupt model file (checksum mismatch)");
  }

  Reader r(payload, name);
  Model m;
  const std::string writer_version = r.str();
  ModelOptions& o = m.options_;
  PreprocessOptions& p = o.preprocess;
  p.grid.emin_ev = r.pod<double>();
  p.grid.step_ev = r.pod<double>();
  p.grid.size = r.pod<int>();
  p.background = r.pod<BackgroundKind>();
  p.normalize = r.pod<NormalizationKind>();
  p.edge_window_ev = r.pod<double>();
  p.smooth_fwhm_ev = r.pod<double>();
  p.min_coverage = r.pod<double>();
  o.distance = r.pod<DistanceKind>();
  o.method = r.pod<EmbeddingKind>();
  o.landmarks = r.pod<int>();
  o.landmark_choice = r.pod<LandmarkChoice>();
  o.map_dims = r.pod<int>();
  o.estimate_dims = r.pod<int>();
  o.isomap_neighbors = r.pod<int>();
  o.seed = r.pod<std::uint64_t>();
  o.max_shift_ev = r.pod<double>();
  o.shift_step_ev = r.pod<double>();
  o.shift_penalty = r.pod<double>();
  o.neighbors = r.pod<int>();
  o.weighting = r.pod<Weighting>();
  o.local_linear_dims = r.pod<int>();
  o.report_neighbors = r.pod<int>();
  o.novelty_threshold = r.pod<double>();
  o.threads = r.pod<int>();

  const auto n_params = r.pod<std::uint64_t>();
  if (n_params > 1000) r.fail("an implausible parameter count");
  for (std::uint64_t i = 0; i < n_params; ++i) {
    ParameterInfo info;
    info.name = r.str();
    info.categorical = r.pod<std::uint8_t>() != 0;
    const auto names = r.pod<std::uint64_t>();
    if (names > 1'000'000) r.fail("an implausible category count");
    for (std::uint64_t k = 0; k < names; ++k) info.category_names.push_back(r.str());
    m.parameters_.push_back(std::move(info));
  }
  const auto n_labels = r.pod<std::uint64_t>();
  if (n_labels > (payload.size() / 8)) r.fail("an implausible library size");
  for (std::uint64_t i = 0; i < n_labels; ++i) {
    m.labels_.push_back(r.str());
    m.values_.push_back(r.vec<double>());
    if (m.values_.back().size() != n_params) r.fail("a spectrum with the wrong number of parameters");
  }
  r.matrix(m.prepared_);
  m.rows_are_features_ = r.pod<std::uint8_t>() != 0;
  m.row_spectrum_ = r.vec<std::int32_t>();
  m.row_shift_ = r.vec<float>();
  m.landmarks_ = r.vec<std::int32_t>();
  read_lmds(r, m.lmds_);
  r.matrix(m.coordinates_);
  r.matrix(m.landmark_features_);
  r.matrix(m.affine_);
  r.matrix(m.offset_);
  r.matrix(m.geodesic_);
  read_lmds(r, m.aux_lmds_);
  r.matrix(m.aux_coordinates_);
  r.matrix(m.aux_affine_);
  r.matrix(m.aux_offset_);
  m.median_nn_ = r.pod<double>();
  if (!r.done()) r.fail("bytes left after the last field");

  // Consistency of what was read.
  const auto rows = m.prepared_.rows();
  if (m.prepared_.cols() != p.grid.size || static_cast<std::int64_t>(m.row_spectrum_.size()) != rows ||
      static_cast<std::int64_t>(m.row_shift_.size()) != rows || m.coordinates_.rows() != rows ||
      m.coordinates_.cols() != o.estimate_dims || m.lmds_.dims() != o.estimate_dims ||
      static_cast<Eigen::Index>(m.landmarks_.size()) != m.lmds_.pseudo_inverse.cols()) {
    r.fail("inconsistent sizes");
  }
  for (const auto s : m.row_spectrum_) {
    if (s < 0 || static_cast<std::uint64_t>(s) >= n_labels) r.fail("a row of an unknown spectrum");
  }
  for (const auto l : m.landmarks_) {
    if (l < 0 || l >= rows) r.fail("a landmark outside the library");
  }
  (void)writer_version;
  m.build_indexes();
  return m;
}

}  // namespace xasmap
