#pragma once
// What the multiplet tests share: the atomic table, an ion's parameters, a spectrum's intensity,
// and a library of simulated (charge, 10Dq) spectra.

#include <string>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/heldout.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/multiplet.hpp"

namespace xasmap::testing {

inline const AtomicTable& table() {
  static const AtomicTable t = AtomicTable::load(std::string(XASMAP_SOURCE_DIR) + "/data/atomic");
  return t;
}

// An ion's parameters (CTM4XAS's scaling) at crystal field `tendq`.
inline MultipletParameters mn(const char* ion, double tendq) {
  const Ion i = parse_ion(ion);
  MultipletParameters p = make_parameters(i, table().lookup(i), ParameterScaling{});
  p.tendq = tendq;
  return p;
}

// Every spectrum of `c` as a library with the parameters charge (categorical) and tendq, labelled
// "Mn<charge>_<tendq>".
inline Library charge_tendq_library(const HeldOutClean& c) {
  Library lib;
  lib.parameters = {{"charge", true, {}}, {"tendq", false, {}}};
  for (const auto& e : c.entries) {
    lib.spectra.push_back(Spectrum{c.energy_ev, e.intensity});
    lib.values.push_back({static_cast<double>(e.charge), e.tendq_ev});
    lib.labels.push_back("Mn" + std::to_string(e.charge) + "_" + std::to_string(e.tendq_ev));
  }
  return lib;
}

inline double total(const StickSpectrum& s) {
  double sum = 0.0;
  for (const auto& st : s.sticks) sum += st.intensity;
  return sum;
}

}  // namespace xasmap::testing
