// Charge-transfer multiplets (3d^n + 3d^(n+1)L, issue #14): the limit with a known answer (no
// hopping is the crystal-field model), the sum rule over the configurations, and the ground states
// of ttmult (the engine behind CTM4XAS) fixtures.

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/multiplet.hpp"
#include "xasmap/core/ttmult.hpp"
#include "multiplet_support.hpp"

using namespace xasmap;

namespace {

using testing::table;
using testing::total;

MultipletParameters ion(const char* name, double tendq) { return testing::mn(name, tendq); }

// The ground state a ttban output reports: the lowest "Ground state energy Eg0=" over its
// symmetry triads, and the configuration weights printed under it.
struct TtmultGround {
  double energy = std::numeric_limits<double>::infinity();
  std::vector<double> weights;
};

TtmultGround read_ground(const std::string& file) {
  std::ifstream in(std::string(XASMAP_TEST_DATA_DIR) + "/ttmult/" + file);
  REQUIRE(in);
  TtmultGround g;
  std::string line;
  double energy = 0.0;
  bool pending = false;
  while (std::getline(in, line)) {
    if (const auto at = line.find("Ground state energy Eg0="); at != std::string::npos) {
      energy = std::stod(line.substr(at + 24));
      pending = true;
    } else if (pending && line.find("Weight of configurations") != std::string::npos) {
      pending = false;
      if (energy < g.energy) {
        g.energy = energy;
        g.weights.clear();
        std::istringstream numbers(line.substr(line.find(':') + 1));
        for (double w = 0.0; numbers >> w;) g.weights.push_back(w);
      }
    }
  }
  REQUIRE(std::isfinite(g.energy));
  return g;
}

// The sticks from the global ground state in a ttban output: (Ef - Eg, a^2) of every "BRA/KET"
// row pair whose ground energy is within 0.1 meV of the lowest Eg0 (ttmult's energies include a
// +20 eV final-state average; intensities are half the sum over the ground's degenerate partners
// and the three dipole components). `amplitudes`: the rows hold signed amplitudes a, as in the Oh
// fixtures; otherwise intensities (nid8ct.ban_out: all positive).
std::vector<Stick> read_sticks(const std::string& file, double ground, bool amplitudes = true) {
  std::ifstream in(std::string(XASMAP_TEST_DATA_DIR) + "/ttmult/" + file);
  REQUIRE(in);
  std::vector<Stick> out;
  std::vector<double> energies;
  std::string line;
  while (std::getline(in, line)) {
    if (const auto at = line.find("BRA/KET :"); at != std::string::npos) {
      std::istringstream numbers(line.substr(at + 9));
      energies.clear();
      for (double e = 0.0; numbers >> e;) energies.push_back(e);
      continue;
    }
    const auto colon = line.find(':');
    if (energies.empty() || colon == std::string::npos) continue;
    double eg = 0.0;
    try {
      eg = std::stod(line.substr(0, colon));
    } catch (const std::exception&) {
      continue;
    }
    if (std::abs(eg - ground) < 1e-4) {
      std::istringstream numbers(line.substr(colon + 1));
      std::size_t k = 0;
      for (double a = 0.0; numbers >> a && k < energies.size(); ++k) {
        out.push_back({energies[k] - eg, amplitudes ? a * a : a});
      }
    }
    energies.clear();
  }
  return out;
}

// A stick spectrum broadened by Gaussians of FWHM 0.3 eV on a grid of 0.02 eV from `lo` to `hi`.
std::vector<double> gaussians(const std::vector<Stick>& sticks, double shift, double lo, double hi) {
  std::vector<double> out;
  const double sigma = 0.3 / 2.3548;
  for (double e = lo; e <= hi; e += 0.02) {
    double y = 0.0;
    for (const Stick& s : sticks) y += s.intensity * std::exp(-0.5 * std::pow((e - s.energy_ev - shift) / sigma, 2));
    out.push_back(y);
  }
  return out;
}

double centroid(const std::vector<Stick>& sticks) {
  double sum = 0.0, weight = 0.0;
  for (const Stick& s : sticks) {
    sum += s.energy_ev * s.intensity;
    weight += s.intensity;
  }
  return sum / weight;
}

// Our sticks against a ttmult reference after one common shift (the centroids'): the intensities
// scale by `ratio` (the two normalisations), every reference stick above 10 % of the strongest has
// one of ours within 0.02 eV, and the spectra broadened on lo..hi eV agree to cosine > 0.999.
void check_sticks(const std::vector<Stick>& ours, const std::vector<Stick>& ref, double ratio, double lo, double hi) {
  const auto sum = [](const std::vector<Stick>& v) {
    return std::accumulate(v.begin(), v.end(), 0.0, [](double a, const Stick& x) { return a + x.intensity; });
  };
  CHECK(sum(ours) / sum(ref) == Approx(ratio).epsilon(1e-3));
  const double shift = centroid(ref) - centroid(ours);
  const double strongest =
      std::max_element(ref.begin(), ref.end(), [](const Stick& a, const Stick& b) { return a.intensity < b.intensity; })->intensity;
  int compared = 0;
  for (const Stick& r : ref) {
    if (r.intensity < 0.1 * strongest) continue;
    ++compared;
    double nearest = 1e9;
    for (const Stick& x : ours) nearest = std::min(nearest, std::abs(x.energy_ev + shift - r.energy_ev));
    INFO("reference stick at " << r.energy_ev << " eV");
    CHECK(nearest < 0.02);
  }
  CHECK(compared >= 5);
  const std::vector<double> a = gaussians(ref, 0.0, lo, hi);
  const std::vector<double> b = gaussians(ours, shift, lo, hi);
  const double cosine = std::inner_product(a.begin(), a.end(), b.begin(), 0.0) /
                        std::sqrt(std::inner_product(a.begin(), a.end(), a.begin(), 0.0) *
                                  std::inner_product(b.begin(), b.end(), b.begin(), 0.0));
  CHECK(cosine > 0.999);
}

}  // namespace

