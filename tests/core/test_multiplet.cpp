// Physics checks of the crystal-field multiplet simulator: limits with known answers, sum rules,
// symmetries, ground states, solver diagnostics and genuine CTM4XAS output.

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>
#include <vector>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/multiplet.hpp"
#include "xasmap/core/simulated_library.hpp"
#include "multiplet_support.hpp"

using namespace xasmap;

namespace {

using testing::mn;
using testing::table;
using testing::total;

// Expands (energy, degeneracy) pairs into a sorted list.
std::vector<double> expand(const std::vector<std::pair<double, int>>& levels) {
  std::vector<double> out;
  for (const auto& [e, g] : levels) out.insert(out.end(), static_cast<std::size_t>(g), e);
  std::sort(out.begin(), out.end());
  return out;
}

void check_levels(const std::vector<double>& computed, const std::vector<double>& expected,
                  double tolerance) {
  REQUIRE(computed.size() == expected.size());
  for (std::size_t i = 0; i < computed.size(); ++i) {
    INFO("level " << i);
    CHECK(computed[i] == Approx(expected[i]).margin(tolerance));
  }
}

}  // namespace

TEST_CASE("free-ion d2 terms match the Racah-parameter formulas", "[core][multiplet]") {
  MultipletParameters p;
  p.n3d = 2;
  p.f2dd_initial = 10.0;
  p.f4dd_initial = 6.25;
  const double f2 = p.f2dd_initial / 49.0, f4 = p.f4dd_initial / 441.0;
  const double a = -49.0 * f4, b = f2 - 5.0 * f4, c = 35.0 * f4;  // F0 = 0
  const auto s = compute_sticks(p);
  check_levels(s.diagnostics.initial_energies_ev,
               expand({{a - 8 * b, 21},            // 3F
                       {a + 7 * b, 9},             // 3P
                       {a + 4 * b + 2 * c, 9},     // 1G
                       {a - 3 * b + 2 * c, 5},     // 1D
                       {a + 14 * b + 7 * c, 1}}),  // 1S
               1e-10);
}

TEST_CASE("free-ion d3 terms match the Racah-parameter formulas", "[core][multiplet]") {
  MultipletParameters p;
  p.n3d = 3;
  p.f2dd_initial = 9.7;
  p.f4dd_initial = 6.1;
  const double f2 = p.f2dd_initial / 49.0, f4 = p.f4dd_initial / 441.0;
  const double a = -49.0 * f4, b = f2 - 5.0 * f4, c = 35.0 * f4;
  const double root = std::sqrt(193 * b * b + 8 * b * c + 4 * c * c);
  const auto s = compute_sticks(p);
  check_levels(s.diagnostics.initial_energies_ev,
               expand({{3 * a - 15 * b, 28},                 // 4F
                       {3 * a, 12},                          // 4P
                       {3 * a - 6 * b + 3 * c, 22 + 6},      // 2H and 2P
                       {3 * a - 11 * b + 3 * c, 18},         // 2G
                       {3 * a + 9 * b + 3 * c, 14},          // 2F
                       {3 * a + 5 * b + 5 * c - root, 10},   // 2D (two, mixed by seniority)
                       {3 * a + 5 * b + 5 * c + root, 10}}),
               1e-10);
}

TEST_CASE("one d electron in Oh splits t2g and e_g by exactly 10Dq", "[core][multiplet]") {
  // Ti3+ with its own Hartree-Fock parameters and spin-orbit off. The closed 2p shell's p-d
  // terms shift every level alike, so levels are compared relative to the lowest.
  MultipletParameters p = mn("Ti3+", 1.7);
  p.zeta3d_initial = 0.0;
  const auto s = compute_sticks(p);
  std::vector<double> levels = s.diagnostics.initial_energies_ev;
  const double lowest = levels.front();
  for (double& e : levels) e -= lowest;
  check_levels(levels, expand({{0.0, 6}, {p.tendq, 4}}), 1e-12);
}

