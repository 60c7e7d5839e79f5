#pragma once
// Mixed valence: a measured spectrum as a non-negative combination of two library spectra of
// different classes (charges), with atom fractions (docs/estimation.md, Mixtures).
//
// Both components are read at the spectrum's own energy shift (the estimate's) and on its window,
// preprocessed as the spectrum is (line background, unit area on the window), so the weights w
// of q ~ w_a y_a + w_b y_b are the components' shares of the window's area. A charge's L2,3
// intensity per atom is proportional to its number of 3d holes h (the sum rule the simulator
// satisfies), and a component's window holds the share a of its whole edge's area; the atom
// fractions are therefore f_c ~ w_c / (h_c a_c), normalised to 1.
//
// Each component is chosen from its class by an alternating search: seeded with the
// `candidates` best single fits of each class, then, with one component held, the other is the
// best of the class's `search_per_class` best single fits, `refinements` times; the components'
// common shift is searched over the library's shifted copies (`shift_search_ev`), and each one is
// finally widened to `per_class` spectra of its class, fitted together by non-negative least
// squares. The mixture is kept (single_phase false) only when
// it explains at least `min_gain` of the best single fit's residual, its minor component holds at
// least `min_fraction` of the atoms and it leaves the spectrum inside the library (`max_novelty`):
// pure spectra stay pure. Fractions' standard deviations come from the fit's residual variance
// through the weights' covariance, scaled by `interval_scale`, and a systematic part.

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace xasmap {

struct MixtureOptions {
  // 3d holes per class value; a missing value counts as 1 (then the fractions are area shares).
  std::map<double, double> holes;
  int candidates = 6;
  int refinements = 3;
  int search_per_class = 60;  // the best single fits of a class the alternating search considers
  int per_class = 3;          // library spectra per component in the final fit
  // The components share one energy shift, searched within this range of none (the library's
  // shifted copies); a mixture's best single match sits at a compromise shift, no guide to it.
  double shift_search_ev = 0.5;
  // Parameters the components share (the instrument's widths and the sample's temperature):
  // only library spectra with equal values of these are combined. Names not in the model are
  // passed over.
  std::vector<std::string> shared_parameters{"gauss_fwhm_ev", "lorentz_scale", "temperature_k"};
  // The shift nearest none is searched over every setting of those parameters; the other shifts
  // over the settings_searched settings that fitted best there (<= 0: every setting, always).
  int settings_searched = 2;
  // A mixture is claimed only when it explains at least min_gain of the best single fit's
  // residual, its minor component holds at least min_fraction of the atoms, and the spectrum's
  // novelty with the mixture's residual instead of the single fit's (e.novelty x sqrt(rss_mixture /
  // rss_single)) is at most max_novelty (<= 0: the model's novelty_threshold): a mixture that
  // leaves the spectrum outside the library absorbs what the library lacks, and is no finding.
  // min_gain and min_fraction were chosen on a calibration half of held-out pure spectra and
  // mixtures under model mismatch (Slater 0.7, a broader instrument, 0 K): pure spectra >= 97 %
  // single phase (or >= 0.9 of their own charge), mean-valence MAE <= 0.05 (docs/validation.md).
  double min_gain = 0.5;
  double min_fraction = 0.05;
  double max_novelty = 0.0;
  // Fraction standard deviation: interval_scale x the fit's residual sd through the weights
  // (fitted on same-model mixtures), with systematic_sd x the mixture's novelty added in
  // quadrature: what model mismatch adds, growing with how far the spectrum lies from the
  // library once the mixture is fitted (fitted on the calibration half's mixtures under mismatch
  // to cover 68 %; one number for every mismatch over-covered the same model's mixtures).
  double interval_scale = 3.5;
  double systematic_sd = 0.013;  // per unit of novelty (0.012 before the edge-step fit, 2026-12-07)
};

struct MixtureComponent {
  double class_value = 0;   // e.g. the charge
  double fraction = 0;      // atom fraction
  double fraction_sd = 0;
  std::int32_t spectrum = -1;  // the library spectrum chosen (-1: the estimate's own, single phase)
  double area_weight = 0;   // w: its share of the window's area
  // Its parameters (the model's, in order): single phase, the estimate's values; a mixture's
  // component, the atom-weighted mean of its library spectra's continuous parameters (e.g. its
  // 10Dq) and its heaviest spectrum's categorical ones.
  std::vector<double> values;
};

struct Mixture {
  bool single_phase = true;
  double mean_value = std::numeric_limits<double>::quiet_NaN();     // sum of f_c x class value
  double mean_value_sd = std::numeric_limits<double>::quiet_NaN();
  std::vector<MixtureComponent> components;  // one (single phase) or two, largest fraction first
  double rss_single = 0;    // the best single library spectrum's residual (window, unit area)
  double rss_mixture = 0;   // the best pair's
  double gain = 0;          // 1 - rss_mixture / rss_single
  double shift_ev = 0;      // the components' common shift (the library copy's)
  double novelty = 0;       // the spectrum's novelty with the mixture's residual (see max_novelty)
};

// A spectrum found to be a mixture of two phases is not of one charge, however well one charge
// alone matches it (a 50/50 Mn2+/Mn4+ mixture reads as Mn3+): the confidence of the estimate's
// class value is capped at that value's atom fraction in the mixture (0 when it is not one of the
// components). A single-phase mixture leaves the estimate as it is.
struct Estimate;
void cap_class_confidence(const Mixture& mixture, Estimate& estimate);

// 3d holes of an ion such as "Mn2+": 10 minus its 3d electrons (Ti-Cu); 0 when not a 3d ion.
double holes_of_ion(const std::string& ion);

}  // namespace xasmap
