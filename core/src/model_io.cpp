// The model file: one versioned binary file with a checksum.
//
//   bytes 0-7    magic "XASMAPMD"
//   bytes 8-11   format version (uint32, little-endian)
//   bytes 12-19  payload length (uint64)
//   payload      the fields below, in order
//   last 8       64-bit checksum of the payload (below)
//
// Numbers are stored little-endian as written by this (x86-64 / arm64) build; strings and arrays
// carry their lengths. load() checks the magic, the version, the length and the checksum before it
// reads a field, so a foreign, newer, older, truncated or corrupt file is refused with a message
// that says which. Both directions stream: a model of 600,000 spectra (1.2 GB) is never held
// twice in memory, and the checksum pass runs at memory speed.
//
// Version history: 1 held a CRC-32 and was read whole into memory; 2 (this) streams, with the
// checksum below.

#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <vector>

#include "xasmap/core/error.hpp"
#include "xasmap/core/model.hpp"
#include "xasmap/core/version.hpp"

namespace xasmap {

namespace {

constexpr char kMagic[8] = {'X', 'A', 'S', 'M', 'A', 'P', 'M', 'D'};
constexpr std::uint32_t kFormatVersion = 3;  // 3: the novelty scale
constexpr std::size_t kHeader = sizeof kMagic + sizeof(std::uint32_t) + sizeof(std::uint64_t);
static_assert(std::endian::native == std::endian::little, "model files are little-endian");

// A 64-bit checksum over 32-byte stripes in four independent lanes, with the round, merge and
// final mixing of xxHash64 (Y. Collet, XXH64 specification); written here, not byte-compatible
// with the reference. Four lanes of multiply-rotate keep it near memory speed, where the former
// byte-at-a-time CRC-32 took seconds on a large model. It detects corruption and truncation,
// not tampering.
class Checksum {
 public:
  void update(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    total_ += n;
    if (tail_size_ > 0) {
      const std::size_t take = std::min(n, kStripe - tail_size_);
      std::memcpy(tail_.data() + tail_size_, p, take);
      tail_size_ += take;
      p += take;
      n -= take;
      if (tail_size_ < kStripe) return;
      stripe(tail_.data());
      tail_size_ = 0;
    }
    for (; n >= kStripe; p += kStripe, n -= kStripe) stripe(p);
    std::memcpy(tail_.data(), p, n);
    tail_size_ = n;
  }
  std::uint64_t finish() const {
    std::uint64_t h = std::rotl(lane_[0], 1) + std::rotl(lane_[1], 7) + std::rotl(lane_[2], 12) +
                      std::rotl(lane_[3], 18);
    for (const std::uint64_t l : lane_) h = (h ^ round(0, l)) * kP1 + kP4;
    h += total_;
    std::size_t i = 0;
    for (; i + 8 <= tail_size_; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, tail_.data() + i, 8);
      h = std::rotl(h ^ round(0, w), 27) * kP1 + kP4;
    }
    for (; i < tail_size_; ++i) h = std::rotl(h ^ (tail_[i] * kP5), 11) * kP1;
    h ^= h >> 33;
    h *= kP2;
    h ^= h >> 29;
    h *= kP3;
    return h ^ (h >> 32);
  }