TEST_CASE("many-electron Hamiltonian: d3 4A2->4T2 and d8 3A2->3T2 are exactly 10Dq", "[core][multiplet]") {
  // With 3d-3d Coulomb on and spin-orbit off, 4T2 (t2g^2 e_g) of d3 and 3T2 of d8 are the only
  // terms of their symmetry and spin in their configurations' ranges, so they do not mix and lie
  // exactly 10Dq above the ground term, whatever F2 and F4 are (Tanabe-Sugano). A wrong sign or
  // factor in a Coulomb matrix element would mix them with the other terms. This checks the
  // interacting Hamiltonian (Coulomb plus crystal field), not the dipole operator.
  for (const auto& [ion, ground, excited] :
       {std::tuple{"Mn4+", 4, 12}, std::tuple{"Cr3+", 4, 12}, std::tuple{"Ni2+", 3, 9}}) {
    for (double tendq : {1.2, 2.1}) {
      INFO(ion << " 10Dq " << tendq);
      MultipletParameters p = mn(ion, tendq);
      p.zeta3d_initial = 0.0;
      const auto levels = compute_sticks(p).diagnostics.initial_energies_ev;
      const double e0 = levels.front();
      const auto at = [&](double e) {
        return std::count_if(levels.begin(), levels.end(), [&](double x) { return std::abs(x - e0 - e) < 1e-9; });
      };
      // The ground term's spin multiplicity, then the T2 term's 3 x spin multiplicity exactly at
      // 10Dq (other terms may cross it at large 10Dq, but none lands on it).
      CHECK(at(0.0) == ground);
      CHECK(at(tendq) == excited);
    }
  }
}

TEST_CASE("one d electron in D4h follows the standard Dq, Ds, Dt level scheme", "[core][multiplet]") {
  MultipletParameters p;
  p.n3d = 1;
  p.symmetry = CrystalSymmetry::kD4h;
  p.tendq = 1.5;
  p.ds = 0.12;
  p.dt = 0.05;
  const double dq = p.tendq / 10;
  const auto s = compute_sticks(p);
  check_levels(s.diagnostics.initial_energies_ev,
               expand({{6 * dq + 2 * p.ds - p.dt, 2},        // b1 (x2-y2)
                       {6 * dq - 2 * p.ds - 6 * p.dt, 2},    // a1 (z2)
                       {-4 * dq + 2 * p.ds - p.dt, 2},       // b2 (xy)
                       {-4 * dq - p.ds + 4 * p.dt, 4}}),     // e (xz, yz)
               1e-12);
}

TEST_CASE("with only 2p spin-orbit, L3:L2 is 2:1 and 1.5 zeta apart", "[core][multiplet]") {
  for (int n3d : {0, 4, 7}) {
    MultipletParameters p;
    p.n3d = n3d;
    p.zeta2p = 6.846;
    const auto s = compute_sticks(p);
    REQUIRE(s.sticks.size() == 2);
    const Stick& l3 = s.sticks[0];
    const Stick& l2 = s.sticks[1];
    INFO("n3d " << n3d);
    CHECK(l2.energy_ev - l3.energy_ev == Approx(1.5 * p.zeta2p).epsilon(1e-12));
    CHECK(l3.intensity / l2.intensity == Approx(2.0).epsilon(1e-12));
  }
}

