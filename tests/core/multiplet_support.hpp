#pragma once
// What the multiplet tests share: the atomic table, an ion's parameters, a spectrum's intensity.

#include <string>

#include "xasmap/core/atomic_data.hpp"
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

inline double total(const StickSpectrum& s) {
  double sum = 0.0;
  for (const auto& st : s.sticks) sum += st.intensity;
  return sum;
}

}  // namespace xasmap::testing
