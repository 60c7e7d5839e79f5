#pragma once
// A beamline session's energy calibration offset: measured energy = true energy + offset, common to
// every spectrum of the session (the monochromator's calibration; beamlines differ by up to about
// 1 eV), on top of which each spectrum may still be off by a little. Estimates search each
// spectrum's own offset around the session's (ModelOptions::max_shift_ev either side), so the session
// offset has to be known first. Two ways to know it:
//  - calibrate_offset(): from a reference of known charge measured in the session (a standard such
//    as MnO for Mn2+), as a beamline calibrates its energy scale;
//  - SessionOffsetTracker: from the stream itself, as the median whole offset of its confident
//    estimates.

#include <cstdint>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "xasmap/core/model.hpp"

namespace xasmap {

struct OffsetCalibration {
  double offset_ev = 0;       // the session offset the reference gives
  double distance2 = 0;       // the reference's best ranked squared distance to its charge there
  double probability = 0;     // the probability of the reference's charge at that offset
  Estimate estimate;          // the reference's estimate at that offset (energy_shift_ev: whole offset)
  std::vector<std::pair<double, double>> profile;  // (offset, distance2) over the search, ascending
};

// Tries every offset in [-range_ev, range_ev] in steps of step_ev and keeps the one at which the
// reference lies nearest a library spectrum of charge `charge_value` (its ranked squared distance,
// which holds the shift prior, so the offset found is where the reference needs no further shift);
// the minimum is refined by a parabola through its neighbours. Throws Error when the model has no
// categorical parameter holding `charge_value`, and PreprocessError (the reason at offset 0) when
// the reference cannot be judged at any offset.
OffsetCalibration calibrate_offset(const Model& model, const Spectrum& reference, double charge_value,
                                   double range_ev = 2.0, double step_ev = 0.05);

// Until the session offset is known (given, calibrated on a standard or tracked from the stream), a
// spectrum may be off by more than the per-spectrum search reaches (max_shift_ev either side), and
// a charge read at the wrong offset can fit well enough to be confidently wrong (a Mn2+ spectrum
// 1 eV up reads as Mn3+). estimate_over_offsets() estimates the spectrum on the session offsets
// centre_ev + k * max_shift_ev within +-range_ev, so that together they search +-(range_ev +
// max_shift_ev), each with its own shift prior. It keeps the estimate whose best match is nearest
// (its parameters, novelty and neighbours) and gives each class the best distance it reaches at any
// of the offsets, so a charge that fits as well elsewhere shares the probability. energy_shift_ev
// is the whole offset. It costs 1 + 2 * floor(range_ev / max_shift_ev) estimates (5 at the defaults);
// with range_ev 0, or a model without shifted copies, it is one estimate at centre_ev. Throws the
// PreprocessError of the offset centre_ev when the spectrum cannot be judged there.
struct OffsetSearchScratch {
  Prepared prepared;
  Estimate trial;
  std::vector<double> class_distance2;
};
void estimate_over_offsets(const Model& model, const Eigen::Ref<const Eigen::VectorXd>& energy_ev,
                           const Eigen::Ref<const Eigen::VectorXd>& intensity, double centre_ev, double range_ev,
                           OffsetSearchScratch& scratch, Estimate& out);
Estimate estimate_over_offsets(const Model& model, const Spectrum& spectrum, double centre_ev, double range_ev);

// The one session offset a whole stack is estimated on while the session's is not known: the
// median whole offset of up to 16 pixels spread over the stack, each searched
// (estimate_over_offsets within +-range_ev of centre_ev), over those whose estimates are confident
// (class probability >= min_confidence) and inside the library; at least 3 must be, else centre_ev.
// Pixels, not the mean spectrum: a stack of several phases has a mean that none of them is.
// `pixel(k, out)` writes pixel k's intensities (on energy_ev) into out. With range_ev <= 0: centre_ev.
double stack_offset_ev(const Model& model, const Eigen::Ref<const Eigen::VectorXd>& energy_ev, std::size_t pixels,
                       const std::function<void(std::size_t, Eigen::VectorXd&)>& pixel, double centre_ev,
                       double range_ev, double min_confidence);

// Model::mixture on the same session offsets as estimate_over_offsets (the spectrum read on each,
// its components' common shift searched within max_shift_ev of it), keeping the mixture that fits
// best (least residual): a mixture's single best match, which decides estimate_over_offsets'
// offset, can sit 0.5-1 eV from the components' own. `estimate` is the spectrum's, from
// estimate_over_offsets (it only gives the single-phase answer). With range_ev 0: one mixture at
// centre_ev. Throws the PreprocessError of centre_ev when the spectrum cannot be judged there.
Mixture mixture_over_offsets(const Model& model, const Eigen::Ref<const Eigen::VectorXd>& energy_ev,
                             const Eigen::Ref<const Eigen::VectorXd>& intensity, double centre_ev, double range_ev,
                             const Estimate& estimate, const MixtureOptions& options, Prepared& scratch);

struct SessionTrackerOptions {
  int window = 64;              // the last `window` confident estimates count
  int min_samples = 8;          // until this many have counted, the tracked offset is the start
  double min_confidence = 0.9;  // the charge probability an estimate needs to count
  double max_abs_ev = 2.0;      // the tracked offset stays within +-max_abs_ev
};

// Tracks the session offset from the stream: the median of the whole offsets (Estimate::
// energy_shift_ev, session offset included) of the last `window` estimates that are confident
// (charge probability >= min_confidence) and inside the library. Thread-safe.
class SessionOffsetTracker {
 public:
  explicit SessionOffsetTracker(double start_ev = 0.0, SessionTrackerOptions options = {});

  // Offers an estimate; returns true when it counted.
  bool observe(const Estimate& e);
  double tracked_ev() const;
  // Whether min_samples estimates have counted, so that tracked_ev() is the stream's and not the
  // start's (a reload starts afresh).
  bool settled() const;

  struct Snapshot {
    double start_ev = 0, tracked_ev = 0;
    double spread_ev = 0;       // 1.4826 x median absolute deviation of the window (0 when empty)
    int samples = 0;            // in the window now
    std::uint64_t observed = 0, counted = 0;
  };
  Snapshot snapshot() const;

 private:
  SessionTrackerOptions options_;
  double start_ev_;
  mutable std::mutex mutex_;
  std::vector<double> window_;  // ring buffer
  std::size_t next_ = 0;
  std::vector<double> sorted_;  // the window's values in order: its median at once, per estimate
  double tracked_ev_;
  std::uint64_t observed_ = 0, counted_ = 0;
};

}  // namespace xasmap