TEST_CASE("charge transfer without hopping is the crystal-field model", "[core][multiplet][ct]") {
  for (const char* name : {"Ni2+", "Co2+"}) {
    INFO(name);
    const MultipletParameters cf = ion(name, 1.1);
    MultipletParameters ct = cf;
    ct.charge_transfer.configurations = 2;
    ct.charge_transfer.delta = 6.0;
    ct.charge_transfer.udd = 7.0;
    ct.charge_transfer.upd = 8.5;
    const StickSpectrum a = compute_sticks(cf);
    const StickSpectrum b = compute_sticks(ct);
    CHECK(b.diagnostics.initial_dimension > a.diagnostics.initial_dimension);
    REQUIRE(b.diagnostics.ground_weights.size() == 2);
    CHECK(b.diagnostics.ground_weights[0] == Approx(1.0).margin(1e-12));
    CHECK(b.diagnostics.ground_energy_ev == Approx(a.diagnostics.ground_energy_ev).margin(1e-9));
    REQUIRE(b.sticks.size() == a.sticks.size());
    const double largest = std::max_element(a.sticks.begin(), a.sticks.end(), [](const Stick& x, const Stick& y) {
                             return x.intensity < y.intensity;
                           })->intensity;
    for (std::size_t i = 0; i < a.sticks.size(); ++i) {
      CHECK(b.sticks[i].energy_ev == Approx(a.sticks[i].energy_ev).margin(1e-8));
      CHECK(std::abs(b.sticks[i].intensity - a.sticks[i].intensity) <= 1e-8 * largest);
    }
  }
}

TEST_CASE("charge transfer: the intensity counts the 3d holes the ground state leaves", "[core][multiplet][ct]") {
  // Each 3d hole carries 2/15 of isotropic intensity (as in the crystal-field model); a ground
  // state w1 3d^n + w2 3d^(n+1)L has 10 - n - w2 holes.
  MultipletParameters p = ion("Ni2+", 1.0);
  p.charge_transfer.configurations = 2;
  p.charge_transfer.delta = 5.0;
  p.charge_transfer.upd = 6.0;  // delta' = -1
  p.charge_transfer.v_eg = 2.0;
  p.charge_transfer.v_t2g = 1.0;
  for (double temperature : {0.0, 300.0}) {
    p.temperature_k = temperature;
    const StickSpectrum s = compute_sticks(p);
    const auto& w = s.diagnostics.ground_weights;
    REQUIRE(w.size() == 2);
    CHECK(w[1] > 0.05);  // the hopping mixes the configurations
    CHECK(w[0] + w[1] == Approx(1.0).margin(1e-12));
    if (temperature == 0.0) CHECK(total(s) == Approx((2.0 - w[1]) * 2.0 / 15.0).epsilon(1e-10));
  }
}

TEST_CASE("charge transfer: Ti4+ d0 in Oh has ttmult's ground state", "[core][multiplet][ct]") {
  // ti4_d0_oh.ban: EG2 = 3.0 (delta), EF2 = -2.0 (delta'), XMIX 2.0 1.0 (V(e_g), V(t2g)), XHAM
  // 1.0 1.8 (10Dq). The only atomic term of 3d0 + 3d1L is zeta(3d) of the 3d1 configuration:
  // 0.019 eV (Blume-Watson, ti4_d0_oh.rcn31_out, unscaled).
  MultipletParameters p;
  p.n3d = 0;
  p.tendq = 1.8;
  p.zeta3d_initial = 0.019;
  p.charge_transfer.configurations = 2;
  p.charge_transfer.delta = 3.0;
  p.charge_transfer.upd = 5.0;  // delta' = delta + udd - upd = -2
  p.charge_transfer.v_eg = 2.0;
  p.charge_transfer.v_t2g = 1.0;
  const StickSpectrum s = compute_sticks(p);
  const TtmultGround reference = read_ground("ti4_d0_oh.ban_out");
  CHECK(reference.energy == Approx(-3.261953354).margin(1e-9));  // the parser found it
  CHECK(s.diagnostics.ground_energy_from_average_ev == Approx(reference.energy).margin(1e-3));
  REQUIRE(reference.weights.size() >= 2);
  REQUIRE(s.diagnostics.ground_weights.size() == 2);
  CHECK(s.diagnostics.ground_weights[0] == Approx(reference.weights[0]).margin(5e-4));
  CHECK(s.diagnostics.ground_weights[1] == Approx(reference.weights[1]).margin(5e-4));
  CHECK(s.diagnostics.initial_dimension == 1 + 10 * 10);
  CHECK(s.diagnostics.final_dimension == 6 * 10 + 6 * 45 * 10);
  // d0 + d1L: 10 - 0 - w2 holes.
  CHECK(total(s) == Approx((10.0 - s.diagnostics.ground_weights[1]) * 2.0 / 15.0).epsilon(1e-10));

  // The sticks, with the final 3d2L terms of Ti3+ (as ttmult takes them), after one common shift:
  // every reference stick above 10 % of the strongest has one of ours within 0.02 eV, and the shapes
  // agree; ttmult halves the sum over the three dipole components (ours averages them: 2/3).
  MultipletParameters q = p;
  q.charge_transfer.transferred = make_transferred_terms(table().lookup(parse_ion("Ti3+")), ParameterScaling{});
  q.zeta3d_final = table().lookup(parse_ion("Ti4+")).zeta3d_final;
  q.f2pd = 0.8 * table().lookup(parse_ion("Ti4+")).f2pd;
  q.g1pd = 0.8 * table().lookup(parse_ion("Ti4+")).g1pd;
  q.g3pd = 0.8 * table().lookup(parse_ion("Ti4+")).g3pd;
  q.zeta2p = table().lookup(parse_ion("Ti4+")).zeta2p;
  const StickSpectrum t = compute_sticks(q);
  const std::vector<Stick> ref = read_sticks("ti4_d0_oh.ban_out", reference.energy);
  REQUIRE(ref.size() > 300);
  check_sticks(t.sticks, ref, 2.0 / 3.0, 12.0, 38.0);
}

