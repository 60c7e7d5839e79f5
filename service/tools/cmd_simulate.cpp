// xasmap simulate: one multiplet spectrum.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "app_config.hpp"
#include "commands.hpp"
#include "library_builder.hpp"
#include "spectrum_files.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/multiplet.hpp"
#include "xasmap/core/ttmult.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kSimulateOptions = {
    {"ion", true, "ION", "3d ion with its charge, e.g. Mn3+ (required, unless --ttmult)"},
    {"ttmult", true, "FILE.ban", "read a ttmult/CTM4XAS charge-transfer input (.ban, Oh or D4h, with its .rcg or .rcn31_out beside it)"},
    {"hartree-fock", true, "FILE", "with --ttmult: the .rcg or .rcn31_out to read instead of the one beside the .ban"},
    {"tendq", true, "EV", "crystal-field splitting 10Dq in eV (default 0)"},
    {"symmetry", true, "SYM", "Oh or D4h (default Oh; D4h when --ds or --dt is given)"},
    {"ds", true, "EV", "tetragonal Ds in eV (default 0)"},
    {"dt", true, "EV", "tetragonal Dt in eV (default 0)"},
    {"slater-scale", true, "X", "scale of all Slater integrals (default 0.8)"},
    {"slater-scale-dd", true, "X", "scale of F2/F4(dd) (default: --slater-scale)"},
    {"slater-scale-pd", true, "X", "scale of F2(pd), G1/G3(pd) (default: --slater-scale)"},
    {"zeta-scale", true, "X", "scale of the spin-orbit constants (default 1.0)"},
    {"exchange-field", true, "EV", "exchange field M on the 3d spins, H = 2M Sz (default 0)"},
    {"temperature", true, "K", "temperature of the initial-state Boltzmann weights (default 300)"},
    {"set", true, "NAME=V,...", "override multiplet parameters after scaling (eV)"},
    {"configurations", true, "N", "1 crystal field; 2 adds 3d^(n+1)L, 3 also 3d^(n+2)L^2 (default 1; 2 with --delta)"},
    {"delta", true, "EV", "charge-transfer energy: E(3d^(n+1)L) - E(3d^n), configuration averages"},
    {"udd", true, "EV", "3d-3d Coulomb U (final-state delta' = delta + udd - upd; default 0)"},
    {"upd", true, "EV", "2p-3d core-hole potential (default 0)"},
    {"veg", true, "EV", "hopping between e_g 3d and ligand orbitals (default 0)"},
    {"vt2g", true, "EV", "hopping between t2g 3d and ligand orbitals (default 0)"},
    {"ligand-tendq", true, "EV", "crystal field of the ligand orbitals (default 0)"},
    {"vb1", true, "EV", "D4h: hopping of b1 (x2-y2) (default --veg)"},
    {"va1", true, "EV", "D4h: hopping of a1 (z2) (default --veg)"},
    {"vb2", true, "EV", "D4h: hopping of b2 (xy) (default --vt2g)"},
    {"ve", true, "EV", "D4h: hopping of e (xz, yz) (default --vt2g)"},
    {"krylov-min-dimension", true, "N", "final blocks this large or larger are solved by Lanczos (default 1000; 0 all)"},
    {"krylov-resolution", true, "EV", "Lorentzian FWHM at which Lanczos checks its spectrum (default 0.2)"},
    {"krylov-tolerance", true, "X", "Lanczos stops when that spectrum moves by at most X of its maximum (default 1e-3)"},
    {"ground-state-json", false, "", "print the ground state's energy and configuration weights as JSON, and exit"},
    {"lorentz-fwhm", true, "EV", "Lorentzian FWHM of both edges (eV)"},
    {"lorentz-fwhm-l3", true, "EV", "Lorentzian FWHM of a 2p3/2 core hole (default 0.4)"},
    {"lorentz-fwhm-l2", true, "EV", "Lorentzian FWHM of a 2p1/2 core hole (default 0.8)"},
    {"lifetime", true, "RULE", "core_hole or split_energy (CTM4XAS's) (default core_hole)"},
    {"gauss-fwhm", true, "EV", "Gaussian (instrument) FWHM, 0 = none (default 0.3)"},
    {"polarization", true, "POL", "isotropic, x, y, z, left or right (default isotropic)"},
    {"energy", true, "AXIS", "relative, absolute or ttmult (default relative; ttmult with --ttmult)"},
    {"offset", true, "EV", "absolute offset (default: library.simulate.energy_offset_ev)"},
    {"config", true, "FILE", "config whose energy offsets --energy absolute uses"},
    {"emin", true, "EV", "first energy (default: lowest stick - 5 eV)"},
    {"emax", true, "EV", "last energy (default: highest stick + 5 eV)"},
    {"estep", true, "EV", "energy step (default 0.05)"},
    {"sticks", true, "FILE", "also write the sticks (energy_eV,intensity) to FILE"},
    {"out", true, "FILE", "write the spectrum to FILE instead of standard output"},
    {"verbose", false, "", "print the solver's diagnostics to standard error"},
};