TEST_CASE("core-hole character: pure j without 2p-3d coupling, mixed with it", "[core][multiplet]") {
  SECTION("only 2p spin-orbit: the L3 stick is all 2p3/2, the L2 stick all 2p1/2") {
    MultipletParameters p;
    p.n3d = 4;
    p.zeta2p = 6.846;
    const auto s = compute_sticks(p);
    REQUIRE(s.sticks.size() == 2);
    CHECK(s.sticks[0].j32_weight == Approx(1.0).margin(1e-12));
    CHECK(s.sticks[1].j32_weight == Approx(0.0).margin(1e-12));
  }
  SECTION("3d interactions but no 2p-3d Coulomb: every final state has a pure hole") {
    MultipletParameters p = mn("Mn2+", 0.9);
    p.f2pd = p.g1pd = p.g3pd = 0.0;
    const auto s = compute_sticks(p);
    double below = 0, above = 0;
    for (const auto& st : s.sticks) {
      INFO("stick at " << st.energy_ev << " eV");
      const bool pure = std::abs(st.j32_weight) < 1e-9 || std::abs(st.j32_weight - 1.0) < 1e-9;
      CHECK(pure);
      (st.j32_weight > 0.5 ? below : above) += st.intensity;
    }
    // The hole's j is then a good quantum number of the final state, and the dipole operator
    // reaches j = 3/2 and j = 1/2 in the statistical 2:1 ratio when zeta(3d) = 0 (it is small).
    p.zeta3d_initial = p.zeta3d_final = 0.0;
    double l3 = 0, l2 = 0;
    for (const auto& st : compute_sticks(p).sticks) (st.j32_weight > 0.5 ? l3 : l2) += st.intensity;
    CHECK(l3 / l2 == Approx(2.0).epsilon(1e-9));
    CHECK(below / above == Approx(2.0).epsilon(0.05));
  }
  SECTION("with 2p-3d Coulomb the characters mix, mostly 3/2 at L3 and 1/2 at L2") {
    const auto s = compute_sticks(mn("Mn3+", 1.5));
    const double split = l3_l2_split(s);
    double w3 = 0, i3 = 0, w2 = 0, i2 = 0;
    int mixed = 0;
    for (const auto& st : s.sticks) {
      CHECK(st.j32_weight >= 0.0);
      CHECK(st.j32_weight <= 1.0);
      if (st.j32_weight > 0.05 && st.j32_weight < 0.95) ++mixed;
      if (st.energy_ev < split) {
        w3 += st.intensity * st.j32_weight;
        i3 += st.intensity;
      } else {
        w2 += st.intensity * st.j32_weight;
        i2 += st.intensity;
      }
    }
    // Measured: 0.99 2p3/2 at L3 but only 0.71 2p1/2 at L2; the 2p-3d exchange mixes the L2 final
    // states strongly, which a single split energy ignores.
    CHECK(w3 / i3 > 0.85);
    CHECK(w2 / i2 < 0.5);
    CHECK(mixed > 0);
  }
}

TEST_CASE("lifetime widths from the core hole vary smoothly with 10Dq", "[core][broadening]") {
  // Mn4+ (d3) 10Dq 1.8-2.3 eV: with one split energy the widest stick gap, and so the width of
  // the sticks near it, jumps between neighbouring 10Dq steps; widths from each final state's
  // core-hole character do not. Each step's distance between neighbouring area-normalised spectra
  // is compared with the mean of the steps beside it (a smooth family gives about 1).
  const Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(701, -15.0, 20.0);
  const auto worst_local_ratio = [&](LifetimeRule rule) {
    std::vector<Eigen::VectorXd> spectra;
    for (int k = 18; k <= 23; ++k) {
      MultipletParameters p = mn("Mn4+", 0.1 * k);
      Broadening b;
      b.rule = rule;
      Eigen::VectorXd y = broaden(compute_sticks(p), b, grid);
      spectra.push_back(y / y.sum());
    }
    std::vector<double> d;
    for (std::size_t k = 0; k + 1 < spectra.size(); ++k) d.push_back((spectra[k + 1] - spectra[k]).norm());
    double worst = 0;
    for (std::size_t k = 1; k + 1 < d.size(); ++k) worst = std::max(worst, d[k] / (0.5 * (d[k - 1] + d[k + 1])));
    return worst;
  };
  const double split = worst_local_ratio(LifetimeRule::kSplitEnergy);
  const double character = worst_local_ratio(LifetimeRule::kCoreHoleCharacter);
  INFO("worst local ratio: split energy " << split << ", core-hole character " << character);
  CHECK(split > 2.0);
  CHECK(character < 1.35);
}

TEST_CASE("the isotropic intensity is proportional to the number of 3d holes", "[core][multiplet]") {
  for (double tendq : {0.0, 0.7, 1.6, 2.5}) {
    const double d3 = total(compute_sticks(mn("Mn4+", tendq)));
    const double d4 = total(compute_sticks(mn("Mn3+", tendq)));
    const double d5 = total(compute_sticks(mn("Mn2+", tendq)));
    INFO("10Dq " << tendq);
    CHECK(d3 / d5 == Approx(7.0 / 5.0).epsilon(1e-10));
    CHECK(d4 / d5 == Approx(6.0 / 5.0).epsilon(1e-10));
    // Absolute normalisation: each hole carries 2/15 (the squared reduced element over 3 x 5).
    CHECK(d5 == Approx(5 * 2.0 / 15.0).epsilon(1e-10));
  }
  // The sum rule holds for any initial state: thermal mixtures too.
  MultipletParameters hot = mn("Mn3+", 1.2);
  hot.temperature_k = 300;
  const auto s = compute_sticks(hot);
  CHECK(s.diagnostics.weighted_initial_states > 1);
  CHECK(total(s) == Approx(6 * 2.0 / 15.0).epsilon(1e-10));
}