TEST_CASE("charge transfer: parameters outside the model are refused", "[core][multiplet][ct]") {
  MultipletParameters p = ion("Ni2+", 1.0);
  p.charge_transfer.configurations = 4;
  CHECK_THROWS_AS(compute_sticks(p), Error);
  p.charge_transfer.configurations = 3;  // 3d8 -> 3d10 L^2 fits
  p.n3d = 9;                             // 3d9 has room for one
  CHECK_THROWS_WITH(compute_sticks(p), Catch::Contains("room for 1"));
  p.n3d = 8;
  p.charge_transfer.configurations = 2;
  p.charge_transfer.v_b1 = 2.0;  // a D4h hopping in Oh
  CHECK_THROWS_WITH(compute_sticks(p), Catch::Contains("need symmetry D4h"));
}

TEST_CASE("charge transfer: Ni2+ d8 in Oh has ttmult's ground state", "[core][multiplet][ct]") {
  // ni2_d8_oh.ban: EG2 = 5.0 (delta), EF2 = -1.0 (delta'), XMIX 2.0 1.0, 10Dq 1.0. ttmult takes the
  // 3d8 terms from Ni2+ and the 3d9L terms from Ni+ (its .rcn31_out), Slater integrals at 80 %.
  MultipletParameters p = ion("Ni2+", 1.0);
  p.charge_transfer.configurations = 2;
  p.charge_transfer.delta = 5.0;
  p.charge_transfer.upd = 6.0;
  p.charge_transfer.v_eg = 2.0;
  p.charge_transfer.v_t2g = 1.0;
  p.charge_transfer.transferred = make_transferred_terms(table().lookup(parse_ion("Ni1+")), ParameterScaling{});
  const StickSpectrum s = compute_sticks(p);
  const TtmultGround reference = read_ground("ni2_d8_oh.ban_out");
  CHECK(reference.energy == Approx(-3.449934483).margin(1e-9));  // the lowest of its triads
  CHECK(s.diagnostics.ground_energy_from_average_ev == Approx(reference.energy).margin(1e-3));
  REQUIRE(s.diagnostics.ground_weights.size() == 2);
  CHECK(s.diagnostics.ground_weights[0] == Approx(reference.weights[0]).margin(5e-4));
  CHECK(s.diagnostics.ground_weights[1] == Approx(reference.weights[1]).margin(5e-4));
  CHECK(s.diagnostics.initial_dimension == 45 + 10 * 10);
  CHECK(s.diagnostics.final_dimension == 6 * 10 + 6 * 10);
  // The 3A2 ground state (with spin-orbit, a T2 triplet) keeps its degeneracy.
  CHECK(s.diagnostics.ground_degeneracy == 3);
  CHECK(total(s) == Approx((2.0 - s.diagnostics.ground_weights[1]) * 2.0 / 15.0).epsilon(1e-10));

  // The sticks, after one common shift (ttmult's energy zero is its own): every strong reference
  // stick has one of ours within 0.02 eV, the broadened shapes agree, and the intensities scale as
  // the normalisations do (isotropic average over 3 components here; half the sum over 3 partners
  // and 3 components there: a factor 2/9).
  const std::vector<Stick> ref = read_sticks("ni2_d8_oh.ban_out", reference.energy);
  REQUIRE(ref.size() > 40);
  check_sticks(s.sticks, ref, 2.0 / 9.0, 10.0, 36.0);
}

TEST_CASE("charge transfer: Mn2+, Fe2+ and Co2+ in Oh have ttmult's ground states", "[core][multiplet][ct]") {
  // Each fixture's .ban (Delta = EG2, Delta' = EF2, XMIX V(e_g) V(t2g), XHAM 10Dq) and the 3d^(n+1)
  // terms of its .rcn31_out (state 1: the ion one charge lower, raw Hartree-Fock F2, F4 and the
  // Blume-Watson zeta(3d); the atomic table has no Mn+, Fe+ or Co+), F scaled to 80 %.
  struct Case {
    const char* ion;
    const char* file;
    double delta, delta_final, v_eg, v_t2g, tendq;
    double f2, f4, zeta;  // the transferred configuration's, raw
  };
  const Case cases[] = {
      {"Mn2+", "mn2_d5_oh.ban_out", 5.0, -0.5, 1.8, 0.9, 0.8, 9.07331, 5.59083, 0.035},
      {"Fe2+", "fe2_d6_oh.ban_out", 5.0, -1.5, 2.0, 1.0, 1.0, 9.76225, 6.01755, 0.046},
      {"Co2+", "co2_d7_oh.ban_out", 5.5, -0.5, 1.8, 0.9, 0.9, 10.43110, 6.43154, 0.059},
  };
  SolverOptions ground_only;
  ground_only.ground_state_only = true;
  for (const Case& c : cases) {
    INFO(c.ion);
    MultipletParameters p = ion(c.ion, c.tendq);
    auto& ct = p.charge_transfer;
    ct.configurations = 2;
    ct.delta = c.delta;
    ct.upd = c.delta - c.delta_final;
    ct.v_eg = c.v_eg;
    ct.v_t2g = c.v_t2g;
    ct.transferred.f2dd_initial = 0.8 * c.f2;
    ct.transferred.f4dd_initial = 0.8 * c.f4;
    ct.transferred.zeta3d_initial = c.zeta;
    const StickSpectrum s = compute_sticks(p, ground_only);
    CHECK(s.sticks.empty());
    const TtmultGround reference = read_ground(c.file);
    // Issue #14's targets are 5 meV and 0.005; measured: 7 ueV, 0.1 meV, 7 ueV and 1e-5.
    CHECK(s.diagnostics.ground_energy_from_average_ev == Approx(reference.energy).margin(1e-3));
    REQUIRE(s.diagnostics.ground_weights.size() == 2);
    CHECK(s.diagnostics.ground_weights[0] == Approx(reference.weights[0]).margin(5e-4));
    CHECK(s.diagnostics.ground_weights[1] == Approx(reference.weights[1]).margin(5e-4));
  }
}

namespace {

// A stick spectrum broadened by one Lorentzian (FWHM 0.3 eV) and a Gaussian (0.1 eV) for all
// sticks, whatever their core-hole character, on -15..40 eV.
Eigen::VectorXd broadened(const StickSpectrum& s) {
  Broadening b;
  b.lorentz_l3_ev = b.lorentz_l2_ev = 0.3;
  b.gauss_ev = 0.1;
  b.rule = LifetimeRule::kSplitEnergy;
  return broaden(s, b, Eigen::VectorXd::LinSpaced(2751, -15.0, 40.0));
}

double moment(const StickSpectrum& s, int k) {
  double sum = 0.0;
  for (const Stick& x : s.sticks) sum += x.intensity * std::pow(x.energy_ev, k);
  return sum;
}

}  // namespace