 private:
  static constexpr std::size_t kStripe = 32;
  static constexpr std::uint64_t kP1 = 11400714785074694791ULL, kP2 = 14029467366897019727ULL,
                                 kP3 = 1609587929392839161ULL, kP4 = 9650029242287828579ULL,
                                 kP5 = 2870177450012600261ULL;
  static std::uint64_t round(std::uint64_t acc, std::uint64_t w) { return std::rotl(acc + w * kP2, 31) * kP1; }
  void stripe(const unsigned char* p) {
    std::uint64_t w[4];
    std::memcpy(w, p, sizeof w);
    for (int k = 0; k < 4; ++k) lane_[k] = round(lane_[k], w[k]);
  }
  std::array<std::uint64_t, 4> lane_{kP1 + kP2, kP2, 0, 0 - kP1};
  std::array<unsigned char, kStripe> tail_{};
  std::size_t tail_size_ = 0;
  std::uint64_t total_ = 0;
};

class Writer {
 public:
  Writer(std::ofstream& out, const SaveProgress& progress) : out_(out), progress_(progress) {}
  template <class T>
  void pod(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    bytes(&v, sizeof v);
  }
  void str(const std::string& s) {
    pod<std::uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  template <class T>
  void vec(const std::vector<T>& v) {
    pod<std::uint64_t>(v.size());
    bytes(v.data(), v.size() * sizeof(T));
  }
  template <class M>
  void matrix(const M& m) {
    pod<std::int64_t>(m.rows());
    pod<std::int64_t>(m.cols());
    bytes(m.data(), static_cast<std::size_t>(m.size()) * sizeof(typename M::Scalar));
  }
  std::uint64_t written() const { return written_; }
  std::uint64_t checksum() const { return sum_.finish(); }

 private:
  // An empty array's data() may be null: write nothing rather than pass it on.
  void bytes(const void* data, std::size_t n) {
    if (n == 0) return;
    out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
    sum_.update(data, n);
    written_ += n;
    if (progress_) progress_(written_);
  }
  std::ofstream& out_;
  const SaveProgress& progress_;
  Checksum sum_;
  std::uint64_t written_ = 0;
};

// Reads fields from the payload of a file whose length and checksum were verified; a field
// longer than what is left is refused before anything is allocated for it.
class Reader {
 public:
  Reader(std::ifstream& in, std::uint64_t length, std::string file)
      : in_(in), left_(length), file_(std::move(file)) {}
  template <class T>
  T pod() {
    T v;
    take(&v, sizeof v);
    return v;
  }
  std::string str() {
    const auto n = pod<std::uint64_t>();
    check(n);
    std::string s(n, '\0');
    take(s.data(), n);
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
  bool done() const { return left_ == 0; }
  std::uint64_t left() const { return left_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw ModelFileError(file_ + ": corrupt model file (" + what + " at byte " + std::to_string(kHeader + read_) + ")");
  }

 private:
  void check(std::uint64_t n) const {
    if (n > left_) fail("a field longer than the file");
  }
  void take(void* dst, std::size_t n) {
    check(n);
    if (n == 0) return;  // an empty array's data() may be null
    in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (!in_) fail("the file ended early");
    left_ -= n;
    read_ += n;
  }
  std::ifstream& in_;
  std::uint64_t left_;
  std::uint64_t read_ = 0;
  std::string file_;
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

ModelFileError::~ModelFileError() = default;

void Model::save(const std::filesystem::path& file, const SaveProgress& progress) const {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(file.string() + ": cannot write the model file");
  // The header's length is written once the payload is out.
  out.write(kMagic, sizeof kMagic);
  const std::uint32_t version = kFormatVersion;
  std::uint64_t length = 0;
  out.write(reinterpret_cast<const char*>(&version), sizeof version);
  out.write(reinterpret_cast<const char*>(&length), sizeof length);
  Writer w(out, progress);
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
  w.pod(novelty_scale_);

  const std::uint64_t checksum = w.checksum();
  out.write(reinterpret_cast<const char*>(&checksum), sizeof checksum);
  length = w.written();
  out.seekp(static_cast<std::streamoff>(sizeof kMagic + sizeof version));
  out.write(reinterpret_cast<const char*>(&length), sizeof length);
  out.close();
  if (!out) throw Error(file.string() + ": writing the model file failed");
}

namespace {

// Opens a model file and checks its header, length and checksum (what load() and check_file()
// share); leaves `in` at the start of the payload.
ModelFileInfo open_checked(const std::filesystem::path& file, std::ifstream& in) {
  const std::string name = file.string();
  in.open(file, std::ios::binary);
  if (!in) throw Error(name + ": cannot read the model file");
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(file, ec);
  if (ec) throw Error(name + ": cannot read the model file (" + ec.message() + ")");
  char head[kHeader] = {};
  in.read(head, kHeader);
  if (!in || std::memcmp(head, kMagic, sizeof kMagic) != 0) {
    throw ModelFileError(name + ": not an xasmap model file (no XASMAPMD header)");
  }
  std::uint32_t version = 0;
  std::uint64_t length = 0;
  std::memcpy(&version, head + sizeof kMagic, sizeof version);
  std::memcpy(&length, head + sizeof kMagic + sizeof version, sizeof length);
  if (version != kFormatVersion) {
    throw ModelFileError(name + ": model file format version " + std::to_string(version) +
                ", but this xasmap " + kVersion + " reads version " +
                std::to_string(kFormatVersion) + "; refit it with 'xasmap embed'");
  }
  constexpr std::uint64_t kTrailer = sizeof(std::uint64_t);
  if (size < kHeader + kTrailer || length != size - kHeader - kTrailer) {
    throw ModelFileError(name + ": truncated model file (" + std::to_string(size) + " bytes; the header announces " +
                std::to_string(length + kHeader + kTrailer) + ")");
  }
  // First pass: the checksum, so that nothing of a corrupt file is parsed.
  std::uint64_t stored = 0;
  {
    Checksum sum;
    std::vector<char> chunk(std::size_t{4} << 20);
    for (std::uint64_t left = length; left > 0;) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
      in.read(chunk.data(), static_cast<std::streamsize>(n));
      if (!in) throw ModelFileError(name + ": truncated model file (read failed)");
      sum.update(chunk.data(), n);
      left -= n;
    }
    in.read(reinterpret_cast<char*>(&stored), sizeof stored);
    if (!in || stored != sum.finish()) throw ModelFileError(name + ": corrupt model file (checksum mismatch)");
  }
  in.seekg(static_cast<std::streamoff>(kHeader));
  return {version, length, stored};
}

}  // namespace

ModelFileInfo Model::check_file(const std::filesystem::path& file) {
  std::ifstream in;
  return open_checked(file, in);
}

Model Model::load(const std::filesystem::path& file) {
  const std::string name = file.string();
  std::ifstream in;
  const ModelFileInfo header = open_checked(file, in);
  const std::uint64_t length = header.payload_bytes;

  Reader r(in, length, name);
  Model m;
  m.file_checksum_ = header.checksum;
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
  if (n_labels > r.left() / 8) r.fail("an implausible library size");
  m.labels_.reserve(n_labels);
  m.values_.reserve(n_labels);
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
  m.novelty_scale_ = r.pod<double>();
  if (!(m.novelty_scale_ > 0.0) || !std::isfinite(m.novelty_scale_)) r.fail("the novelty scale is not a positive number");
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
