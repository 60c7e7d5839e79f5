#pragma once
// The preprocessing pipeline, applied identically to library and measured spectra:
// resample onto the common grid, smooth (optional), subtract a background, normalise.
//
// A measured spectrum may cover only part of the grid. The pipeline then works on the window of
// grid points the spectrum covers, and everything it is compared with is processed on the same
// window (apply_window()), so that both sides see the same operations. Because the default
// background (a line) and every normalisation are linear or scale-free, processing a library row
// that was already preprocessed on the full grid again on a window gives exactly what processing
// its raw spectrum on that window would.

#include <Eigen/Core>
#include <optional>
#include <string>

#include "xasmap/core/error.hpp"
#include "xasmap/core/spectrum.hpp"

namespace xasmap {

using RowVectorXf = Eigen::Matrix<float, 1, Eigen::Dynamic>;

// A uniform energy grid: emin_ev + i * step_ev, i = 0 .. size-1.
struct EnergyGrid {
  double emin_ev = 635.0;
  double step_ev = 0.1;
  int size = 251;
  double at(int i) const { return emin_ev + step_ev * i; }
  double emax_ev() const { return at(size - 1); }
  static EnergyGrid from_range(double emin_ev, double emax_ev, double step_ev);
  bool operator==(const EnergyGrid&) const = default;
};

enum class BackgroundKind { kPrePostLine, kEdgeStep, kNone };
enum class NormalizationKind { kArea, kMax, kEdgeStep, kNone };

struct PreprocessOptions {
  EnergyGrid grid;
  BackgroundKind background = BackgroundKind::kPrePostLine;
  NormalizationKind normalize = NormalizationKind::kArea;
  double edge_window_ev = 1.5;   // width of the pre- and post-edge regions at the window's ends
  double smooth_fwhm_ev = 0.0;   // Gaussian smoothing; 0 = off
  double min_coverage = 0.6;     // fraction of the grid a spectrum must cover
  // Refuse a spectrum that holds no absorption edge on its window (see preprocess()). Off for
  // library rows, which are what the library says they are.
  bool require_edge = true;
  bool operator==(const PreprocessOptions&) const = default;
};

// The grid points a spectrum covers: indices first..last, inclusive.
struct Window {
  int first = 0;
  int last = -1;
  int size() const { return last - first + 1; }
  bool operator==(const Window&) const = default;
};

// Why a spectrum was rejected, with a stable code for the wire protocol.
// kEnergyUnit: the energies miss the grid but would cover it in keV. kNoEdge: the window holds no
// absorption edge (noise, a background, another element's edge elsewhere; the message names the
// edge the spectrum's strongest peak lies near, when it lies off the grid).
enum class RejectReason {
  kNonFinite, kTooFewPoints, kNonMonotonic, kTooLittleOverlap, kFlat, kEnergyUnit, kNoEdge
};

// The absorption edge nearest to `energy_ev` among the 3d metals' L3 and L2 edges and the C, N,
// O and F K edges, as "Fe L3 (706.8 eV)"; empty when none lies within 10 eV.
std::string nearest_edge(double energy_ev);
// The 2p spin-orbit splitting (L2 minus L3 binding energy) of the 3d metal whose L3 edge lies
// nearest `energy_ev`, within 10 eV; 0 when none does. Mn: 11.2 eV.
double l3_l2_splitting_ev(double energy_ev);

class PreprocessError : public Error {
 public:
  PreprocessError(RejectReason reason, const std::string& message)
      : Error(message), reason_(reason) {}
  RejectReason reason() const { return reason_; }

 private:
  RejectReason reason_;
};

struct Prepared {
  RowVectorXf values;       // grid-sized; zero outside the window
  Window window;
  double coverage = 0.0;    // window width over grid width
  double noise_sigma = 0.0; // noise of `values` estimated from the spectrum itself (see below)
};

// Preprocesses one spectrum. Throws PreprocessError with the precise reason: non-finite values,
// fewer than 8 points, energy not strictly increasing, an overlap with the grid below
// min_coverage (kEnergyUnit when the energies are in keV), no absorption edge on the window
// (with require_edge: after subtracting the line through the window's ends, the highest point,
// lightly smoothed, must stand 8 noise sigmas above the line and hold at least a quarter of the
// window's whole range: noise, a background or the tail of another edge does not), or nothing
// left to normalise (a flat spectrum).
// noise_sigma: the standard deviation of white noise on the processed values, estimated from the
// measured samples themselves: 1.4826 x the median |second difference| of the samples under the
// window (each scaled to unit variance under white noise, for unequal spacing too), carried
// through the linear interpolation onto the grid (a grid point at fraction t between two samples
// holds (1-t)^2 + t^2 of a sample's variance; the mean over the window is taken), any smoothing
// and the normalisation. Second differences of the grid values themselves would miss half the
// noise of a measurement coarser than the grid, whose interpolated points lie on straight lines.
// With fewer than 5 samples under the window, the grid values' own second differences are used.
Prepared preprocess(const Spectrum& s, const PreprocessOptions& options, double energy_offset_ev = 0.0);
// The same into `out`, on any two arrays (the daemon passes its decoded message's), reusing out's
// storage and per-thread scratch: once warm it does not allocate.
// energy_offset_ev: the session's calibration offset (measured energy = true energy + offset);
// the spectrum is read at grid energy + offset, so the result is on the library's energy scale.
void preprocess_into(const Eigen::Ref<const Eigen::VectorXd>& energy_ev,
                     const Eigen::Ref<const Eigen::VectorXd>& intensity, const PreprocessOptions& options,
                     Prepared& out, double energy_offset_ev = 0.0);

// Processes grid-sized `values` (raw or already preprocessed) on `window`: smoothing, background
// and normalisation restricted to the window, zero outside. Throws PreprocessError(kFlat).
RowVectorXf apply_window(const Eigen::Ref<const RowVectorXf>& values, const Window& window,
                         const PreprocessOptions& options);
// apply_window_into returns the normalisation's divisor (1 without normalisation).
double apply_window_into(const Eigen::Ref<const RowVectorXf>& values, const Window& window,
                         const PreprocessOptions& options, RowVectorXf& out);  // out must not alias values
// The linear part of apply_window_into: smoothing and background on the window, not normalised,
// zero outside. window_is_linear: no smoothing (which does not compose over windows), a line or no
// background, area or no normalisation; then apply_window_into is this divided by a linear
// functional (the area), and a window of an already processed spectrum is that of the raw one.
bool window_is_linear(const PreprocessOptions& options);
void window_background_into(const Eigen::Ref<const RowVectorXf>& values, const Window& window,
                            const PreprocessOptions& options, RowVectorXf& out);  // out must not alias values

// Linear interpolation of `s` onto the grid points it covers; zero elsewhere. Sets `window`.
// variance_share (optional): the mean over the window of (1-t)^2 + t^2, the share of a sample's
// white-noise variance a grid point interpolated at fraction t between two samples holds.
// extend_below_ev / extend_above_ev: grid points up to that far beyond the first / last sample
// count as covered and take its value (preprocess_into extends by the session offset).
RowVectorXf resample(const Spectrum& s, const EnergyGrid& grid, Window& window);
void resample_into(const Eigen::Ref<const Eigen::VectorXd>& energy_ev, const Eigen::Ref<const Eigen::VectorXd>& intensity,
                   const EnergyGrid& grid, Window& window, RowVectorXf& out, double* variance_share = nullptr,
                   double extend_below_ev = 0.0, double extend_above_ev = 0.0);

}  // namespace xasmap