TEST_CASE("Lanczos gives the spectrum of the full diagonalisation", "[core][multiplet][ct][lanczos]") {
  // Fe2+ with charge transfer (fixture fe2_d6_oh's Delta, Delta', V and 10Dq; final blocks of 855)
  // at 300 K, where several initial states carry weight, and Mn2+ in D4h without it.
  MultipletParameters fe = ion("Fe2+", 1.0);
  fe.charge_transfer.configurations = 2;
  fe.charge_transfer.delta = 5.0;
  fe.charge_transfer.upd = 6.5;
  fe.charge_transfer.v_eg = 2.0;
  fe.charge_transfer.v_t2g = 1.0;
  fe.temperature_k = 300.0;
  MultipletParameters mn = ion("Mn2+", 1.2);
  mn.symmetry = CrystalSymmetry::kD4h;
  mn.ds = 0.1;
  mn.dt = 0.02;
  for (const MultipletParameters& p : {fe, mn}) {
    INFO("n3d " << p.n3d);
    SolverOptions dense, krylov;
    dense.krylov_min_dimension = std::numeric_limits<int>::max();
    krylov.krylov_min_dimension = 0;
    const StickSpectrum a = compute_sticks(p, dense);
    const StickSpectrum b = compute_sticks(p, krylov);
    for (std::size_t blk = 0; blk < 4; ++blk) {
      CHECK(a.diagnostics.lanczos_steps[blk] == 0);
      CHECK(b.diagnostics.lanczos_steps[blk] > 0);
    }
    CHECK(b.diagnostics.lanczos_change <= krylov.krylov_tolerance);
    CHECK(b.diagnostics.weighted_initial_states == a.diagnostics.weighted_initial_states);
    // The Gauss quadrature keeps the moments: the total, the centroid and the spread.
    CHECK(moment(b, 0) == Approx(moment(a, 0)).epsilon(1e-10));
    CHECK(moment(b, 1) / moment(b, 0) == Approx(moment(a, 1) / moment(a, 0)).margin(1e-9));
    CHECK(moment(b, 2) / moment(b, 0) == Approx(moment(a, 2) / moment(a, 0)).epsilon(1e-9));
    // And the broadened spectra agree (measured: 1e-10 of the maximum or better).
    const Eigen::VectorXd ya = broadened(a), yb = broadened(b);
    CHECK((ya - yb).cwiseAbs().maxCoeff() < 1e-6 * ya.maxCoeff());
    // Lanczos sticks are quadrature nodes, not eigenstates: they carry no core-hole character.
    CHECK(std::all_of(b.sticks.begin(), b.sticks.end(), [](const Stick& s) { return std::isnan(s.j32_weight); }));
    CHECK(std::none_of(a.sticks.begin(), a.sticks.end(), [](const Stick& s) { return std::isnan(s.j32_weight); }));
  }
}

TEST_CASE("time reversal: the isotropic spectrum is the mean of the left, right and z ones", "[core][multiplet][ct]") {
  // Isotropic, x, y and z spectra are computed from one of each pair of time-reversed initial
  // states; left and right (which time reversal swaps) from all of them. Odd (Mn2+) and even
  // (Ni2+ with charge transfer) electron counts, at 300 K.
  MultipletParameters mn = ion("Mn2+", 1.0);
  mn.temperature_k = 300.0;
  MultipletParameters ni = ion("Ni2+", 1.0);
  ni.charge_transfer.configurations = 2;
  ni.charge_transfer.delta = 4.0;
  ni.charge_transfer.upd = 5.0;
  ni.charge_transfer.v_eg = 2.0;
  ni.charge_transfer.v_t2g = 1.0;
  ni.temperature_k = 300.0;
  for (MultipletParameters p : {mn, ni}) {
    INFO("n3d " << p.n3d);
    const auto spectrum = [&p](BeamPolarization polarization) {
      p.polarization = polarization;
      return broadened(compute_sticks(p));
    };
    const Eigen::VectorXd iso = spectrum(BeamPolarization::kIsotropic);
    const Eigen::VectorXd left = spectrum(BeamPolarization::kLeft);
    const Eigen::VectorXd right = spectrum(BeamPolarization::kRight);
    const Eigen::VectorXd z = spectrum(BeamPolarization::kZ);
    const Eigen::VectorXd x = spectrum(BeamPolarization::kX);
    CHECK((iso - (left + right + z) / 3.0).cwiseAbs().maxCoeff() < 1e-10 * iso.maxCoeff());
    CHECK((x - (left + right) / 2.0).cwiseAbs().maxCoeff() < 1e-10 * iso.maxCoeff());
    // In Oh the three are the same; left and right differ without an exchange field only in
    // which states they reach, not in the spectrum.
    CHECK((left - right).cwiseAbs().maxCoeff() < 1e-10 * iso.maxCoeff());
  }
}

