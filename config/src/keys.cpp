#include "keys.hpp"

#include <yaml-cpp/yaml.h>

#include <array>
#include <cassert>
#include <charconv>
#include <cmath>

namespace xasmap::config::detail {

// ---------------------------------------------------------------------------------------------
// Spellings

namespace {

constexpr std::array<Spelling<LibrarySource>, 3> kLibrarySources{{
    {LibrarySource::kSimulate, "simulate"},
    {LibrarySource::kFiles, "files"},
    {LibrarySource::kModel, "model"},
}};
constexpr std::array<Spelling<Symmetry>, 2> kSymmetries{{
    {Symmetry::kOh, "Oh"},
    {Symmetry::kD4h, "D4h"},
}};
constexpr std::array<Spelling<LifetimeRule>, 2> kLifetimeRules{{
    {LifetimeRule::kCoreHole, "core_hole"},
    {LifetimeRule::kSplitEnergy, "split_energy"},
}};
constexpr std::array<Spelling<Polarization>, 6> kPolarizations{{
    {Polarization::kIsotropic, "isotropic"},
    {Polarization::kX, "x"},
    {Polarization::kY, "y"},
    {Polarization::kZ, "z"},
    {Polarization::kLeft, "left"},
    {Polarization::kRight, "right"},
}};
constexpr std::array<Spelling<BackgroundKind>, 3> kBackgrounds{{
    {BackgroundKind::kPrePostLine, "pre_post_line"},
    {BackgroundKind::kEdgeStep, "edge_step"},
    {BackgroundKind::kNone, "none"},
}};
constexpr std::array<Spelling<NormalizationKind>, 4> kNormalizations{{
    {NormalizationKind::kArea, "area"},
    {NormalizationKind::kMax, "max"},
    {NormalizationKind::kEdgeStep, "edge_step"},
    {NormalizationKind::kNone, "none"},
}};
constexpr std::array<Spelling<Alignment>, 2> kAlignments{{
    {Alignment::kNone, "none"},
    {Alignment::kFitShift, "fit_shift"},
}};
constexpr std::array<Spelling<EmbeddingKind>, 3> kEmbeddingKinds{{
    {EmbeddingKind::kMds, "mds"},
    {EmbeddingKind::kLmds, "lmds"},
    {EmbeddingKind::kIsomap, "isomap"},
}};
constexpr std::array<Spelling<DistanceKind>, 4> kDistanceKinds{{
    {DistanceKind::kEuclidean, "euclidean"},
    {DistanceKind::kCorrelation, "correlation"},
    {DistanceKind::kDerivative, "derivative"},
    {DistanceKind::kWasserstein, "wasserstein"},
}};
constexpr std::array<Spelling<LandmarkChoice>, 2> kLandmarkChoices{{
    {LandmarkChoice::kMaxMin, "maxmin"},
    {LandmarkChoice::kRandom, "random"},
}};
constexpr std::array<Spelling<Weighting>, 2> kWeightings{{
    {Weighting::kInverseDistance, "inverse_distance"},
    {Weighting::kLocalLinear, "local_linear"},
}};
constexpr std::array<Spelling<OffsetTracking>, 3> kOffsetTrackings{{
    {OffsetTracking::kOff, "off"},
    {OffsetTracking::kReport, "report"},
    {OffsetTracking::kApply, "apply"},
}};
constexpr std::array<Spelling<MixtureMode>, 2> kMixtureModes{{
    {MixtureMode::kAuto, "auto"},
    {MixtureMode::kOff, "off"},
}};
constexpr std::array<Spelling<InputPattern>, 3> kInputPatterns{{
    {InputPattern::kSub, "sub"},
    {InputPattern::kPull, "pull"},
    {InputPattern::kRouter, "router"},
}};
constexpr std::array<Spelling<Overflow>, 3> kOverflows{{
    {Overflow::kDropOldest, "drop_oldest"},
    {Overflow::kDropNewest, "drop_newest"},
    {Overflow::kBlock, "block"},
}};
constexpr std::array<Spelling<LogFormat>, 2> kLogFormats{{
    {LogFormat::kText, "text"},
    {LogFormat::kJson, "json"},
}};
constexpr std::array<Spelling<LogLevel>, 7> kLogLevels{{
    {LogLevel::kTrace, "trace"},
    {LogLevel::kDebug, "debug"},
    {LogLevel::kInfo, "info"},
    {LogLevel::kWarn, "warn"},
    {LogLevel::kError, "error"},
    {LogLevel::kCritical, "critical"},
    {LogLevel::kOff, "off"},
}};

template <class E, std::size_t N>
std::string spell(const std::array<Spelling<E>, N>& table, E v) {
  for (const auto& s : table) {
    if (s.value == v) return std::string(s.name);
  }
  return "?";
}

}  // namespace
}  // namespace xasmap::config::detail

