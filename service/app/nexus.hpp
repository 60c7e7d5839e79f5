#pragma once
// NeXus/HDF5 files (docs/files.md), with Debian's libhdf5: measured spectra from NXxas entries,
// STXM stacks from NXstxm entries, and stack results written as NeXus (NXentry / NXprocess /
// NXdata) that h5py, silx, h5web and Mantis open. Every refusal names the file and the path
// inside it (NexusError). HDF5's own error stack is silenced: the message says what was wrong.
//
// Not thread-safe: Debian's serial libhdf5 is built without its thread-safety lock, so only one
// thread may be inside these functions at a time (the tools call them from their main thread).

#include <Eigen/Core>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "xasmap/core/error.hpp"
#include "xasmap/core/spectrum.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::service {

// "FILE:/path/in/file: what is wrong".
class NexusError : public Error {
 public:
  NexusError(const std::filesystem::path& file, const std::string& in_file, const std::string& what);
};

// Whether `file` starts with HDF5's signature (at offset 0; user blocks are not looked for).
bool is_hdf5_file(const std::filesystem::path& file);
// Whether the tools read `file` as NeXus: HDF5's signature, or a name ending in .h5, .hdf5, .hdf,
// .nxs or .nx5 (so that such a file that is not HDF5 is refused as one, not read as text).
bool is_nexus_file(const std::filesystem::path& file);

// One measured spectrum of an NXxas entry: the first NXentry (NX_class attribute; a file without
// any takes its first group) holding an NXdata group whose signal (its @signal attribute, else a
// dataset named absorbed_beam, data or intensity) is one-dimensional, with the energy axis its
// @axes attribute names (else a dataset named energy) in eV or keV (@units; none: eV). Points are
// sorted by energy and a repeated energy is averaged, as for text files.
struct NexusSpectrum {
  Spectrum spectrum;
  std::string signal_path;  // e.g. /entry/data/absorbed_beam
};
NexusSpectrum read_nxxas(const std::filesystem::path& file);

// An STXM stack of an NXstxm entry: /<entry>/<NXdata>/data (or the group's @signal) with three
// dimensions, one of which is the energy axis: [energy, y, x] or [y, x, energy] (any position is
// read) as the group's @axes attribute says (a string array, or one string with ':' or ','
// between names), or its @energy_indices; without either, the dimension whose length matches a
// one-dimensional `energy` dataset. The other two are y then x, with their axis datasets when the
// group has them (sample_y, sample_x in NXstxm). Energy in eV or keV (@units; none: eV), strictly
// increasing.
struct NexusStack {
  Eigen::VectorXd energy_ev;
  std::size_t ny = 0, nx = 0;
  std::vector<float> intensity;  // pixel-major: (y * nx + x) * energies + e
  std::vector<double> y, x;      // the axes' values (indices when the file has none)
  std::string y_units, x_units;
  std::string signal_path;  // e.g. /entry1/counter0/data
  std::string layout;       // the dimensions as stored, e.g. "energy,y,x"
  std::size_t pixels() const { return ny * nx; }
};
NexusStack read_nxstxm(const std::filesystem::path& file);

// What is in the file: a stack (a three-dimensional signal), a spectrum (one-dimensional), or
// neither (NexusError saying what was found).
enum class NexusKind { kSpectrum, kStack };
NexusKind nexus_kind(const std::filesystem::path& file);

// A stack's results as NeXus: /entry (NXentry, @default) / xasmap (NXprocess: program, version,
// date, provenance) / maps (NXdata: @signal = the first map, @axes = [y, x], @y_indices 0,
// @x_indices 1, @auxiliary_signals = the other maps), each map a float32 [y, x] dataset with
// @units and @long_name, NaN where a pixel could not be judged. Written to FILE.part and renamed,
// so that a failure leaves no half-written file.
struct NexusMap {
  std::string name;       // e.g. charge, tendq, tendq_uncertainty
  std::string units;      // e.g. eV; "" for dimensionless
  std::string long_name;  // e.g. "10Dq (eV)"
  std::vector<float> values;  // [y * nx + x]
};
struct NexusResult {
  std::size_t ny = 0, nx = 0;
  std::vector<double> y, x;  // the axes, written as y and x
  std::string y_units, x_units;
  std::vector<NexusMap> maps;  // the first is the signal
  std::string title;           // the stack's id or file
  // Provenance (the NXprocess group).
  std::string version;         // xasmap's
  std::string model_checksum;  // the model file's checksum, hex, or how the model was made
  std::string library;         // a description of the library
  std::string config_yaml;     // the configuration in force
  std::string source;          // the input: file and path inside it, or the daemon's message id
  double session_offset_ev = 0;
  std::uint64_t rejected_pixels = 0;
};
void write_nexus_result(const std::filesystem::path& file, const NexusResult& result);
// The same as a further NXentry of `file` (created when absent), named stack_NNNNNN with the first
// number free, whose root @default then names it: the daemon's output.nexus_file. Returns the
// entry's name.
std::string append_nexus_result(const std::filesystem::path& file, const NexusResult& result);

// A daemon's estimate_map as NeXus maps: the categorical parameters first (charge: the signal),
// each parameter's uncertainty or confidence after it, novelty, the mixture's mean valence and
// atom fractions when present. A stack of [rows, cols, energies] has two dimensions; a list of
// pixels is one row. Provenance is the caller's.
NexusResult nexus_result_of(const protocol::EstimateMapMessage& m);

// A map named as xasmap names them, with its units and long name: charge and valence in e, tendq
// and parameters ending in _ev in eV, NAME_uncertainty in NAME's units, NAME_confidence, novelty
// and fraction_CHARGE dimensionless ("1"). Its values are NaN, `pixels` of them.
NexusMap nexus_map(const std::string& name, std::size_t pixels);

}  // namespace xasmap::service