namespace {

// A ttmult fixture's model as `xasmap simulate --ttmult` reads it (read_ttmult is checked against
// the fixtures' own numbers below).
MultipletParameters fixture_model(const std::string& stem) {
  return read_ttmult(std::string(XASMAP_TEST_DATA_DIR) + "/ttmult/" + stem + ".ban", table()).parameters;
}

// The best cosine between the fixture's broadened .xy and our sticks broadened as the fixtures
// were: Lorentzian FWHM 0.2 eV below the middle of the .xy's energy grid and 0.4 eV above (the
// fixtures' pseudo-Voigt broadening splits L3 from L2 at the grid's median energy; multitorch's
// multitorch/spectrum/broaden.py describes it), Gaussian FWHM 0.2 eV. The .xy's energy zero is
// its own: the shift is the best one within 3 eV of the one aligning the two maxima, found with
// one Lorentzian for all sticks, then refined with the split.
double xy_cosine(const StickSpectrum& s, const std::string& file) {
  std::ifstream in(std::string(XASMAP_TEST_DATA_DIR) + "/ttmult/" + file);
  REQUIRE(in);
  std::vector<double> xe, xi;
  for (double e = 0.0, y = 0.0; in >> e >> y;) {
    xe.push_back(e);
    xi.push_back(y);
  }
  REQUIRE(xe.size() == 1200);
  const double lo = s.sticks.front().energy_ev - 70.0, step = 0.005;
  const Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(28001, lo, lo + 28000 * step);
  const auto broadened_part = [&](double lorentz, double from, double to) {
    StickSpectrum part = s;
    part.sticks.clear();
    for (const Stick& x : s.sticks) {
      if (x.energy_ev >= from && x.energy_ev < to) part.sticks.push_back(x);
    }
    Broadening b;
    b.lorentz_l3_ev = b.lorentz_l2_ev = lorentz;
    b.gauss_ev = 0.2;
    b.rule = LifetimeRule::kSplitEnergy;
    return Eigen::VectorXd(broaden(part, b, grid));
  };
  const auto best_shift = [&](const Eigen::VectorXd& ours, double from, double to) {
    const auto at = [&](double e) {  // linear interpolation, 0 outside
      const double x = (e - lo) / step;
      if (x < 0.0 || x >= 28000.0) return 0.0;
      const auto i = static_cast<Eigen::Index>(x);
      return ours[i] + (x - static_cast<double>(i)) * (ours[i + 1] - ours[i]);
    };
    std::pair<double, double> best{-1.0, 0.0};  // cosine, shift
    for (double shift = from; shift <= to; shift += 0.01) {
      double ab = 0.0, aa = 0.0, bb = 0.0;
      for (std::size_t k = 0; k < xe.size(); ++k) {
        const double y = at(xe[k] - shift);
        ab += y * xi[k];
        aa += y * y;
        bb += xi[k] * xi[k];
      }
      best = std::max(best, {ab / std::sqrt(aa * bb), shift});
    }
    return best;
  };
  constexpr double kAll = std::numeric_limits<double>::infinity();
  const Eigen::VectorXd single = broadened_part(0.2, -kAll, kAll);
  Eigen::Index top = 0;
  single.maxCoeff(&top);
  const double aligned = xe[static_cast<std::size_t>(std::max_element(xi.begin(), xi.end()) - xi.begin())] - grid[top];
  const double shift = best_shift(single, aligned - 3.0, aligned + 3.0).second;
  const double split = 0.5 * (xe.front() + xe.back()) - shift;
  const Eigen::VectorXd two = broadened_part(0.2, -kAll, split) + broadened_part(0.4, split, kAll);
  return best_shift(two, shift - 0.5, shift + 0.5).first;
}

}  // namespace

TEST_CASE("charge transfer: Mn2+, Fe2+ and Co2+ sticks and spectra against ttmult's", "[core][multiplet][ct]") {
  // Issue #14's targets: every strong stick within 0.02 eV after one shift, and the broadened
  // spectrum at cosine >= 0.99 against the fixture's .xy. Mn2+'s final blocks (2,116 states) go
  // to Lanczos: its sticks are quadrature nodes, and only the strong ones need to be eigenvalues.
  // Measured: 21, 23 and 20 strong sticks, the farthest 0.11, 0.19 and 0.19 meV away; .xy cosines
  // 0.9955, 0.9982 and 0.9997.
  for (const std::string stem : {"mn2_d5_oh", "fe2_d6_oh", "co2_d7_oh"}) {
    INFO(stem);
    const StickSpectrum s = compute_sticks(fixture_model(stem));
    const TtmultGround reference = read_ground(stem + ".ban_out");
    CHECK(s.diagnostics.ground_energy_from_average_ev == Approx(reference.energy).margin(5e-3));
    const std::vector<Stick> ref = read_sticks(stem + ".ban_out", reference.energy);
    REQUIRE(ref.size() > 100);
    check_sticks(s.sticks, ref, 2.0 / (3.0 * s.diagnostics.ground_degeneracy), 0.0, 40.0);
    const double cosine = xy_cosine(s, stem + ".xy");
    CHECK(cosine >= 0.99);
  }
}

TEST_CASE("charge transfer: Ni2+ and Ti4+ spectra against ttmult's broadened ones", "[core][multiplet][ct]") {
  // Their sticks are compared above; here the .xy files (measured: cosine 0.9996 and 0.9993).
  CHECK(xy_cosine(compute_sticks(fixture_model("ni2_d8_oh")), "ni2_d8_oh.xy") >= 0.99);
  CHECK(xy_cosine(compute_sticks(fixture_model("ti4_d0_oh")), "ti4_d0_oh.xy") >= 0.99);
}

