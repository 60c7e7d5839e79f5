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
  std::filesystem::path hartree_fock;  // the .rcg or .rcn31_out the atomic terms came from
};

// Reads `ban` and its Hartree-Fock values `hartree_fock`: by default the .rcg of the same stem
// when there is one, else the .rcn31_out. From the .ban: NCONF (2 or 3 configurations), DEF
// EG2/EF2 (and EG3/EF3) as Delta and Delta' (Udd from EG3; Upd = Delta + Udd - Delta'), XMIX 2 as
// V(e_g), V(t2g) or XMIX 4 as V(b1), V(a1), V(b2), V(e) (D4h), XHAM 2 as the atomic scale (1.0
// only) and 10Dq, or XHAM 4 as the atomic scale, 10Dq, Dt and Ds (D4h; CTM4XAS's template, whose
// 10Dq has Dt's cubic part taken out: 10Dq here is its value + 35/6 Dt).
// A .rcg (Cowan's RCG input, what ttmult read) gives the ion (its labels) and every
// configuration's terms, scaled by its own scale field. An .rcn31_out describes the ion one
// charge lower: the ion is its Z with one more charge than its ION, the first configuration's
// terms come from `table` and the transferred configurations' from its state summaries, F and G
// at 80 % and zeta rounded to ttmult's three decimals. docs/simulator.md gives the sources.
// Throws xasmap::Error naming the file and line for anything else: XMIX or XHAM with other
// counts, a scaled atomic Hamiltonian, a missing keyword or file, a .rcg whose configurations do
// not match the .ban or Cowan's order of parameters.
TtmultModel read_ttmult(const std::filesystem::path& ban, const AtomicTable& table,
                        const std::filesystem::path& hartree_fock = {});

double ttmult_energy_offset(const MultipletDiagnostics& d);

// The broadening of ttmult's .xy fixtures (multitorch's pyctm routine): Lorentzian FWHM 0.2 eV
// below 30 eV on ttmult's axis and 0.4 eV above (the middle of their 0-60 eV grid), Gaussian FWHM
// 0.2 eV. `offset` is ttmult_energy_offset(): the split is placed on our scale.
Broadening ttmult_broadening(double offset);

}  // namespace xasmap
