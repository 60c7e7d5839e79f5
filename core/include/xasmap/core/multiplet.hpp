#pragma once
// Crystal-field multiplet simulator for 2p -> 3d (L2,3) X-ray absorption of 3d ions.
//
// Model: single-configuration ionic crystal-field multiplet theory (de Groot et al., PRB 42, 5459
// (1990); Stavitski & de Groot, Micron 41, 687 (2010)). The initial state is 2p6 3d^n and the final
// state 2p5 3d^(n+1), each in its full Slater-determinant space. The Hamiltonian holds 3d-3d Coulomb
// (F0, F2, F4), 2p-3d Coulomb (F0, F2) and exchange (G1, G3) built from Gaunt coefficients,
// spin-orbit coupling of 3d and 2p, an Oh or D4h crystal field on 3d, and an optional exchange field
// along z on the 3d spins. docs/simulator.md states every convention.
//
// Symmetry: in Oh and D4h (quantisation axis along C4) with spin-orbit coupling, 2*Jz mod 8 is
// conserved, so each Hamiltonian splits into four blocks that are diagonalised separately.

#include <Eigen/Core>
#include <limits>
#include <string>
#include <vector>

namespace xasmap {

enum class CrystalSymmetry { kOh, kD4h };

// Beam polarisation. kIsotropic averages x, y and z; kLeft and kRight are the spherical
// components q = +1 and q = -1 of the dipole operator along z (photon helicity +1 and -1 for a beam
// along +z).
enum class BeamPolarization { kIsotropic, kX, kY, kZ, kLeft, kRight };

// The atomic terms of the configurations with transferred electrons (3d^(n+1)L, 2p5 3d^(n+2)L; the
// third configuration takes them too), in eV after scaling. NaN: those of configuration 1.
// ttmult takes them from the ion one charge lower (the one with one more 3d electron), as
// make_charge_transfer_terms() does.
struct TransferredTerms {
  static constexpr double kSame = std::numeric_limits<double>::quiet_NaN();
  double f2dd_initial = kSame, f4dd_initial = kSame, zeta3d_initial = kSame;
  double f2dd_final = kSame, f4dd_final = kSame, f2pd = kSame, g1pd = kSame, g3pd = kSame;
  double zeta3d_final = kSame, zeta2p = kSame;
};

// Charge transfer (issue #14): the initial state 2p6 3d^n mixes with 2p6 3d^(n+1)L (and
// 3d^(n+2)L^2), the final state 2p5 3d^(n+1) with 2p5 3d^(n+2)L (...), L a hole in a ligand shell of
// ten spin-orbitals that transform like the 3d ones and carry no Coulomb terms. docs/simulator.md
// states the conventions.
struct ChargeTransferParameters {
  int configurations = 1;  // 1: the crystal-field model; 2: + 3d^(n+1)L; 3: + 3d^(n+2)L^2
  // Configuration energies, as differences of configuration-average energies (the average of the
  // Hamiltonian without hopping over all of a configuration's determinants): 3d^(n+1)L lies delta
  // above 3d^n, and 3d^(n+2)L^2 at 2 delta + udd. In the final state the core hole pulls the 3d
  // level down by upd: delta' = delta + udd - upd takes delta's place (ttmult's EG2 = delta,
  // EF2 = delta').
  double delta = 0, udd = 0, upd = 0;
  // Hopping between a 3d orbital and the ligand orbital of its symmetry (Oh: e_g, t2g), the same in
  // both states: H = sum_g v_g (d+_g L_g + L+_g d_g). In D4h each of b1 (x2-y2), a1 (z2), b2 (xy)
  // and e (xz, yz) may have its own; NaN takes v_eg (b1, a1) or v_t2g (b2, e). Only with D4h.
  double v_eg = 0, v_t2g = 0;
  double v_b1 = std::numeric_limits<double>::quiet_NaN(), v_a1 = std::numeric_limits<double>::quiet_NaN();
  double v_b2 = std::numeric_limits<double>::quiet_NaN(), v_e = std::numeric_limits<double>::quiet_NaN();
  // Crystal field of the ligand orbitals: e_g at +0.6, t2g at -0.4 of it (ttmult has none).
  double ligand_tendq = 0;
  TransferredTerms transferred;
};

// Every parameter of one calculation, in eV, already scaled. make_parameters() fills it from the
// Hartree-Fock table with the usual scaling; any field may be overridden afterwards.
struct MultipletParameters {
  int n3d = 5;  // 3d electrons in the initial state, 0..9

  // Initial state 2p6 3d^n.
  double f0dd_initial = 0, f2dd_initial = 0, f4dd_initial = 0, zeta3d_initial = 0;
  // Final state 2p5 3d^(n+1).
  double f0dd_final = 0, f2dd_final = 0, f4dd_final = 0;
  double f0pd = 0, f2pd = 0, g1pd = 0, g3pd = 0;
  double zeta3d_final = 0, zeta2p = 0;