TEST_CASE("read_ttmult reads the fixtures' .ban and .rcn31_out", "[core][multiplet][ct]") {
  // Each fixture's .ban (EG2 = Delta, EF2 = Delta', XMIX, XHAM's 10Dq) and the raw values of its
  // .rcn31_out summaries (the ion one charge lower): state 1 F2, F4 (dd), zeta(3d); state 2 F2, F4
  // (dd), zeta(2p), zeta(3d), F2(pd), G1, G3 (pd); NaN where the shell has none. Expected: F and G at
  // 80 %, zeta rounded to three decimals, NaN left as it is (the ion's own terms).
  constexpr double kNone = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    const char* ion;
    const char* stem;
    double delta, delta_final, v_eg, v_t2g, tendq;
    std::array<double, 3> initial;
    std::array<double, 7> final;
  };
  const Case cases[] = {
      {"Ti4+", "ti4_d0_oh", 3.0, -2.0, 2.0, 1.0, 1.8, {kNone, kNone, 0.0193},
       {10.3432, 6.4993, 3.7757, 0.0275, 5.5808, 3.9911, 2.2676}},
      {"Ni2+", "ni2_d8_oh", 5.0, -1.0, 2.0, 1.0, 1.0, {kNone, kNone, 0.0743},
       {kNone, kNone, 11.5093, kNone, kNone, kNone, kNone}},
      {"Mn2+", "mn2_d5_oh", 5.0, -0.5, 1.8, 0.9, 0.8, {9.0733, 5.5908, 0.0345},
       {9.9719, 6.1567, 6.8475, 0.0463, 5.6533, 4.0591, 2.3054}},
      {"Fe2+", "fe2_d6_oh", 5.0, -1.5, 2.0, 1.0, 1.0, {9.7622, 6.0176, 0.0455},
       {10.6231, 6.5597, 8.2017, 0.0594, 6.1432, 4.4665, 2.5377}},
      {"Co2+", "co2_d7_oh", 5.5, -0.5, 1.8, 0.9, 0.9, {10.4311, 6.4315, 0.0587},
       {kNone, kNone, 9.7496, 0.0748, 6.6249, 4.8689, 2.7672}},
  };
  const auto same = [](double got, double raw, double scale) {
    if (std::isnan(raw)) return std::isnan(got);
    const double want = scale > 0.0 ? scale * raw : std::round(raw * 1000.0) / 1000.0;  // 0: a zeta
    return std::abs(got - want) < 1e-12;
  };
  for (const Case& c : cases) {
    INFO(c.stem);
    const TtmultModel m = read_ttmult(std::string(XASMAP_TEST_DATA_DIR) + "/ttmult/" + c.stem + ".ban", table());
    CHECK(m.ion.name() == c.ion);
    const MultipletParameters& got = m.parameters;
    CHECK(got.tendq == c.tendq);
    CHECK(got.temperature_k == 0.0);
    CHECK(got.charge_transfer.configurations == 2);
    CHECK(got.charge_transfer.delta == Approx(c.delta).margin(1e-12));
    CHECK(got.charge_transfer.delta + got.charge_transfer.udd - got.charge_transfer.upd ==
          Approx(c.delta_final).margin(1e-12));
    CHECK(got.charge_transfer.v_eg == c.v_eg);
    CHECK(got.charge_transfer.v_t2g == c.v_t2g);
    const TransferredTerms& t = got.charge_transfer.transferred;
    CHECK(same(t.f2dd_initial, c.initial[0], 0.8));
    CHECK(same(t.f4dd_initial, c.initial[1], 0.8));
    CHECK(same(t.zeta3d_initial, c.initial[2], 0.0));
    CHECK(same(t.f2dd_final, c.final[0], 0.8));
    CHECK(same(t.f4dd_final, c.final[1], 0.8));
    CHECK(same(t.zeta2p, c.final[2], 0.0));
    CHECK(same(t.zeta3d_final, c.final[3], 0.0));
    CHECK(same(t.f2pd, c.final[4], 0.8));
    CHECK(same(t.g1pd, c.final[5], 0.8));
    CHECK(same(t.g3pd, c.final[6], 0.8));
  }
  // ttmult's energy axis: the strongest stick of Ni2+ where the fixture's .xy has its maximum.
  const TtmultModel ni = read_ttmult(std::string(XASMAP_TEST_DATA_DIR) + "/ttmult/ni2_d8_oh.ban", table());
  const StickSpectrum s = compute_sticks(ni.parameters);
  const Stick strongest = *std::max_element(s.sticks.begin(), s.sticks.end(),
                                            [](const Stick& x, const Stick& y) { return x.intensity < y.intensity; });
  CHECK(strongest.energy_ev + ttmult_energy_offset(s.diagnostics) == Approx(14.625).margin(0.02));
}

TEST_CASE("read_ttmult refuses what it does not model, naming the file and line", "[core][multiplet][ct]") {
  const std::string dir = std::string(XASMAP_TEST_DATA_DIR) + "/ttmult/";
  CHECK_THROWS_WITH(read_ttmult(dir + "nid8ct.ban", table(), dir + "missing.rcn31_out"),
                    Catch::Contains("missing.rcn31_out: cannot open"));
  // A .rcg whose final configuration lists five parameters where Cowan's order has six (2p5 3d9).
  const std::filesystem::path tmp = std::filesystem::temp_directory_path() / "xasmap_rcg";
  std::filesystem::create_directories(tmp);
  std::filesystem::copy_file(dir + "nid8ct.ban", tmp / "nid8ct.ban", std::filesystem::copy_options::overwrite_existing);
  {
    std::ifstream in(dir + "nid8ct.rcg");
    std::ofstream out(tmp / "nid8ct.rcg");
    for (std::string line; std::getline(in, line);) {
      if (line.find("  6  860.1660") != std::string::npos) line.replace(line.find("  6  860.1660"), 13, "  5  860.1660");
      out << line << "\n";
    }
  }
  CHECK_THROWS_WITH(read_ttmult(tmp / "nid8ct.ban", table()),
                    Catch::Contains("nid8ct.rcg:30: 5 parameters for 3d9 with a 2p hole; Cowan's order has 6"));
  // The spin-orbit constants follow the configuration line's order of shells: with 2p named
  // first, zeta(2p) comes first, and the same model is read.
  {
    std::ifstream in(dir + "nid8ct.rcg");
    std::ofstream out(tmp / "nid8ct.rcg");
    int edited = 0;  // the configuration line and its parameters' line, each once
    for (std::string line; std::getline(in, line);) {
      if (line == "D 9  P 5  D10") {
        line = "P 5  D 9  D10";
        ++edited;
      }
      if (line.find("  6  860.1660    0.1022   11.5072") != std::string::npos) {
        line.replace(line.find("    0.1022   11.5072"), 20, "   11.5072    0.1022");
        ++edited;
      }
      out << line << "\n";
    }
    REQUIRE(edited == 2);
  }
  const MultipletParameters swapped = read_ttmult(tmp / "nid8ct.ban", table()).parameters;
  const MultipletParameters as_is = read_ttmult(dir + "nid8ct.ban", table()).parameters;
  CHECK(swapped.zeta2p == as_is.zeta2p);
  CHECK(swapped.zeta3d_final == as_is.zeta3d_final);
  CHECK(swapped.g3pd == as_is.g3pd);
  std::filesystem::remove_all(tmp);
  const std::string three = (std::filesystem::temp_directory_path() / "xasmap_xmix3.ban").string();
  {
    std::ofstream out(three);
    out << " NCONF 2 2\n DEF EG2 = 5.0 UNITY\n DEF EF2 = 4.0 UNITY\n XMIX 3 2 2 1\n XHAM 2 1.0 1.0\n";
  }
  CHECK_THROWS_WITH(read_ttmult(three, table()), Catch::Contains("xasmap_xmix3.ban:4: XMIX with 3 values; 2 (Oh) or 4 (D4h)"));
  std::filesystem::remove(three);
  CHECK_THROWS_WITH(read_ttmult(dir + "missing.ban", table()), Catch::Contains("missing.ban: cannot open"));
}