namespace {

double positive(const CliArgs& args, const std::string& name, double fallback, bool allow_zero) {
  const double v = args.number(name, fallback);
  if (v < 0.0 || (!allow_zero && v == 0.0)) {
    throw UsageError("--" + name + " must be " + (allow_zero ? ">= 0" : "> 0"));
  }
  return v;
}

void apply_set(MultipletParameters& p, const std::string& list) {
  std::istringstream in(list);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw UsageError("--set expects NAME=VALUE, got '" + item + "'");
    const std::string name = item.substr(0, eq);
    char* end = nullptr;
    const std::string text = item.substr(eq + 1);
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(value)) {
      throw UsageError("--set " + name + " needs a finite number, got '" + text + "'");
    }
    try {
      set_parameter(p, name, value);
    } catch (const Error& e) {
      throw UsageError(std::string("--set: ") + e.what());
    }
  }
}

}  // namespace

int run_simulate(const CliArgs& args) {
  if (!args.positionals().empty()) {
    throw UsageError("unexpected argument '" + args.positionals().front() + "'");
  }
  const AtomicTable table = load_atomic_table();
  // A ttmult input gives the whole model; the options that set one are refused beside it.
  std::optional<TtmultModel> tt;
  if (const auto file = args.value("ttmult")) {
    for (const char* key : {"ion", "tendq", "symmetry", "ds", "dt", "slater-scale", "slater-scale-dd",
                            "slater-scale-pd", "zeta-scale", "exchange-field", "set", "configurations",
                            "delta", "udd", "upd", "veg", "vt2g", "ligand-tendq", "vb1", "va1", "vb2", "ve"}) {
      if (args.has(key)) throw UsageError(std::string("--") + key + " cannot be given with --ttmult: the .ban file sets the model");
    }
    tt = read_ttmult(*file, table, args.value("hartree-fock").value_or(""));
  } else if (args.has("hartree-fock")) {
    throw UsageError("--hartree-fock needs --ttmult");
  }
  const auto ion_text = args.value("ion");
  if (!tt && !ion_text) throw UsageError("simulate needs --ion, e.g. --ion Mn3+ (or --ttmult FILE.ban)");
  const Ion ion = tt ? tt->ion : parse_ion(*ion_text);

  ParameterScaling scaling;
  scaling.slater_dd = scaling.slater_pd = positive(args, "slater-scale", 0.8, true);
  scaling.slater_dd = positive(args, "slater-scale-dd", scaling.slater_dd, true);
  scaling.slater_pd = positive(args, "slater-scale-pd", scaling.slater_pd, true);
  scaling.zeta = positive(args, "zeta-scale", 1.0, true);
  MultipletParameters p = make_parameters(ion, table.lookup(ion), scaling);
  p.tendq = args.number("tendq", 0.0);
  p.ds = args.number("ds", 0.0);
  p.dt = args.number("dt", 0.0);
  const std::string symmetry = args.value("symmetry").value_or(
      (args.has("ds") || args.has("dt")) ? "D4h" : "Oh");
  if (symmetry == "Oh") {
    p.symmetry = CrystalSymmetry::kOh;
    if (p.ds != 0.0 || p.dt != 0.0) throw UsageError("--ds and --dt need --symmetry D4h");
  } else if (symmetry == "D4h") {
    p.symmetry = CrystalSymmetry::kD4h;
  } else {
    throw UsageError("--symmetry must be Oh or D4h, got '" + symmetry + "'");
  }
  p.exchange_field = args.number("exchange-field", 0.0);
  p.temperature_k = positive(args, "temperature", 300.0, true);
  const std::string pol = args.value("polarization").value_or("isotropic");
  const std::map<std::string, BeamPolarization> kPolarizations{
      {"isotropic", BeamPolarization::kIsotropic}, {"x", BeamPolarization::kX},
      {"y", BeamPolarization::kY},                 {"z", BeamPolarization::kZ},
      {"left", BeamPolarization::kLeft},           {"right", BeamPolarization::kRight}};
  const auto polarization = kPolarizations.find(pol);
  if (polarization == kPolarizations.end()) {
    throw UsageError("--polarization must be isotropic, x, y, z, left or right, got '" + pol + "'");
  }
  p.polarization = polarization->second;
  if (const auto list = args.value("set")) apply_set(p, *list);
  ChargeTransferParameters& ct = p.charge_transfer;
  const double configurations = args.number("configurations", args.has("delta") ? 2.0 : 1.0);
  if (configurations != 1.0 && configurations != 2.0 && configurations != 3.0) {
    throw UsageError("--configurations must be 1, 2 or 3");
  }
  ct.configurations = static_cast<int>(configurations);
  for (const char* key : {"delta", "udd", "upd", "veg", "vt2g", "ligand-tendq", "vb1", "va1", "vb2", "ve"}) {
    if (args.has(key) && ct.configurations == 1) {
      throw UsageError(std::string("--") + key + " needs charge transfer: --configurations 2 or 3 (or --delta)");
    }
  }
  ct.delta = args.number("delta", 0.0);
  ct.udd = args.number("udd", 0.0);
  ct.upd = args.number("upd", 0.0);
  ct.v_eg = args.number("veg", 0.0);
  ct.v_t2g = args.number("vt2g", 0.0);
  ct.ligand_tendq = args.number("ligand-tendq", 0.0);
  for (const auto& [key, field] : {std::pair{"vb1", &ct.v_b1}, {"va1", &ct.v_a1}, {"vb2", &ct.v_b2}, {"ve", &ct.v_e}}) {
    if (!args.has(key)) continue;
    if (p.symmetry != CrystalSymmetry::kD4h) throw UsageError(std::string("--") + key + " needs --symmetry D4h");
    *field = args.number(key, 0.0);
  }
  // As ttmult does: the configurations with a transferred electron take the Hartree-Fock terms of
  // the ion one charge lower (one more 3d electron), when the atomic table has it.
  std::string transferred_from = "none";
  if (ct.configurations > 1) ct.transferred = transferred_terms_of(ion, table, scaling, &transferred_from);
  if (tt) {
    const BeamPolarization asked = p.polarization;
    p = tt->parameters;
    p.polarization = asked;
    if (args.has("temperature")) p.temperature_k = positive(args, "temperature", 0.0, true);
    transferred_from = tt->hartree_fock.string();
  }
  const bool ttmult_broadening_default = tt && !args.has("lorentz-fwhm") && !args.has("lorentz-fwhm-l3") &&
                                         !args.has("lorentz-fwhm-l2") && !args.has("gauss-fwhm") &&
                                         !args.has("lifetime");

  Broadening b;
  b.lorentz_l3_ev = b.lorentz_l2_ev = positive(args, "lorentz-fwhm", 0.0, true);
  if (!args.has("lorentz-fwhm")) {
    b.lorentz_l3_ev = 0.4;
    b.lorentz_l2_ev = 0.8;
  }
  b.lorentz_l3_ev = positive(args, "lorentz-fwhm-l3", b.lorentz_l3_ev, false);
  b.lorentz_l2_ev = positive(args, "lorentz-fwhm-l2", b.lorentz_l2_ev, false);
  b.gauss_ev = positive(args, "gauss-fwhm", 0.3, true);
  const std::string lifetime = args.value("lifetime").value_or("core_hole");
  if (lifetime == "core_hole") {
    b.rule = LifetimeRule::kCoreHoleCharacter;
  } else if (lifetime == "split_energy") {
    b.rule = LifetimeRule::kSplitEnergy;
  } else {
    throw UsageError("--lifetime must be core_hole or split_energy, got '" + lifetime + "'");
  }

  const auto started = std::chrono::steady_clock::now();
  SolverOptions solver;
  solver.ground_state_only = args.has("ground-state-json");
  const double krylov_min = positive(args, "krylov-min-dimension", solver.krylov_min_dimension, true);
  if (krylov_min != std::floor(krylov_min) || krylov_min > 1e9) {
    throw UsageError("--krylov-min-dimension must be a whole number of determinants");
  }
  solver.krylov_min_dimension = static_cast<int>(krylov_min);
  solver.krylov_resolution_ev = positive(args, "krylov-resolution", solver.krylov_resolution_ev, false);
  solver.krylov_tolerance = positive(args, "krylov-tolerance", solver.krylov_tolerance, false);
  const StickSpectrum sticks = compute_sticks(p, solver);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (args.has("ground-state-json")) {
    // The ground state on ttmult's scale: its energy from the first configuration's average.
    const MultipletDiagnostics& d = sticks.diagnostics;
    std::printf("{\"energy_ev\": %.9f, \"weights\": [", d.ground_energy_from_average_ev);
    for (std::size_t k = 0; k < d.ground_weights.size(); ++k) std::printf("%s%.9f", k ? ", " : "", d.ground_weights[k]);
    std::printf("]}\n");
    return 0;
  }

  const std::string axis = args.value("energy").value_or(tt ? "ttmult" : "relative");
  double offset = 0.0;
  if (axis == "ttmult") {
    if (!tt) throw UsageError("--energy ttmult needs --ttmult");
    if (args.has("offset")) throw UsageError("--offset needs --energy absolute");
    offset = ttmult_energy_offset(sticks.diagnostics);
  } else if (axis == "absolute") {
    if (args.has("offset")) {
      offset = args.number("offset", 0.0);
    } else {
      const config::Config cfg = config_from_args(args);
      const auto& offsets = cfg.library.simulate.energy_offset_ev;
      const auto it = offsets.find(ion.name());
      if (it == offsets.end()) {
        throw UsageError("no energy offset for " + ion.name() + " in " + cfg.source_file.string() +
                         ": give --offset EV or add it to library.simulate.energy_offset_ev");
      }
      offset = it->second;
    }
  } else if (axis != "relative") {
    throw UsageError("--energy must be relative, absolute or ttmult, got '" + axis + "'");
  } else if (args.has("offset")) {
    throw UsageError("--offset needs --energy absolute");
  }

  double lo = sticks.sticks.empty() ? -10.0 : sticks.sticks.front().energy_ev;
  double hi = sticks.sticks.empty() ? 10.0 : sticks.sticks.back().energy_ev;
  // On ttmult's axis, the grid of its .xy files: 0-60 eV in 1200 points.
  const bool ttmult_axis = axis == "ttmult";
  const double emin = args.number("emin", ttmult_axis ? 0.0 : std::floor(lo + offset - 5.0));
  const double emax = args.number("emax", ttmult_axis ? 60.0 : std::ceil(hi + offset + 5.0));
  const double estep = positive(args, "estep", ttmult_axis ? 60.0 / 1199.0 : 0.05, false);
  if (ttmult_broadening_default) {
    b = ttmult_broadening(ttmult_energy_offset(sticks.diagnostics));
  }
  if (!(emax > emin)) throw UsageError("--emax must be above --emin");
  const auto n = static_cast<Eigen::Index>(std::floor((emax - emin) / estep + 1e-9)) + 1;
  if (n > 10'000'000) throw UsageError("--emin/--emax/--estep give more than 10^7 points");
  Eigen::VectorXd energy(n);
  for (Eigen::Index i = 0; i < n; ++i) energy[i] = emin + static_cast<double>(i) * estep;
  const Eigen::VectorXd intensity = broaden(sticks, b, energy, offset);

  if (const auto file = args.value("sticks")) {
    Eigen::VectorXd se(static_cast<Eigen::Index>(sticks.sticks.size()));
    Eigen::VectorXd si(se.size());
    for (Eigen::Index i = 0; i < se.size(); ++i) {
      se[i] = sticks.sticks[static_cast<std::size_t>(i)].energy_ev + offset;
      si[i] = sticks.sticks[static_cast<std::size_t>(i)].intensity;
    }
    write_file_or_stdout(*file, spectrum_csv(se, si));
  }
  write_file_or_stdout(args.value("out"), spectrum_csv(energy, intensity));

  if (args.has("verbose")) {
    const MultipletDiagnostics& d = sticks.diagnostics;
    std::fprintf(stderr,
                 "%s 10Dq %.3f eV: initial dim %d, final dim %d, ground E %.6f eV (degeneracy %d, "
                 "<S^2> %.4f), %zu sticks, max residual %.2e, max asymmetry %.2e, L3/L2 split "
                 "%.3f eV, %.3f s\n",
                 ion.name().c_str(), p.tendq, d.initial_dimension, d.final_dimension,
                 d.ground_energy_ev, d.ground_degeneracy, d.ground_spin_squared,
                 sticks.sticks.size(), d.max_residual, d.max_asymmetry,
                 l3_l2_split(sticks) + offset, seconds);
    if (ct.configurations > 1) {
      std::fprintf(stderr, "charge transfer: %d configurations, ground-state weights", ct.configurations);
      for (const double w : d.ground_weights) std::fprintf(stderr, " %.5f", w);
      std::fprintf(stderr, ", ground %.6f eV from the 3d^%d average; transferred terms from %s\n",
                   d.ground_energy_from_average_ev, p.n3d, transferred_from.c_str());
    }
    std::fprintf(stderr, "initial states with a Boltzmann weight: %d; final blocks:", d.weighted_initial_states);
    for (std::size_t blk = 0; blk < d.final_block_sizes.size(); ++blk) {
      const int steps = blk < d.lanczos_steps.size() ? d.lanczos_steps[blk] : 0;
      if (steps > 0) {
        std::fprintf(stderr, " %d (Lanczos, up to %d steps)", d.final_block_sizes[blk], steps);
      } else {
        std::fprintf(stderr, " %d", d.final_block_sizes[blk]);
      }
    }
    std::fprintf(stderr, "; last change of a Lanczos spectrum %.1e\n", d.lanczos_change);
  }
  return 0;
}

}  // namespace xasmap::service