TEST_CASE("Mn ground states: 6A1, high-spin 5E, 4A2", "[core][multiplet]") {
  for (double tendq = 0.0; tendq <= 2.0 + 1e-9; tendq += 0.5) {
    const auto d = compute_sticks(mn("Mn2+", tendq)).diagnostics;
    INFO("Mn2+ 10Dq " << tendq);
    CHECK(d.ground_degeneracy == 6);
    CHECK(d.ground_spin_squared == Approx(8.75).margin(0.01));
  }
  for (double tendq = 0.0; tendq <= 2.5 + 1e-9; tendq += 0.5) {
    const auto d = compute_sticks(mn("Mn3+", tendq)).diagnostics;
    INFO("Mn3+ 10Dq " << tendq);
    // S = 2 (6.0), lowered a little by spin-orbit mixing with the approaching 3T1 at large 10Dq;
    // low spin would give S = 1 (2.0).
    CHECK(d.ground_spin_squared == Approx(6.0).margin(0.3));
  }
  for (double tendq = 0.5; tendq <= 2.5 + 1e-9; tendq += 0.5) {
    const auto d = compute_sticks(mn("Mn4+", tendq)).diagnostics;
    INFO("Mn4+ 10Dq " << tendq);
    CHECK(d.ground_degeneracy == 4);
    CHECK(d.ground_spin_squared == Approx(3.75).margin(0.02));  // S = 3/2
  }
  // The known limit: a strong enough field makes d5 low spin (2T2, S = 1/2).
  const auto low = compute_sticks(mn("Mn2+", 4.5)).diagnostics;
  CHECK(low.ground_spin_squared == Approx(0.75).margin(0.05));
}

TEST_CASE("spaces, blocks and solver checks of the Mn library", "[core][multiplet]") {
  const std::vector<std::tuple<const char*, int, int>> dims{
      {"Mn2+", 252, 1260}, {"Mn3+", 210, 1512}, {"Mn4+", 120, 1260}};
  for (const auto& [ion, initial, final_dim] : dims) {
    const auto d = compute_sticks(mn(ion, 1.1)).diagnostics;
    INFO(ion);
    CHECK(d.initial_dimension == initial);
    CHECK(d.final_dimension == final_dim);
    CHECK(std::accumulate(d.initial_block_sizes.begin(), d.initial_block_sizes.end(), 0) == initial);
    CHECK(std::accumulate(d.final_block_sizes.begin(), d.final_block_sizes.end(), 0) == final_dim);
    CHECK(d.initial_block_sizes.size() == 4);
    CHECK(d.max_asymmetry < 1e-12);
    CHECK(d.max_residual < 1e-12);
  }
}

TEST_CASE("polarisations obey their symmetry relations", "[core][multiplet]") {
  // Tetragonally distorted Mn3+ (D4h, as in LaMnO3): linear dichroism between x and z.
  MultipletParameters p = mn("Mn3+", 1.0);
  p.symmetry = CrystalSymmetry::kD4h;
  p.ds = 0.1;
  p.dt = 0.02;
  const Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(601, -15.0, 20.0);
  const Broadening b{0.4, 0.8, 0.3};
  const auto spectrum = [&](BeamPolarization pol) {
    p.polarization = pol;
    return broaden(compute_sticks(p), b, grid);
  };
  const Eigen::VectorXd iso = spectrum(BeamPolarization::kIsotropic);
  const Eigen::VectorXd x = spectrum(BeamPolarization::kX);
  const Eigen::VectorXd y = spectrum(BeamPolarization::kY);
  const Eigen::VectorXd z = spectrum(BeamPolarization::kZ);
  const Eigen::VectorXd left = spectrum(BeamPolarization::kLeft);
  const Eigen::VectorXd right = spectrum(BeamPolarization::kRight);
  const double scale = iso.cwiseAbs().maxCoeff();
  CHECK((iso - (x + y + z) / 3.0).cwiseAbs().maxCoeff() < 1e-12 * scale);
  CHECK((x - y).cwiseAbs().maxCoeff() < 1e-12 * scale);
  CHECK((x - (left + right) / 2.0).cwiseAbs().maxCoeff() < 1e-12 * scale);
  CHECK((x - z).cwiseAbs().maxCoeff() > 1e-3 * scale);  // linear dichroism of the sublevel

  // An exchange field along z polarises the spins: circular dichroism appears, the sum rule stays.
  MultipletParameters m = mn("Mn2+", 0.9);
  m.exchange_field = 0.05;
  m.polarization = BeamPolarization::kLeft;
  const auto l = compute_sticks(m);
  m.polarization = BeamPolarization::kRight;
  const auto r = compute_sticks(m);
  m.polarization = BeamPolarization::kZ;
  const auto zz = compute_sticks(m);
  const Eigen::VectorXd xmcd = broaden(l, b, grid) - broaden(r, b, grid);
  CHECK(xmcd.cwiseAbs().maxCoeff() > 0.05 * broaden(l, b, grid).maxCoeff());
  CHECK((total(l) + total(r) + total(zz)) / 3.0 == Approx(5 * 2.0 / 15.0).epsilon(1e-10));
  CHECK(l.diagnostics.ground_degeneracy == 1);
}