TEST_CASE("charge transfer: NiO has the satellite, the L3 shoulder and the L2 doublet of published spectra", "[core][multiplet][ct]") {
  // NiO with parameters of the range the literature uses (Delta 5, Udd 7, Upd 8 eV, V(e_g) 2 eV,
  // V(t2g) = V(e_g)/2, bare 10Dq 0.7 eV; van der Laan et al., Phys. Rev. B 33, 4253 (1986); de
  // Groot, Coord. Chem. Rev. 249, 31 (2005)), against the same model without hopping. Published
  // NiO L2,3 spectra show: the L3 peak with a shoulder about 1.8 eV above it, a weak charge-transfer
  // satellite 5-8 eV above it that the crystal-field model lacks, and L2 as a doublet about 1.2 eV
  // wide.
  const auto spectrum = [](double v_eg) {
    MultipletParameters p = ion("Ni2+", 0.7);
    p.temperature_k = 300.0;
    p.charge_transfer.configurations = 2;
    p.charge_transfer.delta = 5.0;
    p.charge_transfer.udd = 7.0;
    p.charge_transfer.upd = 8.0;
    p.charge_transfer.v_eg = v_eg;
    p.charge_transfer.v_t2g = v_eg / 2.0;
    p.charge_transfer.transferred = make_transferred_terms(table().lookup(parse_ion("Ni1+")), ParameterScaling{});
    const StickSpectrum s = compute_sticks(p);
    Broadening b;
    b.lorentz_l3_ev = 0.3;
    b.lorentz_l2_ev = 0.6;
    b.gauss_ev = 0.3;
    const Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(1201, -20.0, 40.0);  // 0.05 eV
    const Eigen::VectorXd y = broaden(s, b, grid);
    Eigen::Index top = 0;
    y.maxCoeff(&top);
    // Local maxima above 0.5 % of the L3 peak, as (energy above the L3 peak, relative height).
    std::vector<std::pair<double, double>> peaks;
    for (Eigen::Index i = 1; i + 1 < y.size(); ++i) {
      if (y[i] > y[i - 1] && y[i] >= y[i + 1] && y[i] > 0.005 * y[top]) peaks.emplace_back(grid[i] - grid[top], y[i] / y[top]);
    }
    return std::make_pair(peaks, s.diagnostics.ground_weights);
  };
  const auto within = [](const std::vector<std::pair<double, double>>& peaks, double lo, double hi) {
    std::vector<std::pair<double, double>> out;
    for (const auto& p : peaks) {
      if (p.first >= lo && p.first <= hi) out.push_back(p);
    }
    return out;
  };
  const auto [ct, weights] = spectrum(2.0);
  const auto [cf, cf_weights] = spectrum(0.0);
  // Measured: 3d9L weight 0.119; shoulder +1.80 eV at 0.24; satellite +6.65 eV at 0.021; L2 peaks
  // +17.40 and +18.45 eV at 0.154 and 0.177. Without hopping: no satellite.
  REQUIRE(weights.size() == 2);
  CHECK(weights[1] > 0.05);
  CHECK(weights[1] < 0.3);
  CHECK(cf_weights[1] == Approx(0.0).margin(1e-12));
  const auto shoulder = within(ct, 1.4, 2.2);
  REQUIRE(shoulder.size() == 1);
  CHECK(shoulder[0].second > 0.1);
  CHECK(shoulder[0].second < 0.4);
  const auto satellite = within(ct, 5.0, 8.0);
  REQUIRE(satellite.size() == 1);
  CHECK(satellite[0].second > 0.01);
  CHECK(within(cf, 3.5, 12.0).empty());
  const auto l2 = within(ct, 15.0, 21.0);
  REQUIRE(l2.size() == 2);
  CHECK(l2[1].first - l2[0].first > 0.8);
  CHECK(l2[1].first - l2[0].first < 1.6);
}

TEST_CASE("charge transfer in D4h: the four hoppings, and Oh as their limit", "[core][multiplet][ct]") {
  // In D4h with Ds = Dt = 0 and V(b1) = V(a1) = V(e_g), V(b2) = V(e) = V(t2g) the model is the Oh one.
  MultipletParameters oh = ion("Ni2+", 1.0);
  oh.temperature_k = 300.0;
  oh.charge_transfer.configurations = 2;
  oh.charge_transfer.delta = 5.0;
  oh.charge_transfer.upd = 6.0;
  oh.charge_transfer.v_eg = 2.0;
  oh.charge_transfer.v_t2g = 1.0;
  MultipletParameters d4h = oh;
  d4h.symmetry = CrystalSymmetry::kD4h;
  d4h.charge_transfer.v_b1 = d4h.charge_transfer.v_a1 = 2.0;
  d4h.charge_transfer.v_b2 = d4h.charge_transfer.v_e = 1.0;
  const StickSpectrum a = compute_sticks(oh), b = compute_sticks(d4h);
  REQUIRE(a.sticks.size() == b.sticks.size());
  for (std::size_t i = 0; i < a.sticks.size(); ++i) {
    CHECK(b.sticks[i].energy_ev == Approx(a.sticks[i].energy_ev).margin(1e-9));
    CHECK(b.sticks[i].intensity == Approx(a.sticks[i].intensity).margin(1e-12));
  }
  // Each hopping acts on its own orbital: Ni2+ 3A2 (t2g^6 e_g^2) transfers into the e_g holes, so
  // b1 and a1 hoppings move the 3d9L weight and the b2 and e ones (full orbitals) barely do.
  const auto covalency = [&](double b1, double a1, double b2, double e) {
    MultipletParameters p = d4h;
    p.charge_transfer.v_b1 = b1;
    p.charge_transfer.v_a1 = a1;
    p.charge_transfer.v_b2 = b2;
    p.charge_transfer.v_e = e;
    SolverOptions ground;
    ground.ground_state_only = true;
    return compute_sticks(p, ground).diagnostics.ground_weights[1];
  };
  const double base = covalency(2.0, 2.0, 1.0, 1.0);
  CHECK(covalency(2.5, 2.0, 1.0, 1.0) > base + 0.01);
  CHECK(covalency(2.0, 2.5, 1.0, 1.0) > base + 0.01);
  CHECK(std::abs(covalency(2.0, 2.0, 1.5, 1.0) - base) < 0.01 * base);
  CHECK(std::abs(covalency(2.0, 2.0, 1.0, 1.5) - base) < 0.01 * base);
  // 3A2 holds one hole in each e_g orbital: raising V(b1) or V(a1) alike moves the weight alike.
  CHECK(std::abs(covalency(2.5, 2.0, 1.0, 1.0) - covalency(2.0, 2.5, 1.0, 1.0)) < 0.05);
}

