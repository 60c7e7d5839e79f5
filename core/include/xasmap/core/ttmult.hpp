#pragma once
// ttmult (the Cowan/Thole/Butler engine behind CTM4XAS) charge-transfer inputs: a ttban file
// (.ban) and, beside it, Cowan's Hartree-Fock output (.rcn31_out) for the configurations with a
// transferred electron. docs/simulator.md ("Charge transfer") states how each of ttmult's numbers
// maps onto MultipletParameters.

#include <filesystem>
#include <string>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/multiplet.hpp"

namespace xasmap {

struct TtmultModel {
  Ion ion;
  MultipletParameters parameters;  // at 0 K, as ttmult computes the ground state alone
  std::string summary;             // what was read, one line
};

// Reads `ban` and the .rcn31_out of the same stem: NCONF (2 or 3 configurations), DEF EG2/EF2
// (and EG3/EF3) as Delta and Delta' (Udd from EG3; Upd = Delta + Udd - Delta'), XMIX as V(e_g),
// V(t2g), XHAM as the atomic scale (1.0 only) and 10Dq. The ion is the .rcn31_out's Z with one
// more charge than its ION (that file describes the ion one charge lower); the first
// configuration's terms come from `table`, those of the transferred configurations from the
// .rcn31_out's state summaries, F and G at 80 % and zeta rounded to ttmult's three decimals.
// Throws xasmap::Error naming the file and line for anything else: D4h (XMIX or XHAM with four
// values), a scaled atomic Hamiltonian, a missing keyword or file.
TtmultModel read_ttmult(const std::filesystem::path& ban, const AtomicTable& table);

// ttmult's energy axis (its .xy files and its sticks' E_f - E_g): our relative energies minus the
// difference of the final and initial first-configuration averages, plus the 20 eV ttmult adds to
// the final state's.
double ttmult_energy_offset(const MultipletDiagnostics& d);

// The broadening of ttmult's .xy fixtures (multitorch's pyctm routine): Lorentzian FWHM 0.2 eV
// below 30 eV on ttmult's axis and 0.4 eV above (the middle of their 0-60 eV grid), Gaussian FWHM
// 0.2 eV. `offset` is ttmult_energy_offset(): the split is placed on our scale.
Broadening ttmult_broadening(double offset);

}  // namespace xasmap