TEST_CASE("in cubic symmetry without a field, absorption is isotropic", "[core][multiplet]") {
  // A second-rank tensor is isotropic in Oh, so no linear dichroism, whatever the ground state:
  // Mn4+ 4A2 (four-fold), and Mn3+ whose lowest spin-orbit level of 5E is a singlet.
  const Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(401, -12.0, 20.0);
  const Broadening b{0.4, 0.8, 0.3};
  for (const char* ion : {"Mn4+", "Mn3+"}) {
    MultipletParameters p = mn(ion, 2.0);
    p.polarization = BeamPolarization::kZ;
    const Eigen::VectorXd z = broaden(compute_sticks(p), b, grid);
    p.polarization = BeamPolarization::kX;
    const Eigen::VectorXd x = broaden(compute_sticks(p), b, grid);
    p.polarization = BeamPolarization::kLeft;
    const Eigen::VectorXd left = broaden(compute_sticks(p), b, grid);
    INFO(ion);
    CHECK((z - x).cwiseAbs().maxCoeff() < 1e-10 * z.maxCoeff());
    CHECK((z - left).cwiseAbs().maxCoeff() < 1e-10 * z.maxCoeff());
  }
}

TEST_CASE("temperature: near 0 K equals 0 K, and weights spread as T rises", "[core][multiplet]") {
  MultipletParameters p = mn("Mn3+", 1.5);
  const auto cold = compute_sticks(p);
  p.temperature_k = 1e-3;
  const auto almost = compute_sticks(p);
  REQUIRE(cold.sticks.size() == almost.sticks.size());
  for (std::size_t i = 0; i < cold.sticks.size(); ++i) {
    CHECK(almost.sticks[i].intensity == Approx(cold.sticks[i].intensity).epsilon(1e-9));
  }
  p.temperature_k = 300;
  CHECK(compute_sticks(p).diagnostics.weighted_initial_states >
        cold.diagnostics.weighted_initial_states);
  p.temperature_k = -1;
  CHECK_THROWS_AS(compute_sticks(p), Error);
}

TEST_CASE("broadening conserves area and has the requested widths", "[core][broadening]") {
  StickSpectrum one;
  one.sticks = {{0.0, 2.0}};
  const Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(400001, -400.0, 400.0);  // step 0.002
  const double step = grid[1] - grid[0];
  SECTION("a pure Lorentzian peaks at 2 I / (pi FWHM)") {
    const Eigen::VectorXd y = broaden(one, {0.5, 0.5, 0.0}, grid);
    CHECK(y.maxCoeff() == Approx(2.0 * 2.0 / (M_PI * 0.5)).epsilon(1e-12));
    CHECK(y.sum() * step == Approx(2.0).epsilon(2e-3));
  }
  SECTION("a Voigt profile has the Olivero-Longbothum width") {
    const double fl = 0.4, fg = 0.3;
    const Eigen::VectorXd y = broaden(one, {fl, fl, fg}, grid);
    const double half = y.maxCoeff() / 2;
    Eigen::Index first = 0, last = grid.size() - 1;
    while (y[first] < half) ++first;
    while (y[last] < half) --last;
    const double fwhm = grid[last] - grid[first];
    const double expected = 0.5346 * fl + std::sqrt(0.2166 * fl * fl + fg * fg);
    CHECK(fwhm == Approx(expected).epsilon(0.01));
    CHECK(y.sum() * step == Approx(2.0).epsilon(2e-3));
  }
  SECTION("a whole Mn spectrum keeps the sum of its sticks") {
    const auto s = compute_sticks(mn("Mn2+", 0.9));
    const Eigen::VectorXd y = broaden(s, {0.4, 0.8, 0.3}, grid);
    CHECK(y.sum() * step == Approx(total(s)).epsilon(3e-3));
  }
}