TEST_CASE("charge transfer in D4h: ttmult's nid8ct ground state, sticks and spectrum", "[core][multiplet][ct]") {
  // nid8ct (Ni2+ d8, D4h): XMIX 4 2 2 1 1 as V(b1), V(a1), V(b2), V(e); XHAM 4 1.0 1.0 0.0 0.1 as
  // the atomic scale, 10Dq, Dt and Ds; Delta 5, Delta' 4; the atomic terms from its .rcg (F and G
  // at 80 %; its G3(pd) of 2p5 3d9, 2.6324 eV before scaling, is 80 % of the Hartree-Fock 3.2905).
  // Its ground level, 3B1g, splits into 1+ (two states) and ^2+ (one) 0.07 meV apart; the sticks of
  // both are compared (the .ban_out lists intensities, not amplitudes). Measured: ground
  // -3.450664 eV (ttmult -3.450601), weights 0.88503/0.11497 (0.88502/0.11498); 20 sticks above 10 %
  // of the strongest, the farthest 2.7 meV from one of ours after one shift; broadened cosine 0.99998.
  const std::string dir = std::string(XASMAP_TEST_DATA_DIR) + "/ttmult/";
  const TtmultModel m = read_ttmult(dir + "nid8ct.ban", table());
  CHECK(m.ion.name() == "Ni2+");
  CHECK(m.hartree_fock.filename() == "nid8ct.rcg");
  const MultipletParameters& p = m.parameters;
  CHECK(p.symmetry == CrystalSymmetry::kD4h);
  CHECK(p.tendq == 1.0);
  CHECK(p.ds == 0.1);
  CHECK(p.dt == 0.0);
  CHECK(p.charge_transfer.v_b1 == 2.0);
  CHECK(p.charge_transfer.v_a1 == 2.0);
  CHECK(p.charge_transfer.v_b2 == 1.0);
  CHECK(p.charge_transfer.v_e == 1.0);
  CHECK(p.charge_transfer.delta == Approx(5.0).margin(1e-12));
  CHECK(p.charge_transfer.delta + p.charge_transfer.udd - p.charge_transfer.upd == Approx(4.0).margin(1e-12));
  // The .rcg's values (nid8ct.rcg lines 22-23 and 30-32), scaled 80 % (F, G) and 100 % (zeta).
  CHECK(p.f2dd_initial == Approx(0.8 * 12.2341).margin(1e-12));
  CHECK(p.f4dd_initial == Approx(0.8 * 7.5981).margin(1e-12));
  CHECK(p.zeta3d_initial == Approx(0.0832).margin(1e-12));
  CHECK(p.zeta3d_final == Approx(0.1022).margin(1e-12));
  CHECK(p.zeta2p == Approx(11.5072).margin(1e-12));
  CHECK(p.f2pd == Approx(0.8 * 7.7213).margin(1e-12));
  CHECK(p.g1pd == Approx(0.8 * 5.7874).margin(1e-12));
  CHECK(p.g3pd == Approx(0.8 * 2.6324).margin(1e-12));
  const TransferredTerms& t = p.charge_transfer.transferred;
  CHECK(t.zeta3d_initial == Approx(0.0742).margin(1e-12));
  CHECK(std::isnan(t.f2dd_initial));  // 3d9: no F(dd)
  CHECK(t.zeta2p == Approx(11.5092).margin(1e-12));
  CHECK(std::isnan(t.g3pd));  // 2p5 3d10: no F or G (pd)

  const StickSpectrum s = compute_sticks(p);
  const TtmultGround reference = read_ground("nid8ct.ban_out");
  CHECK(reference.energy == Approx(-3.450600624).margin(1e-9));
  CHECK(s.diagnostics.ground_energy_from_average_ev == Approx(reference.energy).margin(5e-3));
  REQUIRE(s.diagnostics.ground_weights.size() >= 2);
  CHECK(s.diagnostics.ground_weights[0] == Approx(reference.weights[0]).margin(5e-3));
  CHECK(s.diagnostics.ground_weights[1] == Approx(reference.weights[1]).margin(5e-3));
  CHECK(s.diagnostics.ground_degeneracy == 3);
  const std::vector<Stick> ref = read_sticks("nid8ct.ban_out", reference.energy, false);
  REQUIRE(ref.size() > 100);
  // ttmult's final energies are absolute (its 2p5 3d9 average is 860.166 eV).
  check_sticks(s.sticks, ref, 2.0 / (3.0 * s.diagnostics.ground_degeneracy), 845.0, 885.0);

  // The sticks tell Ds's sign: reversed, the strong sticks are not matched (measured: the farthest
  // 2.7 meV away as read, 171 meV with -Ds).
  const auto matched = [&](const MultipletParameters& q) {
    const StickSpectrum x = compute_sticks(q);
    const double shift = centroid(ref) - centroid(x.sticks);
    double strongest = 0, farthest = 0;
    for (const Stick& r : ref) strongest = std::max(strongest, r.intensity);
    for (const Stick& r : ref) {
      if (r.intensity < 0.1 * strongest) continue;
      double nearest = 1e9;
      for (const Stick& y : x.sticks) nearest = std::min(nearest, std::abs(y.energy_ev + shift - r.energy_ev));
      farthest = std::max(farthest, nearest);
    }
    return farthest;
  };
  CHECK(matched(p) < 0.02);
  MultipletParameters reversed = p;
  reversed.ds = -p.ds;
  CHECK(matched(reversed) > 0.05);
}