  // Crystal field on 3d, the same in both states. Oh: e_g at +0.6*10Dq, t2g at -0.4*10Dq.
  // D4h (standard definitions, e.g. Ballhausen): b1 (x2-y2) = 6Dq + 2Ds - Dt, a1 (z2) = 6Dq - 2Ds
  // - 6Dt, b2 (xy) = -4Dq + 2Ds - Dt, e (xz, yz) = -4Dq - Ds + 4Dt.
  CrystalSymmetry symmetry = CrystalSymmetry::kOh;
  double tendq = 0, ds = 0, dt = 0;
  // Exchange field on the 3d spins: H = 2 * exchange_field * Sz(3d), in both states.
  double exchange_field = 0;

  // Boltzmann weights of the initial states. Levels within 0.1 meV of the lowest (the ground
  // manifold) always get weight 1; others exp(-dE / kT), which is 0 at T = 0.
  double temperature_k = 0;
  BeamPolarization polarization = BeamPolarization::kIsotropic;

  ChargeTransferParameters charge_transfer;
};

// Scaling applied to raw Hartree-Fock values (CTM4XAS's "100%" is 0.8 on every Slater integral
// and 1.0 on spin-orbit).
struct ParameterScaling {
  double slater_dd = 0.8;  // F2, F4 (dd) in both states
  double slater_pd = 0.8;  // F2 (pd), G1, G3
  double zeta = 1.0;       // zeta(3d) in both states and zeta(2p)
};

struct HartreeFockValues;
struct Ion;
class AtomicTable;
MultipletParameters make_parameters(const Ion& ion, const HartreeFockValues& hf,
                                    const ParameterScaling& scaling);

// The transferred configurations' terms from the Hartree-Fock values of the ion one charge lower
// (`lower`: e.g. Ni+ for Ni2+), scaled as make_parameters() scales.
TransferredTerms make_transferred_terms(const HartreeFockValues& lower, const ParameterScaling& scaling);

// The same for `ion`, as ttmult takes them: from the table's ion one charge lower. `from` tells
// whose they are; with no such ion in the table (e.g. Mn+), NaN terms (the ion's own) and a `from`
// that says so.
TransferredTerms transferred_terms_of(const Ion& ion, const AtomicTable& table, const ParameterScaling& scaling,
                                      std::string* from = nullptr);

// Names of the numeric fields of MultipletParameters that set_parameter() accepts, in order:
// f0dd_initial, f2dd_initial, f4dd_initial, zeta3d_initial, f0dd_final, f2dd_final, f4dd_final,
// f0pd, f2pd, g1pd, g3pd, zeta3d_final, zeta2p, tendq, ds, dt, exchange_field, temperature_k.
const std::vector<std::string>& multiplet_parameter_names();

// Sets one field by name (eV, or K for temperature_k). Throws xasmap::Error for an unknown name,
// suggesting the closest one.
void set_parameter(MultipletParameters& p, const std::string& name, double value);

struct Stick {
  double energy_ev;  // E_f - E_g on the relative scale (docs/simulator.md)
  double intensity;  // Boltzmann-weighted squared dipole matrix element
  // 2p3/2 character of the final state's core hole, in [0, 1]: the expectation of the projector
  // onto j = 3/2 of the 2p hole, (2/3)(1 + <l.s>_hole) (1 for a pure L3 hole, 0 for pure L2).
  // NaN when unknown (sticks not computed by compute_sticks); merged sticks carry the
  // intensity-weighted mean.
  double j32_weight = std::numeric_limits<double>::quiet_NaN();
};

// Checks of one calculation, all from the solver itself.
struct MultipletDiagnostics {
  int initial_dimension = 0;
  int final_dimension = 0;
  std::vector<int> initial_block_sizes;
  std::vector<int> final_block_sizes;
  double max_asymmetry = 0;      // max |H - H^T| over all blocks
  double max_residual = 0;       // max over eigenpairs of ||H v - e v|| / max(1, ||H||)
  double ground_energy_ev = 0;   // lowest initial eigenvalue
  int ground_degeneracy = 0;     // states within 0.1 meV of it
  double ground_spin_squared = 0;  // <S^2>, averaged over the ground manifold
  int weighted_initial_states = 0; // initial states with a Boltzmann weight > 1e-8
  std::vector<double> initial_energies_ev;  // every initial eigenvalue, ascending
  // Charge transfer: the ground manifold's weight in each configuration (3d^n, 3d^(n+1)L, ...),
  // and its energy relative to the average energy of the first configuration (the zero of
  // ttmult's energies). One weight of 1 and ground_energy_ev minus that average without it.
  std::vector<double> ground_weights;
  double ground_energy_from_average_ev = 0;
  // Per final block, the most Lanczos steps one of its transition vectors took (0: diagonalised
  // whole, or not needed), and over all of them the last relative change of the broadened
  // spectrum at which Lanczos stopped (0 where every Krylov space closed and the sticks are exact).
  std::vector<int> lanczos_steps;
  double lanczos_change = 0;
  // The first configuration's average energy (the Hamiltonian without hopping averaged over all
  // its determinants) in the initial and in the final state: ttmult's zero of each state.
  double initial_average_ev = 0;
  double final_average_ev = 0;
};

struct StickSpectrum {
  std::vector<Stick> sticks;  // ascending in energy, degenerate sticks (within 1e-7 eV) merged
  MultipletDiagnostics diagnostics;
  double zeta2p = 0;          // carried for the L3/L2 split of the broadening
};

struct SolverOptions {
  SolverOptions() = default;  // not an aggregate: compute_sticks(p, {20.0, 300.0}) means temperatures
  // Split each Hamiltonian into the four 2*Jz mod 8 blocks (true), or diagonalise it whole
  // (false: slower, for cross-checks and benchmark baselines; a whole final state of
  // krylov_min_dimension states or more then goes to Lanczos unless that is raised too).
  bool use_symmetry_blocks = true;
  // Diagonalise the initial state only: the diagnostics (ground state, its weights) without sticks.
  bool ground_state_only = false;
  // Final-state blocks of at least this many determinants are not diagonalised: the spectrum of
  // each transition vector comes from Lanczos, as the nodes and weights of the Gauss quadrature
  // of its spectral measure (exact when the Krylov space closes). Those sticks have no core-hole
  // character (j32_weight NaN). 0: every block by Lanczos; INT_MAX: none.
  int krylov_min_dimension = 1000;
  // Lanczos stops when the transition's spectrum broadened by a Lorentzian of FWHM
  // krylov_resolution_ev moves by at most krylov_tolerance of its maximum between two checks (the
  // step count grows by half between checks), and fails after krylov_max_steps steps. Keep the
  // resolution below the narrowest broadening the sticks will get.
  double krylov_resolution_ev = 0.2;
  double krylov_tolerance = 1e-3;
  int krylov_max_steps = 20000;
};

// Diagonalises both states and returns the sticks. Throws xasmap::Error when a parameter is out of
// its domain (n3d, temperature) or when an eigen-solver fails or returns a residual above 1e-8.
StickSpectrum compute_sticks(const MultipletParameters& p, const SolverOptions& options = {});

// The same at several temperatures from one diagonalisation (p.temperature_k is not used): the
// sticks at each of `temperatures_k`, in that order, each as compute_sticks() gives them at that
// temperature, bit for bit. Nuisance libraries sweep temperature this way.
std::vector<StickSpectrum> compute_sticks(const MultipletParameters& p, const std::vector<double>& temperatures_k,
                                          const SolverOptions& options = {});

// How each stick's Lorentzian width is chosen between the L3 and the L2 lifetime widths.
enum class LifetimeRule {
  // From the final state's core hole: FWHM = w lorentz_l3 + (1 - w) lorentz_l2 with w the stick's
  // 2p3/2 character (Stick::j32_weight). A 2p1/2 hole decays faster (L2-L3 Coster-Kronig decay),
  // and a final state of mixed j decays at the rate of its mixture. Smooth in every parameter.
  // Sticks without a character (NaN) fall back to kSplitEnergy.
  kCoreHoleCharacter,
  // CTM4XAS's convention: lorentz_l3 below one split energy, lorentz_l2 above it. The split lies
  // in the widest gap between sticks of relative intensity > 1e-3 between the L3 and L2
  // centroids, estimated as the intensity centroid C - zeta2p/2 and C + zeta2p. Where sticks are
  // dense the widest gap, and so the width of the sticks near it, jumps as 10Dq changes.
  kSplitEnergy,
};

// Lifetime and instrument broadening: each stick becomes an area-normalised Lorentzian (its FWHM
// by `rule`), and the sum is convolved with an area-normalised Gaussian of FWHM gauss_ev.
struct Broadening {
  double lorentz_l3_ev = 0.4;
  double lorentz_l2_ev = 0.8;
  double gauss_ev = 0.3;
  LifetimeRule rule = LifetimeRule::kCoreHoleCharacter;
  // kSplitEnergy's split, on the sticks' energy scale; NaN: l3_l2_split() estimates it.
  double split_ev = std::numeric_limits<double>::quiet_NaN();
};

// The split energy that separates L3 from L2 sticks (LifetimeRule::kSplitEnergy).
double l3_l2_split(const StickSpectrum& s);

// The broadened spectrum on `energy_ev` (any increasing grid, same scale as the sticks, plus
// `shift_ev`). Integrates to the sum of the sticks when the grid covers them.
Eigen::VectorXd broaden(const StickSpectrum& s, const Broadening& b,
                        const Eigen::Ref<const Eigen::VectorXd>& energy_ev, double shift_ev = 0.0);

}  // namespace xasmap