TEST_CASE("parameters by name, ions by text", "[core][multiplet]") {
  MultipletParameters p;
  set_parameter(p, "g1pd", 4.5);
  CHECK(p.g1pd == 4.5);
  CHECK(multiplet_parameter_names().size() == 18);
  CHECK_THROWS_WITH(set_parameter(p, "zeta_2p", 1.0), Catch::Contains("did you mean 'zeta2p'?"));
  CHECK(parse_ion("Mn3+").n3d == 4);
  CHECK(parse_ion("Cu2+").n3d == 9);
  CHECK(parse_ion("Ti4+").n3d == 0);
  CHECK_THROWS_WITH(parse_ion("Zn2+"), Catch::Contains("Ti..Cu"));
  CHECK_THROWS_WITH(parse_ion("Mn2"),
                    Catch::Equals("ion 'Mn2': write the charge with its sign, e.g. Mn2+"));
  CHECK_THROWS_WITH(parse_ion("Mn+"), Catch::Contains("Ti..Cu"));
  CHECK_THROWS_WITH(parse_ion("Cu1+"), Catch::Contains("10 3d electrons"));
  CHECK_THROWS_AS(AtomicTable::load("/nonexistent"), Error);
  CHECK_THROWS_WITH(table().lookup(parse_ion("Mn1+")), Catch::Contains("no row Mn 3d6"));
}

TEST_CASE("scaling multiplies the Hartree-Fock values as CTM4XAS does", "[core][multiplet]") {
  const Ion cr = parse_ion("Cr3+");
  const MultipletParameters p = make_parameters(cr, table().lookup(cr), ParameterScaling{});
  // The CTM4XAS cr3+.nfo lists exactly these values as "100%".
  CHECK(p.f2dd_initial == Approx(8.622).margin(5e-4));
  CHECK(p.f4dd_initial == Approx(5.404).margin(5e-4));
  CHECK(p.f2dd_final == Approx(9.277).margin(5e-4));
  CHECK(p.f4dd_final == Approx(5.816).margin(5e-4));
  CHECK(p.f2pd == Approx(5.221).margin(5e-4));
  CHECK(p.g1pd == Approx(3.830).margin(5e-4));
  CHECK(p.g3pd == Approx(2.178).margin(5e-4));
  CHECK(p.zeta3d_initial == Approx(0.035).margin(5e-4));
  CHECK(p.zeta3d_final == Approx(0.047).margin(5e-4));
  CHECK(p.zeta2p == Approx(5.667).margin(5e-4));
}

TEST_CASE("the 2Jz mod 8 blocks give the same spectrum as the whole matrix", "[core][multiplet]") {
  // D4h with an exchange field and finite temperature: every term that the blocking relies on.
  // V3+ (3d2; final dimension 720) keeps the unblocked diagonalisation quick.
  MultipletParameters p = mn("V3+", 1.3);
  p.symmetry = CrystalSymmetry::kD4h;
  p.ds = 0.08;
  p.dt = 0.03;
  p.exchange_field = 0.02;
  p.temperature_k = 150;
  const Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(701, -15.0, 20.0);
  for (auto pol : {BeamPolarization::kIsotropic, BeamPolarization::kLeft, BeamPolarization::kZ}) {
    p.polarization = pol;
    const auto blocked = compute_sticks(p);
    SolverOptions one_block;
    one_block.use_symmetry_blocks = false;
    const auto whole = compute_sticks(p, one_block);
    CHECK(whole.diagnostics.initial_block_sizes[0] == 45);
    CHECK(whole.diagnostics.final_block_sizes[0] == 720);
    CHECK(whole.diagnostics.max_residual < 1e-12);
    CHECK(blocked.diagnostics.ground_energy_ev ==
          Approx(whole.diagnostics.ground_energy_ev).margin(1e-10));
    CHECK(total(blocked) == Approx(total(whole)).epsilon(1e-10));
    const Eigen::VectorXd a = broaden(blocked, {0.4, 0.8, 0.3}, grid);
    const Eigen::VectorXd b = broaden(whole, {0.4, 0.8, 0.3}, grid);
    CHECK((a - b).cwiseAbs().maxCoeff() < 1e-9 * a.maxCoeff());
  }
}