namespace xasmap::config {

using detail::spell;

std::string to_string(LibrarySource v) { return spell(detail::kLibrarySources, v); }
std::string to_string(Symmetry v) { return spell(detail::kSymmetries, v); }
std::string to_string(Polarization v) { return spell(detail::kPolarizations, v); }
std::string to_string(LifetimeRule v) { return spell(detail::kLifetimeRules, v); }
std::string to_string(Alignment v) { return spell(detail::kAlignments, v); }
std::string to_string(InputPattern v) { return spell(detail::kInputPatterns, v); }
std::string to_string(Overflow v) { return spell(detail::kOverflows, v); }
std::string to_string(OffsetTracking v) { return spell(detail::kOffsetTrackings, v); }
std::string to_string(MixtureMode v) { return spell(detail::kMixtureModes, v); }
std::string to_string(LogFormat v) { return spell(detail::kLogFormats, v); }
std::string to_string(LogLevel v) { return spell(detail::kLogLevels, v); }

}  // namespace xasmap::config

namespace xasmap::config::detail {

// ---------------------------------------------------------------------------------------------
// Building the table

namespace {

// The member `m` of Config, as a Member<T>: XASMAP_MEMBER(model.landmarks).
#define XASMAP_MEMBER(m) (+[](Config& c) -> auto& { return c.m; })

template <class T>
Field field(Member<T> member) {
  return Field(member);
}

template <class E, std::size_t N>
Field choice(Member<E> member, const std::array<Spelling<E>, N>& spellings) {
  Choice ch;
  for (const auto& s : spellings) ch.names.push_back(s.name);
  ch.get = [member, &spellings](const Config& c) {
    const E v = member(const_cast<Config&>(c));  // read only
    for (std::size_t i = 0; i < N; ++i) {
      if (spellings[i].value == v) return i;
    }
    return std::size_t{0};
  };
  ch.set = [member, &spellings](Config& c, std::size_t i) { member(c) = spellings[i].value; };
  return Field(std::move(ch));
}

Bounds closed(double lo, double hi) { return {Bounds::kClosed, lo, hi}; }
Bounds positive(double hi) { return {Bounds::kPositive, 0.0, hi}; }

constexpr bool kFitted = true;

Entry section(std::string_view path, bool blank_before, std::string_view doc) {
  Entry e;
  e.path = path;
  e.doc = doc;
  e.blank_before = blank_before;
  return e;
}

Entry key(std::string_view path, Field f, Bounds b, std::string_view doc, bool fitted = false) {
  Entry e;
  e.path = path;
  e.field = std::move(f);
  e.bounds = b;
  e.doc = doc;
  e.fitted = fitted;
  return e;
}

Entry key(std::string_view path, Field f, std::string_view doc, bool fitted = false) {
  return key(path, std::move(f), Bounds{}, doc, fitted);
}

std::vector<Entry> build_entries() {
  return {
      section("library", true, ""),
      key("library.source", choice(XASMAP_MEMBER(library.source), kLibrarySources),
        "Where the reference spectra come from: simulate (the built-in crystal-field multiplet\n"
        "simulator, at start-up), files (a folder of spectra plus manifest.csv) or model (a fitted model\n"
        "written by `xasmap embed`)."),
      key("library.directory", field(XASMAP_MEMBER(library.directory)),
        "source: files. A folder holding manifest.csv and the spectra it lists, or a matrix library\n"
        "(spectra.npy, energy.npy, manifest.csv, as `xasmap scale-library` writes; needs align: none)."),
      key("library.model_file", field(XASMAP_MEMBER(library.model_file)),
        "source: model. A model file written by `xasmap embed`."),
      key("library.categorical", field(XASMAP_MEMBER(library.categorical)),
        "source: files. Manifest columns that are categorical whatever they hold, besides charge,\n"
        "symmetry and columns named NAME:cat (e.g. [site]). A column that mixes numbers and text is\n"
        "otherwise refused, naming the file, row and column."),
      section("library.simulate", true,
        "The parameter grid of the simulated library. The default is the XRM2018 seed study's grid:\n"
        "Mn2+, Mn3+ and Mn4+ in octahedral symmetry, 10Dq from 0.0 to 2.5 eV in 0.1 eV steps (78 spectra).\n"
        "A swept value is a number, a list of numbers, or {start, stop, step} (stop included)."),
      key("library.simulate.ions", field(XASMAP_MEMBER(library.simulate.ions)),
        "3d ions with their formal charge, Ti..Cu (e.g. Fe3+)."),
      key("library.simulate.symmetry", choice(XASMAP_MEMBER(library.simulate.symmetry), kSymmetries),
        "Crystal-field symmetry: Oh (10Dq only) or D4h (10Dq, Ds, Dt)."),
      key("library.simulate.tendq_ev", field(XASMAP_MEMBER(library.simulate.tendq_ev)), closed(-1.0, 10.0),
        "Crystal-field splitting 10Dq (eV)."),
      key("library.simulate.ds_ev", field(XASMAP_MEMBER(library.simulate.ds_ev)), closed(-2.0, 2.0),
        "Tetragonal parameters Ds and Dt (eV); only with symmetry D4h."),
      key("library.simulate.dt_ev", field(XASMAP_MEMBER(library.simulate.dt_ev)), closed(-2.0, 2.0), ""),
      key("library.simulate.slater_scale", field(XASMAP_MEMBER(library.simulate.slater_scale)), closed(0.0, 2.0),
        "Settings that vary between real spectra but are not asked for (nuisance parameters): each of\n"
        "slater_scale, temperature_k, gauss_fwhm_ev and lorentz_scale takes one value or a sweep (a\n"
        "list, or {start, stop, step}). Every swept one multiplies the library and becomes a\n"
        "reported parameter of the estimate; charge and 10Dq are then estimated whatever its value\n"
        "(docs/estimation.md, \"Nuisance parameters\"). The defaults give 936 spectra.\n"
        "Scale of the Hartree-Fock Slater integrals F(dd), F(pd), G(pd). 0.8 is CTM4XAS's \"100%\";\n"
        "0.7-0.9 is typical of 3d oxides, and the default spans it."),
      key("library.simulate.slater_scale_dd", field(XASMAP_MEMBER(library.simulate.slater_scale_dd)), closed(0.0, 2.0),
        "Separate scales for F2/F4(dd) and for F2(pd), G1/G3(pd); ~ (null) means slater_scale."),
      key("library.simulate.slater_scale_pd", field(XASMAP_MEMBER(library.simulate.slater_scale_pd)), closed(0.0, 2.0), ""),
      key("library.simulate.zeta_scale", field(XASMAP_MEMBER(library.simulate.zeta_scale)), closed(0.0, 2.0),
        "Scale of the spin-orbit constants zeta(2p) and zeta(3d); unscaled by default."),
      key("library.simulate.exchange_field_ev", field(XASMAP_MEMBER(library.simulate.exchange_field_ev)), closed(-5.0, 5.0),
        "Spin exchange field along z (eV); 0 = none."),
      key("library.simulate.temperature_k", field(XASMAP_MEMBER(library.simulate.temperature_k)), closed(0.0, 5000.0),
        "Temperature (K) of the Boltzmann weights of the initial states; 0 = ground manifold only.\n"
        "Room temperature by default: at 0 K only the lowest spin-orbit sublevel of an orbitally\n"
        "degenerate ground state (Mn3+ 5E, Fe2+, Co2+) counts, and those sublevels lie meV apart.\n"
        "By default a cryostat's 20 K and room temperature."),
      key("library.simulate.polarization", choice(XASMAP_MEMBER(library.simulate.polarization), kPolarizations),
        "Polarisation: isotropic, x, y, z, left or right."),
      key("library.simulate.lorentz_fwhm_l3_ev", field(XASMAP_MEMBER(library.simulate.lorentz_fwhm_l3_ev)), positive(10.0),
        "Lorentzian full widths at half maximum of the L3 and L2 edges, and the Gaussian (instrument)\n"
        "full width at half maximum it is convolved with (eV)."),
      key("library.simulate.lorentz_fwhm_l2_ev", field(XASMAP_MEMBER(library.simulate.lorentz_fwhm_l2_ev)), positive(10.0), ""),
      key("library.simulate.lifetime_rule", choice(XASMAP_MEMBER(library.simulate.lifetime_rule), kLifetimeRules),
        "Which Lorentzian width each final state gets: core_hole (from its 2p3/2 versus 2p1/2\n"
        "core-hole character, w l3 + (1 - w) l2; smooth in every parameter) or split_energy\n"
        "(CTM4XAS's convention: l3 below one split energy, l2 above it)."),
      key("library.simulate.lorentz_scale", field(XASMAP_MEMBER(library.simulate.lorentz_scale)), closed(0.01, 10.0),
        "Both Lorentzian widths times this (a sweep varies the lifetime broadening)."),
      key("library.simulate.gauss_fwhm_ev", field(XASMAP_MEMBER(library.simulate.gauss_fwhm_ev)), closed(0.0, 10.0), ""),
      key("library.simulate.overrides", field(XASMAP_MEMBER(library.simulate.overrides)),
        "Multiplet parameters set by name after scaling, for every ion (eV), e.g. {zeta2p: 7.0}.\n"
        "Names: f0dd_initial f2dd_initial f4dd_initial zeta3d_initial f0dd_final f2dd_final\n"
        "f4dd_final f0pd f2pd g1pd g3pd zeta3d_final zeta2p (tendq, ds, dt, exchange_field and\n"
        "temperature_k have their own keys above)."),
      key("library.simulate.energy_offset_ev", field(XASMAP_MEMBER(library.simulate.energy_offset_ev)), closed(-100.0, 20000.0),
        "Absolute energy = the simulator's relative energy + this offset, one per ion (eV). Calibrated\n"
        "on reference spectra (docs/simulator.md): Mn2+ on the XRM2018 poster's own MnO library\n"
        "curve (L3 maximum 640.40 eV at 10Dq 0.9), Mn3+ on measured LaMnO3 and Mn4+ on measured\n"
        "SrMnO3 (MnEdgeNet's Data2 files; the other measured spectra are kept for validation)."),
      section("library.simulate.charge_transfer", false,
        "Charge transfer (docs/simulator.md): configurations 1 is the crystal-field model (the other\n"
        "keys here are then unused)."),
      key("library.simulate.charge_transfer.configurations",
          field(XASMAP_MEMBER(library.simulate.charge_transfer.configurations)), closed(1, 3),
        "Configurations: 2 mixes 3d^n with 3d^(n+1)L, 3 also 3d^(n+2)L^2 (L: a ligand hole). delta_ev,\n"
        "udd_ev, upd_ev, veg_ev and vt2g_ev take one value or a sweep; each swept one multiplies the\n"
        "library and becomes a parameter of its spectra, and every spectrum also carries its ground\n"
        "state's 3d count n_d and covalency (the weight outside 3d^n), which estimates report."),
      key("library.simulate.charge_transfer.delta_ev", field(XASMAP_MEMBER(library.simulate.charge_transfer.delta_ev)),
          closed(-20.0, 20.0),
        "Charge-transfer energy E(3d^(n+1)L) - E(3d^n) between configuration averages (eV)."),
      key("library.simulate.charge_transfer.delta_shift_ev",
          field(XASMAP_MEMBER(library.simulate.charge_transfer.delta_shift_ev)), closed(-20.0, 20.0),
        "Added to every delta_ev value for the ion named, e.g. {Mn2+: 4.0, Mn3+: 2.5} (eV; an ion\n"
        "without an entry: 0): Delta falls as the valence rises, so one sweep, shifted per ion, spans\n"
        "each ion's own range. A spectrum's delta parameter is the value it was simulated with."),
      key("library.simulate.charge_transfer.udd_ev", field(XASMAP_MEMBER(library.simulate.charge_transfer.udd_ev)),
          closed(0.0, 20.0),
        "3d-3d Coulomb U and the core-hole potential Upd (eV): the final state's charge-transfer\n"
        "energy is delta + udd - upd."),
      key("library.simulate.charge_transfer.upd_ev", field(XASMAP_MEMBER(library.simulate.charge_transfer.upd_ev)),
          closed(0.0, 20.0), ""),
      key("library.simulate.charge_transfer.veg_ev", field(XASMAP_MEMBER(library.simulate.charge_transfer.veg_ev)),
          closed(0.0, 10.0),
        "Hopping between the 3d and ligand orbitals of e_g and of t2g symmetry (eV)."),
      key("library.simulate.charge_transfer.vt2g_ev", field(XASMAP_MEMBER(library.simulate.charge_transfer.vt2g_ev)),
          closed(0.0, 10.0), ""),
      key("library.simulate.charge_transfer.ligand_tendq_ev",
          field(XASMAP_MEMBER(library.simulate.charge_transfer.ligand_tendq_ev)), closed(-5.0, 5.0),
        "Crystal field of the ligand orbitals (eV); 0 as in ttmult."),
      section("library.grid", true,
        "The common energy grid every spectrum, library or measured, is resampled onto (eV)."),
      key("library.grid.emin_ev", field(XASMAP_MEMBER(library.grid.emin_ev)), closed(0.0, 100000.0), "",
          kFitted),
      key("library.grid.emax_ev", field(XASMAP_MEMBER(library.grid.emax_ev)), closed(0.0, 100000.0), "",
          kFitted),
      key("library.grid.step_ev", field(XASMAP_MEMBER(library.grid.step_ev)), positive(10.0), "",
          kFitted),
      section("library.preprocess", true,
        "The preprocessing pipeline, applied identically to library and measured spectra."),
      key("library.preprocess.background", choice(XASMAP_MEMBER(model.preprocess.background), kBackgrounds),
        "Background subtraction: pre_post_line (a line through the pre- and post-edge regions),\n"
        "edge_step (an arctangent edge-step model) or none.",
          kFitted),
      key("library.preprocess.normalize", choice(XASMAP_MEMBER(model.preprocess.normalize), kNormalizations),
        "Normalisation: area, max, edge_step or none.",
          kFitted),
      key("library.preprocess.smooth_fwhm_ev", field(XASMAP_MEMBER(model.preprocess.smooth_fwhm_ev)), closed(0.0, 10.0),
        "Gaussian smoothing full width (eV); 0 = off.",
          kFitted),
      key("library.preprocess.edge_window_ev", field(XASMAP_MEMBER(model.preprocess.edge_window_ev)), positive(20.0),
        "Width (eV) of the pre- and post-edge regions at the ends of the compared window.",
          kFitted),
      key("library.preprocess.align", choice(XASMAP_MEMBER(library.preprocess.align), kAlignments),
        "Energy calibration offset: fit_shift treats it as a nuisance parameter (the library also\n"
        "holds copies shifted by every multiple of shift_step_ev within +-max_shift_ev, and each\n"
        "estimate reports the offset it found); none compares spectra as they are.",
          kFitted),
      key("library.preprocess.max_shift_ev", field(XASMAP_MEMBER(model.max_shift_ev)), closed(0.0, 5.0), "",
          kFitted),
      key("library.preprocess.shift_step_ev", field(XASMAP_MEMBER(model.shift_step_ev)), positive(1.0), "",
          kFitted),
      key("library.preprocess.shift_penalty", field(XASMAP_MEMBER(model.shift_penalty)), closed(0.0, 100.0),
        "Prior against large offsets: a copy shifted by s ranks as if farther by\n"
        "shift_penalty x (median neighbour distance) x s / shift_step_ev, added in quadrature."),
      key("library.preprocess.min_coverage", field(XASMAP_MEMBER(model.preprocess.min_coverage)), positive(1.0),
        "The fraction of the grid (0, 1] a measured spectrum must cover to be judged.",
          kFitted),
      section("embedding", true, ""),
      key("embedding.method", choice(XASMAP_MEMBER(model.method), kEmbeddingKinds),
        "mds (classical, exact), lmds (Landmark MDS) or isomap (landmark Isomap).",
          kFitted),
      key("embedding.distance", choice(XASMAP_MEMBER(model.distance), kDistanceKinds),
        "Distance between preprocessed spectra: euclidean, correlation, derivative or wasserstein.\n"
        "correlation (shape only) was measured to work best (docs/validation.md).",
          kFitted),
      key("embedding.landmarks", field(XASMAP_MEMBER(model.landmarks)), closed(3, 100000),
        "Number of landmarks (lmds, isomap); must exceed estimate_dims.",
          kFitted),
      key("embedding.landmark_selection", choice(XASMAP_MEMBER(model.landmark_choice), kLandmarkChoices),
        "Landmark selection: maxmin (farthest point) or random.",
          kFitted),
      key("embedding.map_dims", field(XASMAP_MEMBER(model.map_dims)), closed(1, 10),
        "Dimensions of the map dashboards draw, and of the space used for estimation.",
          kFitted),
      key("embedding.estimate_dims", field(XASMAP_MEMBER(model.estimate_dims)), closed(1, 100), "",
          kFitted),
      key("embedding.isomap_neighbors", field(XASMAP_MEMBER(model.isomap_neighbors)), closed(2, 200),
        "Neighbours in the isomap kNN graph.",
          kFitted),
      key("embedding.seed", field(XASMAP_MEMBER(model.seed)),
        "Seed for random landmark selection.",
          kFitted),
      section("estimation", true, ""),
      key("estimation.neighbors", field(XASMAP_MEMBER(model.neighbors)), closed(1, 200),
        "Library neighbours an estimate is made from."),
      key("estimation.weighting", choice(XASMAP_MEMBER(model.weighting), kWeightings),
        "Continuous parameters: inverse_distance, or local_linear (a weighted linear fit along the\n"
        "neighbourhood's local_linear_dims leading directions; used for spectra that cover the whole\n"
        "grid, inverse_distance otherwise)."),
      key("estimation.local_linear_dims", field(XASMAP_MEMBER(model.local_linear_dims)), closed(1, 10), ""),
      key("estimation.report_neighbors", field(XASMAP_MEMBER(model.report_neighbors)), closed(0, 200),
        "Neighbours listed in each estimate."),
      key("estimation.novelty_threshold", field(XASMAP_MEMBER(model.novelty_threshold)), positive(1e6),
        "Novelty above this (distance to the nearest library spectrum over the library's median\n"
        "nearest-neighbour distance, noise-calibrated) flags a spectrum as outside the library."),
      key("estimation.probability_noise", field(XASMAP_MEMBER(model.probability_noise)), closed(0.0, 1e9),
        "Charge probabilities: P(charge) ~ exp(-(D2 - D2_best) / 2T), D2 the squared distance of the\n"
        "best library spectrum of that charge, with the temperature T = probability_noise x (the\n"
        "spectrum's noise per point) + probability_residual x (what the best match leaves unexplained\n"
        "beyond the noise) + probability_spacing x (the library's median neighbour distance)^2.\n"
        "68 % intervals of continuous parameters: sigma^2 = spread^2 + step^2 x (interval_spacing^2 +\n"
        "interval_residual^2 x novelty^2 + interval_noise^2 x noise^2), step the parameter's library\n"
        "grid step, noise the distance the spectrum's own noise adds, in library spacings. All five were fitted\n"
        "on a held-out calibration set (docs/validation.md; the intervals by the interval score of the\n"
        "central 68 % interval); refit them for another library."),
      key("estimation.probability_residual", field(XASMAP_MEMBER(model.probability_residual)), closed(0.0, 1e9), ""),
      key("estimation.probability_spacing", field(XASMAP_MEMBER(model.probability_spacing)), closed(0.0, 1e9), ""),
      key("estimation.interval_spacing", field(XASMAP_MEMBER(model.interval_spacing)), closed(0.0, 100.0), ""),
      key("estimation.interval_residual", field(XASMAP_MEMBER(model.interval_residual)), closed(0.0, 100.0), ""),
      key("estimation.interval_noise", field(XASMAP_MEMBER(model.interval_noise)), closed(0.0, 100.0), ""),
      key("estimation.exact_partial_rows", field(XASMAP_MEMBER(model.exact_partial_rows)), closed(0, 1e9),
        "A spectrum on part of the grid is placed by its approximate projection, whose candidates can\n"
        "miss its true neighbours (a clean 10Dq 1.8 eV spectrum on 638-655 eV was put at 0.9 eV). When\n"
        "the best candidate's novelty exceeds exact_partial_novelty, every library row (shifted copies\n"
        "included) is ranked exactly, if the library holds at most exact_partial_rows rows. 0 rows: never."),
      key("estimation.exact_partial_novelty", field(XASMAP_MEMBER(model.exact_partial_novelty)), closed(0.0, 1e6), ""),
      key("estimation.edge_step_fit", field(XASMAP_MEMBER(model.edge_step_fit)),
        "Measured spectra often rise to a higher level after the L3 and L2 edges (transitions to the\n"
        "continuum), which simulated library spectra do not. When true, that continuum (two arctangent\n"
        "steps, L3:L2 = 2:1, at the spectrum's L3 and L2 maxima) is fitted with each of the estimate's\n"
        "24 best candidates, removed when it is significant (3 standard errors), and the spectrum\n"
        "estimated again; estimates report its height as edge_step (docs/estimation.md, step 8). It\n"
        "costs 5-8 us a spectrum (docs/benchmarks.md); false for data whose continuum was removed before."),
      key("estimation.edge_step_width_ev", field(XASMAP_MEMBER(model.edge_step_width_ev)), closed(0.05, 5.0),
        "Half width (eV) of each arctangent step: the 2p core hole's lifetime and the instrument's\n"
        "resolution together, about 0.3-0.8 eV at the Mn L2,3 edges."),
      key("estimation.mixture", choice(XASMAP_MEMBER(estimation.mixture), kMixtureModes),
        "Mixed valence: auto fits each spectrum (and each pixel of a stack) as one charge or as a\n"
        "non-negative mixture of two, and publishes the charges' atom fractions and the mean valence with\n"
        "their standard deviations (docs/estimation.md, \"Mixtures\"); off publishes neither. Off by\n"
        "default while it costs about 0.27 ms a spectrum, 10 times the estimate (docs/benchmarks.md)."),
      section("calibration", true, ""),
      key("calibration.session_offset_ev", field(XASMAP_MEMBER(calibration.session_offset_ev)), closed(-5.0, 5.0),
        "The session's energy calibration offset (measured energy = true energy + offset; beamlines\n"
        "differ by up to about 1 eV). Each spectrum's own offset is then searched within\n"
        "+-library.preprocess.max_shift_ev of it. Give it (`xasmap calibrate STANDARD --charge 2`\n"
        "prints it), or name a standard measured this session and its charge below."),
      key("calibration.reference_file", field(XASMAP_MEMBER(calibration.reference_file)),
        "A standard measured this session (CSV, .xy or XDI), calibrated at start-up, e.g.\n"
        "/data/session/MnO.csv with reference_charge 2; empty: none."),
      key("calibration.reference_charge", field(XASMAP_MEMBER(calibration.reference_charge)), ""),
      key("calibration.track", choice(XASMAP_MEMBER(calibration.track), kOffsetTrackings),
        "The daemon also tracks the offset from the stream: the median whole offset of its last\n"
        "track_window estimates whose charge probability is at least track_min_confidence and that lie\n"
        "inside the library. apply: estimate on the tracked offset; report: publish it in metrics only;\n"
        "off: neither."),
      key("calibration.track_window", field(XASMAP_MEMBER(calibration.track_window)), closed(1, 100000), ""),
      key("calibration.track_min_samples", field(XASMAP_MEMBER(calibration.track_min_samples)), closed(1, 100000), ""),
      key("calibration.track_min_confidence", field(XASMAP_MEMBER(calibration.track_min_confidence)), closed(0.0, 1.0), ""),
      key("calibration.search_ev", field(XASMAP_MEMBER(calibration.search_ev)), closed(0.0, 3.0),
        "Until the offset is known (calibrated on reference_file, or tracked with track: apply from\n"
        "track_min_samples estimates), a spectrum may be off by more than max_shift_ev, and a charge\n"
        "read at the wrong offset can fit confidently (a Mn2+ spectrum 1 eV up reads as Mn3+). So\n"
        "meanwhile each spectrum (a stack: its mean spectrum) is estimated at session offsets\n"
        "max_shift_ev apart within +-search_ev of the start, at 1 + 2 floor(search_ev / max_shift_ev)\n"
        "times the cost (5 at the defaults). 0: session_offset_ev is known (xasmap calibrate says so)."),
      section("input", true, ""),
      key("input.endpoint", field(XASMAP_MEMBER(input.endpoint)),
        "Where newly acquired spectra come from."),
      key("input.pattern", choice(XASMAP_MEMBER(input.pattern), kInputPatterns),
        "sub (SUB socket on the acquisition's PUB), pull (PULL; several daemons share one PUSH feed), or\n"
        "router (acknowledged: senders' DEALERs connect, each message is answered to its sender once\n"
        "its estimate is published, and a sender resends what was not answered; needs bind: true)."),
      key("input.bind", field(XASMAP_MEMBER(input.bind)),
        "false: connect to the endpoint; true: bind it."),
      key("input.topic", field(XASMAP_MEMBER(input.topic)),
        "Topic (frame 0) of spectrum messages."),
      key("input.queue_capacity", field(XASMAP_MEMBER(input.queue_capacity)), closed(1, 10000000),
        "Messages held between the receiver and the workers."),
      key("input.overflow", choice(XASMAP_MEMBER(input.overflow), kOverflows),
        "When the queue is full: drop_oldest, drop_newest or block. Every drop is counted and reported."),
      key("input.max_message_bytes", field(XASMAP_MEMBER(input.max_message_bytes)), closed(1024, 4LL << 30),
        "Limits; a message over one is answered with error code too_large. 268435456 = 256 MiB.\n"
        "A msgpack array may also hold at most 64 x max_points numbers: send large stacks as bin."),
      key("input.max_points", field(XASMAP_MEMBER(input.max_points)), closed(16, 10000000), ""),
      key("input.max_stack_pixels", field(XASMAP_MEMBER(input.max_stack_pixels)), closed(1, 100000000), ""),
      key("input.workers", field(XASMAP_MEMBER(input.workers)), closed(0, 256),
        "Worker threads; 0 = one per hardware thread."),
      key("input.memory_budget_bytes", field(XASMAP_MEMBER(input.memory_budget_bytes)), closed(1LL << 20, 1LL << 40),
        "Bytes held at once for messages: the input queue, stacks being computed, and results in the\n"
        "outbox and in ZeroMQ's send queue (a subscriber that does not read holds them). When it is full,\n"
        "overflow decides as for a full queue. At least max_message_bytes. 1073741824 = 1 GiB."),
      key("input.dedup_ids", field(XASMAP_MEMBER(input.dedup_ids)), closed(0, 100000000),
        "pattern router: ids of answered messages remembered, so that a resend of one is answered\n"
        "'duplicate' instead of being estimated again (about 50-100 bytes each)."),
      section("input.curve", false,
        "CURVE authentication and encryption (docs/operations.md); off while secret_key_file is empty.\n"
        "Key files come from `xasmap keygen --out NAME` (NAME.key secret, NAME.pub public), never the\n"
        "YAML. For the input, authorized_keys_file holds the publisher's public key: when the input\n"
        "connects (bind: false) the one key of the acquisition's PUB; when it binds, the senders admitted."),
      key("input.curve.secret_key_file", field(XASMAP_MEMBER(input.curve.secret_key_file)), ""),
      key("input.curve.authorized_keys_file", field(XASMAP_MEMBER(input.curve.authorized_keys_file)), ""),
      section("output", true, ""),
      key("output.endpoint", field(XASMAP_MEMBER(output.endpoint)),
        "Where estimates, errors and metrics are published (PUB)."),
      key("output.bind", field(XASMAP_MEMBER(output.bind)),
        "true: bind the endpoint; false: connect to it (for example to a proxy's XSUB)."),
      key("output.send_hwm", field(XASMAP_MEMBER(output.send_hwm)), closed(0, 100000000),
        "ZeroMQ send high-water mark (messages); 0 = unlimited."),
      key("output.wait_for_subscriber", field(XASMAP_MEMBER(output.wait_for_subscriber)),
        "true: read no input while nothing is subscribed to the output (at start-up, until the\n"
        "subscribers have connected, and whenever the last one leaves), so that no result is published\n"
        "to nobody. For subscribers that must see every result, with senders that wait (input.pattern\n"
        "router or pull); a PUB sender's messages are lost upstream meanwhile."),
      key("output.nexus_file", field(XASMAP_MEMBER(output.nexus_file)),
        "Also append each stack's maps to this NeXus/HDF5 file, one NXentry per stack (docs/files.md);\n"
        "empty = off. Written by a thread of its own; a stack that finds 4 waiting is not written\n"
        "(logged, and counted in status). Relative to this file's folder."),
      section("output.curve", false,
        "CURVE: with secret_key_file set the results are encrypted; subscribers need this side's public\n"
        "key. authorized_keys_file (optional when bound) limits them to the keys it lists."),
      key("output.curve.secret_key_file", field(XASMAP_MEMBER(output.curve.secret_key_file)), ""),
      key("output.curve.authorized_keys_file", field(XASMAP_MEMBER(output.curve.authorized_keys_file)), ""),
      section("control", true, ""),
      key("control.endpoint", field(XASMAP_MEMBER(control.endpoint)),
        "Request/reply control socket (REP), always bound. Without curve it has no authentication: keep\n"
        "it on loopback or ipc:// (a wildcard host such as tcp://*:5557 without curve is warned about)."),
      key("control.max_request_bytes", field(XASMAP_MEMBER(control.max_request_bytes)), closed(64, 16LL << 20),
        "Requests longer than this are refused (error naming this key); so are requests nested more\n"
        "than 32 levels deep and requests that repeat a key."),
      section("control.curve", false,
        "CURVE: only the clients whose public keys authorized_keys_file lists may send commands\n"
        "(xasmap status --curve-key CLIENT.key --server-key SERVER.pub). Refusals are counted in status."),
      key("control.curve.secret_key_file", field(XASMAP_MEMBER(control.curve.secret_key_file)), ""),
      key("control.curve.authorized_keys_file", field(XASMAP_MEMBER(control.curve.authorized_keys_file)), ""),
      section("metrics", true, ""),
      key("metrics.interval_s", field(XASMAP_MEMBER(metrics.interval_s)), closed(0.01, 3600.0),
        "Seconds between metrics messages."),
      key("metrics.http_endpoint", field(XASMAP_MEMBER(metrics.http_endpoint)),
        "Serve Prometheus's text format at http://HOST:PORT/metrics (docs/operations.md, Monitoring);\n"
        "empty = off. Keep it on loopback (127.0.0.1:9464): the page has no authentication. Port 0 takes\n"
        "a free port, logged and reported by status (metrics_http)."),
      section("logging", true, ""),
      key("logging.level", choice(XASMAP_MEMBER(logging.level), kLogLevels),
        "trace, debug, info, warn, error, critical or off."),
      key("logging.format", choice(XASMAP_MEMBER(logging.format), kLogFormats),
        "text, or json (one JSON object per line, for log shippers)."),
      key("logging.pattern", field(XASMAP_MEMBER(logging.pattern)),
        "spdlog pattern for the text format."),
      key("logging.file", field(XASMAP_MEMBER(logging.file)),
        "Log file; empty = standard error."),
  };
}

#undef XASMAP_MEMBER

}  // namespace

const std::vector<Entry>& entries() {
  static const std::vector<Entry> kEntries = build_entries();
  return kEntries;
}

std::string_view file_header() {
  return
        "xasmapd configuration: every key, with its default.\n"
        "\n"
        "Every key is optional: a missing key takes the default shown here. Unknown keys, wrong types,\n"
        "values out of range and malformed endpoints stop start-up with one line naming the file, line,\n"
        "column and key path. Check a file without starting the daemon:\n"
        "    xasmapd --check-config FILE\n"
        "Relative paths resolve against the folder of this file. Energies are in eV, times in seconds.\n"
        "Every endpoint defaults to loopback; see docs/operations.md before opening one to a network.";
}

// ---------------------------------------------------------------------------------------------
// Entries, values and what they accept

std::string_view Entry::name() const {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

std::string_view Entry::parent() const {
  const auto dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string_view() : path.substr(0, dot);
}

int Entry::depth() const { return static_cast<int>(std::count(path.begin(), path.end(), '.')); }

std::string number_text(double v) {
  if (!std::isfinite(v)) return std::isnan(v) ? ".nan" : (v > 0 ? ".inf" : "-.inf");
  char buffer[32];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  assert(ec == std::errc());
  std::string s(buffer, end);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string scalar_text(const std::string& s) {
  YAML::Emitter out;
  out << s;
  return out.c_str();
}

namespace {

std::string sweep_text(const Sweep& s) {
  if (s.list.size() == 1) return number_text(s.list.front());
  if (!s.list.empty()) {
    std::string t = "[";
    for (std::size_t i = 0; i < s.list.size(); ++i) t += (i ? ", " : "") + number_text(s.list[i]);
    return t + "]";
  }
  return "{start: " + number_text(s.start) + ", stop: " + number_text(s.stop) + ", step: " + number_text(s.step) + "}";
}

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

}  // namespace

std::string value_text(const Entry& e, const Config& config) {
  assert(e.field);
  Config& c = const_cast<Config&>(config);  // the members are only read
  return std::visit(
      Overloaded{
          [&](Member<double> m) { return number_text(m(c)); },
          [&](Member<int> m) { return std::to_string(m(c)); },
          [&](Member<long long> m) { return std::to_string(m(c)); },
          [&](Member<unsigned long> m) { return std::to_string(m(c)); },
          [&](Member<bool> m) { return std::string(m(c) ? "true" : "false"); },
          [&](Member<std::string> m) { return scalar_text(m(c)); },
          [&](Member<std::filesystem::path> m) { return scalar_text(m(c).string()); },
          [&](Member<Sweep> m) { return sweep_text(m(c)); },
          [&](Member<std::optional<double>> m) { return m(c) ? number_text(*m(c)) : std::string("~"); },
          [&](Member<std::vector<std::string>> m) {
            std::string t = "[";
            const auto& v = m(c);
            for (std::size_t i = 0; i < v.size(); ++i) t += (i ? ", " : "") + scalar_text(v[i]);
            return t + "]";
          },
          [&](Member<std::map<std::string, double>> m) {
            std::string t = "{";
            bool first = true;
            for (const auto& [k, v] : m(c)) {
              t += (first ? "" : ", ") + scalar_text(k) + ": " + number_text(v);
              first = false;
            }
            return t + "}";
          },
          [&](const Choice& ch) { return std::string(ch.names[ch.get(c)]); },
      },
      *e.field);
}

std::string accepts(const Entry& e) {
  if (!e.field) return "a map of keys";
  const auto range = [&](bool integer) {
    const auto n = [&](double v) {
      return integer ? std::to_string(static_cast<long long>(v)) : number_text(v);
    };
    switch (e.bounds.kind) {
      case Bounds::kClosed:
        return " in [" + n(e.bounds.lo) + ", " + n(e.bounds.hi) + "]";
      case Bounds::kPositive:
        return " in (0, " + n(e.bounds.hi) + "]";
      case Bounds::kAny:
        break;
    }
    return std::string();
  };
  return std::visit(
      Overloaded{
          [&](Member<double>) { return "a number" + range(false); },
          [&](Member<int>) { return "an integer" + range(true); },
          [&](Member<long long>) { return "an integer" + range(true); },
          [&](Member<unsigned long>) { return "a non-negative integer" + range(true); },
          [&](Member<bool>) { return std::string("true or false"); },
          [&](Member<std::string>) { return std::string("a string"); },
          [&](Member<std::filesystem::path>) { return std::string("a path (empty: none)"); },
          [&](Member<Sweep>) { return "a number, a list of numbers or {start, stop, step}" + range(false); },
          [&](Member<std::optional<double>>) { return "a number" + range(false) + ", or ~ (none)"; },
          [&](Member<std::vector<std::string>>) { return std::string("a list of strings"); },
          [&](Member<std::map<std::string, double>>) { return "a map of names to numbers" + range(false); },
          [&](const Choice& ch) {
            std::string t = "one of ";
            for (std::size_t i = 0; i < ch.names.size(); ++i) t += (i ? ", " : "") + std::string(ch.names[i]);
            return t;
          },
      },
      *e.field);
}

}  // namespace xasmap::config::detail
