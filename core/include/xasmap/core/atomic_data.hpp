#pragma once
// Hartree-Fock atomic parameters of 3d ions for 2p -> 3d (L2,3) spectra: data/atomic/.
//
// The table holds raw (unscaled) Slater integrals and spin-orbit constants, computed with Cowan's
// code and tabulated by edrixs (Y. L. Wang et al., Comput. Phys. Commun. 243, 151 (2019)); see
// data/atomic/SOURCE.md. An L2,3 calculation of a 3d^n ion uses the ground row 2p6 3d^n and the
// core-hole row 2p5 3d^(n+1) of the same element.

#include <filesystem>
#include <map>
#include <string>

namespace xasmap {

// A 3d ion such as "Mn3+": element, formal charge, and its 3d count n = Z - 18 - charge.
struct Ion {
  std::string element;
  int z = 0;
  int charge = 0;
  int n3d = 0;
  std::string name() const { return element + std::to_string(charge) + "+"; }
};

// Parses "Mn3+", Ti..Cu. Throws xasmap::Error naming the text when it is not one ("Mn3" without
// the sign is refused, suggesting "Mn3+").
Ion parse_ion(const std::string& text);

// The symbol of the 3d element with atomic number z (Ti..Cu). Throws xasmap::Error otherwise.
std::string element_symbol(int z);

// Raw Hartree-Fock values in eV, before any scaling.
struct HartreeFockValues {
  // Initial state 2p6 3d^n.
  double f2dd_initial = 0, f4dd_initial = 0, zeta3d_initial = 0;
  // Final state 2p5 3d^(n+1).
  double f2dd_final = 0, f4dd_final = 0, f2pd = 0, g1pd = 0, g3pd = 0;
  double zeta3d_final = 0, zeta2p = 0;
  // 2p binding energies (eV) of the element, from the same table.
  double edge_l3_ev = 0, edge_l2_ev = 0;
};

class AtomicTable {
 public:
  // Reads slater_3d_L23.csv and edges_3d.csv from `folder`. Throws xasmap::Error naming the file
  // and line when either is missing or malformed.
  static AtomicTable load(const std::filesystem::path& folder);

  // The values an L2,3 calculation of `ion` needs. Throws xasmap::Error when the table lacks a row.
  HartreeFockValues lookup(const Ion& ion) const;

 private:
  struct Row {
    double f2dd = 0, f4dd = 0, f2pd = 0, g1pd = 0, g3pd = 0, zeta3d = 0, zeta2p = 0;
  };
  // Keyed by element and the table's edrixs key, e.g. ("Mn", "3d4") or ("Mn", "3d5_2p5").
  std::map<std::pair<std::string, std::string>, Row> rows_;
  std::map<std::pair<std::string, std::string>, double> edges_;  // (element, "L3") -> eV
};

}  // namespace xasmap