TEST_CASE("one diagonalisation serves several temperatures exactly", "[core][multiplet]") {
  // Mn3+ (5E, spin-orbit sublevels meV apart) is where temperature matters most.
  MultipletParameters p = mn("Mn3+", 1.3);
  const std::vector<double> temperatures{300.0, 0.0, 20.0};
  const std::vector<StickSpectrum> together = compute_sticks(p, temperatures);
  REQUIRE(together.size() == temperatures.size());
  std::vector<int> weighted;
  for (std::size_t k = 0; k < temperatures.size(); ++k) {
    INFO("T = " << temperatures[k] << " K");
    p.temperature_k = temperatures[k];
    const StickSpectrum alone = compute_sticks(p);
    REQUIRE(together[k].sticks.size() == alone.sticks.size());
    for (std::size_t i = 0; i < alone.sticks.size(); ++i) {
      CHECK(together[k].sticks[i].energy_ev == alone.sticks[i].energy_ev);
      CHECK(together[k].sticks[i].intensity == alone.sticks[i].intensity);
      CHECK(together[k].sticks[i].j32_weight == alone.sticks[i].j32_weight);
    }
    CHECK(together[k].diagnostics.weighted_initial_states == alone.diagnostics.weighted_initial_states);
    CHECK(together[k].diagnostics.ground_energy_ev == alone.diagnostics.ground_energy_ev);
    weighted.push_back(alone.diagnostics.weighted_initial_states);
  }
  // The three are different spectra, so the check above compared three calculations: 0 K weights
  // the ground level alone, 20 K and 300 K the spin-orbit sublevels of 5E, with other weights.
  CHECK(weighted[0] >= weighted[2]);
  CHECK(weighted[2] > weighted[1]);
  REQUIRE(together[0].sticks.size() == together[2].sticks.size());
  double largest = 0, change = 0;
  for (std::size_t i = 0; i < together[0].sticks.size(); ++i) {
    largest = std::max(largest, together[0].sticks[i].intensity);
    change = std::max(change, std::abs(together[0].sticks[i].intensity - together[2].sticks[i].intensity));
  }
  CHECK(change > 1e-3 * largest);
  CHECK_THROWS_WITH(compute_sticks(p, {300.0, -1.0}), Catch::Contains("temperature"));
  CHECK_THROWS_WITH(compute_sticks(p, std::vector<double>{}), Catch::Contains("no temperature"));
}

TEST_CASE("library jobs sharing a Hamiltonian give what they give alone", "[core][multiplet]") {
  std::vector<SimulationJob> jobs(4);
  jobs[0].parameters = mn("Mn3+", 1.3);
  jobs[0].parameters.temperature_k = 300;
  jobs[1].parameters = jobs[0].parameters;
  jobs[1].parameters.temperature_k = 20;
  jobs[2].parameters = mn("Mn2+", 0.9);
  jobs[3].parameters = jobs[0].parameters;
  jobs[3].broadening = Broadening{0.3, 0.6, 0.5};
  for (std::size_t i = 0; i < jobs.size(); ++i) jobs[i].label = "job" + std::to_string(i);
  Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(301, -10.0, 20.0);
  const Broadening b;
  const auto alone = simulate_library(jobs, b, grid, 2);
  jobs[1].same_hamiltonian_as = 0;
  jobs[3].same_hamiltonian_as = 0;
  const auto shared = simulate_library(jobs, b, grid, 2);
  REQUIRE(shared.size() == jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    INFO(jobs[i].label);
    CHECK(shared[i].label == jobs[i].label);
    CHECK((shared[i].intensity.array() == alone[i].intensity.array()).all());
  }
  // The 20 K spectrum differs from the 300 K one, so sharing did not hand the same sticks to both.
  CHECK((shared[1].intensity - shared[0].intensity).cwiseAbs().maxCoeff() > 1e-3 * shared[0].intensity.maxCoeff());
  jobs[0].same_hamiltonian_as = 1;  // a later job
  CHECK_THROWS_WITH(simulate_library(jobs, b, grid, 1), Catch::Contains("not an earlier job"));
}
