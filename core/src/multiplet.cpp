#include "xasmap/core/multiplet.hpp"

#include <Eigen/Eigenvalues>
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/text.hpp"

namespace xasmap {

namespace detail {

// ---------------------------------------------------------------------------------------------
// Angular algebra

double factorial(int n) {
  static const std::array<double, 21> kTable = [] {
    std::array<double, 21> t{};
    t[0] = 1.0;
    for (int i = 1; i < 21; ++i) t[i] = t[i - 1] * i;
    return t;
  }();
  return kTable[static_cast<std::size_t>(n)];
}

// Wigner 3j symbol (j1 j2 j3; m1 m2 m3) for integer arguments (Racah's formula).
double wigner3j(int j1, int j2, int j3, int m1, int m2, int m3) {
  if (m1 + m2 + m3 != 0) return 0.0;
  if (j3 < std::abs(j1 - j2) || j3 > j1 + j2) return 0.0;
  if (std::abs(m1) > j1 || std::abs(m2) > j2 || std::abs(m3) > j3) return 0.0;
  const double triangle = factorial(j1 + j2 - j3) * factorial(j1 - j2 + j3) *
                          factorial(-j1 + j2 + j3) / factorial(j1 + j2 + j3 + 1);
  const double prefactor =
      std::sqrt(triangle * factorial(j1 + m1) * factorial(j1 - m1) * factorial(j2 + m2) *
                factorial(j2 - m2) * factorial(j3 + m3) * factorial(j3 - m3));
  double sum = 0.0;
  const int t_min = std::max({0, j2 - j3 - m1, j1 - j3 + m2});
  const int t_max = std::min({j1 + j2 - j3, j1 - m1, j2 + m2});
  for (int t = t_min; t <= t_max; ++t) {
    const double term = factorial(t) * factorial(j1 + j2 - j3 - t) * factorial(j1 - m1 - t) *
                        factorial(j2 + m2 - t) * factorial(j3 - j2 + m1 + t) *
                        factorial(j3 - j1 - m2 + t);
    sum += ((t % 2 == 0) ? 1.0 : -1.0) / term;
  }
  const int phase = j1 - j2 - m3;
  return ((phase % 2 == 0) ? 1.0 : -1.0) * prefactor * sum;
}

// Gaunt coefficient c^k(l m; l' m') = <l m|C^k_{m-m'}|l' m'>
//   = (-1)^m sqrt((2l+1)(2l'+1)) (l k l'; 0 0 0) (l k l'; -m m-m' m').
double gaunt(int l, int m, int lp, int mp, int k) {
  const double sign = (m % 2 == 0) ? 1.0 : -1.0;
  return sign * std::sqrt((2.0 * l + 1.0) * (2.0 * lp + 1.0)) * wigner3j(l, k, lp, 0, 0, 0) *
         wigner3j(l, k, lp, -m, m - mp, mp);
}

}  // namespace detail

namespace {

using detail::gaunt;

// ---------------------------------------------------------------------------------------------
// Spin-orbitals: 0..9 are 3d (m = -2..2, spin down then up), 10..15 are 2p (m = -1..1).

constexpr int kNumOrbitals = 16;
constexpr int kFirstP = 10;
constexpr std::uint32_t kDMask = (1u << kFirstP) - 1;
constexpr std::uint32_t kPMask = ((1u << kNumOrbitals) - 1) & ~kDMask;

struct Orbital {
  int l;
  int m;
  int two_sz;  // -1 or +1
  bool is_p;
};

constexpr std::array<Orbital, kNumOrbitals> make_orbitals() {
  std::array<Orbital, kNumOrbitals> o{};
  for (int m = -2; m <= 2; ++m) {
    for (int s = 0; s < 2; ++s) o[static_cast<std::size_t>(2 * (m + 2) + s)] = {2, m, 2 * s - 1, false};
  }
  for (int m = -1; m <= 1; ++m) {
    for (int s = 0; s < 2; ++s) {
      o[static_cast<std::size_t>(kFirstP + 2 * (m + 1) + s)] = {1, m, 2 * s - 1, true};
    }
  }
  return o;
}
constexpr std::array<Orbital, kNumOrbitals> kOrbitals = make_orbitals();

constexpr int d_index(int m, int two_sz) { return 2 * (m + 2) + (two_sz > 0 ? 1 : 0); }
constexpr int p_index(int m, int two_sz) { return kFirstP + 2 * (m + 1) + (two_sz > 0 ? 1 : 0); }

// (-1)^(number of occupied orbitals below `orbital`): the sign of moving an operator past them.
inline double sign_below(std::uint32_t mask, int orbital) {
  return (std::popcount(mask & ((1u << orbital) - 1u)) & 1) ? -1.0 : 1.0;
}

// 2*Jz of a determinant, and its symmetry block (2*Jz mod 8).
int two_jz(std::uint32_t mask) {
  int total = 0;
  for (int i = 0; i < kNumOrbitals; ++i) {
    if (mask & (1u << i)) total += 2 * kOrbitals[static_cast<std::size_t>(i)].m + kOrbitals[static_cast<std::size_t>(i)].two_sz;
  }
  return total;
}
constexpr int kNumBlocks = 4;
// 2*Jz takes only even or only odd values in one space; mod 8 leaves four classes in either case.
int block_of(std::uint32_t mask) { return (((two_jz(mask) % 8) + 8) % 8) / 2; }

// ---------------------------------------------------------------------------------------------
// Operators

// The parameters of one state's Hamiltonian.
struct StateParameters {
  double f_dd[5] = {0, 0, 0, 0, 0};  // F^k(dd), k = 0..4 (odd k unused)
  double f_pd[5] = {0, 0, 0, 0, 0};  // F^k(pd), k = 0, 2
  double g_pd[5] = {0, 0, 0, 0, 0};  // G^k(pd), k = 1, 3
  double zeta3d = 0, zeta2p = 0;
  CrystalSymmetry symmetry = CrystalSymmetry::kOh;
  double tendq = 0, ds = 0, dt = 0, exchange = 0;
};

// <a b | 1/r12 | c d> for spin-orbitals, shell-conserving terms only (no configuration mixing).
// p-p terms are left out: with one 2p hole or none they only shift the whole state.
double coulomb(const StateParameters& sp, int a, int b, int c, int d) {
  const Orbital& oa = kOrbitals[static_cast<std::size_t>(a)];
  const Orbital& ob = kOrbitals[static_cast<std::size_t>(b)];
  const Orbital& oc = kOrbitals[static_cast<std::size_t>(c)];
  const Orbital& od = kOrbitals[static_cast<std::size_t>(d)];
  if (oa.two_sz != oc.two_sz || ob.two_sz != od.two_sz) return 0.0;
  if (oa.m + ob.m != oc.m + od.m) return 0.0;
  const double* radial = nullptr;
  if (oa.is_p == oc.is_p && ob.is_p == od.is_p) {
    if (oa.is_p && ob.is_p) return 0.0;
    radial = (!oa.is_p && !ob.is_p) ? sp.f_dd : sp.f_pd;  // direct
  } else if (oa.is_p == od.is_p && ob.is_p == oc.is_p) {
    radial = sp.g_pd;  // exchange: electron 1 changes shell
  } else {
    return 0.0;
  }
  double value = 0.0;
  for (int k = 0; k <= 4; ++k) {
    if (radial[k] == 0.0) continue;
    value += radial[k] * gaunt(oa.l, oa.m, oc.l, oc.m, k) * gaunt(od.l, od.m, ob.l, ob.m, k);
  }
  return value;
}

// One-body matrix t(i, j) of H1 = sum t_ij c+_i c_j: spin-orbit, crystal field, exchange field.
Eigen::Matrix<double, kNumOrbitals, kNumOrbitals> one_body(const StateParameters& sp) {
  Eigen::Matrix<double, kNumOrbitals, kNumOrbitals> t;
  t.setZero();
  // zeta l.s = zeta (lz sz + (l+ s- + l- s+)/2)
  const auto spin_orbit = [&t](int l, double zeta, auto index) {
    for (int m = -l; m <= l; ++m) {
      t(index(m, +1), index(m, +1)) += zeta * m * 0.5;
      t(index(m, -1), index(m, -1)) -= zeta * m * 0.5;
      if (m < l) {
        const double v = 0.5 * zeta * std::sqrt(static_cast<double>(l * (l + 1) - m * (m + 1)));
        t(index(m + 1, -1), index(m, +1)) += v;  // l+ s-
        t(index(m, +1), index(m + 1, -1)) += v;  // l- s+
      }
    }
  };
  spin_orbit(2, sp.zeta3d, d_index);
  spin_orbit(1, sp.zeta2p, p_index);

  // Crystal field in the complex-harmonic basis, z along C4. Oh with Dq = 10Dq/10:
  // <0|V|0> = 6Dq, <+-1|V|+-1> = -4Dq, <+-2|V|+-2> = Dq, <+-2|V|-+2> = 5Dq. D4h adds the diagonal
  // tetragonal terms <0> = -2Ds - 6Dt, <+-1> = -Ds + 4Dt, <+-2> = 2Ds - Dt.
  const double dq = sp.tendq / 10.0;
  std::array<double, 5> diagonal{dq, -4 * dq, 6 * dq, -4 * dq, dq};  // m = -2..2
  if (sp.symmetry == CrystalSymmetry::kD4h) {
    const std::array<double, 5> tetragonal{2 * sp.ds - sp.dt, -sp.ds + 4 * sp.dt,
                                           -2 * sp.ds - 6 * sp.dt, -sp.ds + 4 * sp.dt,
                                           2 * sp.ds - sp.dt};
    for (std::size_t i = 0; i < 5; ++i) diagonal[i] += tetragonal[i];
  }
  for (int s : {-1, +1}) {
    for (int m = -2; m <= 2; ++m) {
      t(d_index(m, s), d_index(m, s)) += diagonal[static_cast<std::size_t>(m + 2)];
    }
    t(d_index(2, s), d_index(-2, s)) += 5 * dq;
    t(d_index(-2, s), d_index(2, s)) += 5 * dq;
    // Exchange field: 2 M sz on every 3d spin-orbital.
    for (int m = -2; m <= 2; ++m) t(d_index(m, s), d_index(m, s)) += sp.exchange * s;
  }
  return t;
}

// Antisymmetrised two-body terms V_ab,cd = <ab|cd> - <ab|dc> of H2 = sum_{a<b, c<d} V c+a c+b cd cc,
// listed per annihilated pair (c, d).
struct PairTerm {
  int a, b;
  double value;
};
using TwoBody = std::vector<std::vector<PairTerm>>;  // index c * 16 + d

TwoBody two_body(const StateParameters& sp) {
  TwoBody terms(kNumOrbitals * kNumOrbitals);
  for (int c = 0; c < kNumOrbitals; ++c) {
    for (int d = c + 1; d < kNumOrbitals; ++d) {
      for (int a = 0; a < kNumOrbitals; ++a) {
        for (int b = a + 1; b < kNumOrbitals; ++b) {
          const double v = coulomb(sp, a, b, c, d) - coulomb(sp, a, b, d, c);
          if (std::abs(v) > 1e-14) terms[static_cast<std::size_t>(c * kNumOrbitals + d)].push_back({a, b, v});
        }
      }
    }
  }
  return terms;
}

// ---------------------------------------------------------------------------------------------
// Determinant spaces

struct Space {
  std::array<std::vector<std::uint32_t>, kNumBlocks> blocks;  // determinants per block
  std::vector<std::int32_t> index;  // mask -> position in its block, -1 when not in the space
  int dimension = 0;
};

Space make_space(int n_p, int n_d, bool blocked) {
  Space space;
  space.index.assign(1u << kNumOrbitals, -1);
  for (std::uint32_t mask = 0; mask < (1u << kNumOrbitals); ++mask) {
    if (std::popcount(mask & kDMask) != n_d || std::popcount(mask & kPMask) != n_p) continue;
    auto& block = space.blocks[static_cast<std::size_t>(blocked ? block_of(mask) : 0)];
    space.index[mask] = static_cast<std::int32_t>(block.size());
    block.push_back(mask);
    ++space.dimension;
  }
  return space;
}

Eigen::MatrixXd build_block(const std::vector<std::uint32_t>& dets, const Space& space,
                            const Eigen::Matrix<double, kNumOrbitals, kNumOrbitals>& t,
                            const TwoBody& v) {
  const auto n = static_cast<Eigen::Index>(dets.size());
  Eigen::MatrixXd h = Eigen::MatrixXd::Zero(n, n);
  for (Eigen::Index col = 0; col < n; ++col) {
    const std::uint32_t det = dets[static_cast<std::size_t>(col)];
    // One-body: t_ij c+_i c_j
    for (int j = 0; j < kNumOrbitals; ++j) {
      if (!(det & (1u << j))) continue;
      const std::uint32_t without_j = det & ~(1u << j);
      const double sign_j = sign_below(det, j);
      for (int i = 0; i < kNumOrbitals; ++i) {
        const double tij = t(i, j);
        if (tij == 0.0) continue;
        if (i != j && (without_j & (1u << i))) continue;
        const std::uint32_t target = without_j | (1u << i);
        const std::int32_t row = space.index[target];
        if (row < 0) continue;
        h(row, col) += tij * sign_j * sign_below(without_j, i);
      }
    }
    // Two-body: V_ab,cd c+a c+b cd cc
    for (int c = 0; c < kNumOrbitals; ++c) {
      if (!(det & (1u << c))) continue;
      const double sign_c = sign_below(det, c);
      const std::uint32_t after_c = det & ~(1u << c);
      for (int d = c + 1; d < kNumOrbitals; ++d) {
        if (!(after_c & (1u << d))) continue;
        const double sign_cd = sign_c * sign_below(after_c, d);
        const std::uint32_t rest = after_c & ~(1u << d);
        for (const PairTerm& term : v[static_cast<std::size_t>(c * kNumOrbitals + d)]) {
          if (rest & ((1u << term.a) | (1u << term.b))) continue;
          const double sign_b = sign_below(rest, term.b);
          const std::uint32_t with_b = rest | (1u << term.b);
          const double sign_a = sign_below(with_b, term.a);
          const std::int32_t row = space.index[with_b | (1u << term.a)];
          if (row < 0) continue;
          h(row, col) += term.value * sign_cd * sign_b * sign_a;
        }
      }
    }
  }
  return h;
}

struct SolvedBlock {
  Eigen::VectorXd energies;
  Eigen::MatrixXd vectors;
};

SolvedBlock solve_block(const Eigen::MatrixXd& h, const char* state, int block,
                        MultipletDiagnostics& diag) {
  SolvedBlock out;
  if (h.rows() == 0) return out;
  const double asymmetry = (h - h.transpose()).cwiseAbs().maxCoeff();
  diag.max_asymmetry = std::max(diag.max_asymmetry, asymmetry);
  const double scale = std::max(1.0, h.cwiseAbs().maxCoeff() * static_cast<double>(h.rows()));
  if (asymmetry > 1e-10 * scale) {
    throw Error(std::string("multiplet: the ") + state + " Hamiltonian block " +
                std::to_string(block) + " is not symmetric (max |H - H^T| = " +
                std::to_string(asymmetry) + " eV)");
  }
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(h);
  if (solver.info() != Eigen::Success) {
    throw Error(std::string("multiplet: the eigen-solver failed on the ") + state +
                " Hamiltonian block " + std::to_string(block) + " (dimension " +
                std::to_string(h.rows()) + ")");
  }
  out.energies = solver.eigenvalues();
  out.vectors = solver.eigenvectors();
  const Eigen::MatrixXd residual =
      h * out.vectors - out.vectors * out.energies.asDiagonal();
  const double norm = std::max(1.0, h.norm());
  const double worst = residual.colwise().norm().maxCoeff() / norm;
  diag.max_residual = std::max(diag.max_residual, worst);
  if (worst > 1e-8) {
    throw Error(std::string("multiplet: eigenpair residual ") + std::to_string(worst) +
                " in the " + state + " block " + std::to_string(block) + " exceeds 1e-8");
  }
  return out;
}

// Applies T_q = sum_{m, s} c1(2, m+q; 1, m) d+_{m+q,s} p_{m,s} to `v` (in block `from` of the
// initial space) and returns its components in the final block it lands in.
Eigen::VectorXd apply_dipole(int q, const Eigen::VectorXd& v, const std::vector<std::uint32_t>& dets,
                             const Space& final_space, int final_block) {
  Eigen::VectorXd w = Eigen::VectorXd::Zero(
      static_cast<Eigen::Index>(final_space.blocks[static_cast<std::size_t>(final_block)].size()));
  for (std::size_t k = 0; k < dets.size(); ++k) {
    const double amplitude = v[static_cast<Eigen::Index>(k)];
    if (amplitude == 0.0) continue;
    const std::uint32_t det = dets[k];
    for (int m = -1; m <= 1; ++m) {
      const int md = m + q;
      if (md < -2 || md > 2) continue;
      const double element = gaunt(2, md, 1, m, 1);
      for (int s : {-1, +1}) {
        const int p = p_index(m, s);
        const int d = d_index(md, s);
        if (!(det & (1u << p))) continue;
        const std::uint32_t without_p = det & ~(1u << p);
        if (without_p & (1u << d)) continue;
        const std::uint32_t target = without_p | (1u << d);
        const std::int32_t row = final_space.index[target];
        if (row < 0) continue;
        w[row] += amplitude * element * sign_below(det, p) * sign_below(without_p, d);
      }
    }
  }
  return w;
}

// <S^2> = |S+ v|^2 + <Sz^2> + <Sz> of a vector over the determinants `dets`.
double spin_squared(const Eigen::VectorXd& v, const std::vector<std::uint32_t>& dets) {
  std::vector<double> raised(1u << kNumOrbitals, 0.0);
  double sz2 = 0.0, sz = 0.0;
  for (std::size_t k = 0; k < dets.size(); ++k) {
    const double a = v[static_cast<Eigen::Index>(k)];
    if (a == 0.0) continue;
    const std::uint32_t det = dets[k];
    int two_sz = 0;
    for (int i = 0; i < kNumOrbitals; ++i) {
      if (det & (1u << i)) two_sz += kOrbitals[static_cast<std::size_t>(i)].two_sz;
    }
    sz += a * a * two_sz * 0.5;
    sz2 += a * a * two_sz * two_sz * 0.25;
    // S+ = sum over spatial orbitals of c+_{up} c_{down}; up = down + 1 in our numbering.
    for (int down = 0; down < kNumOrbitals; down += 2) {
      const int up = down + 1;
      if (!(det & (1u << down)) || (det & (1u << up))) continue;
      const std::uint32_t without = det & ~(1u << down);
      raised[without | (1u << up)] += a * sign_below(det, down) * sign_below(without, up);
    }
  }
  double norm2 = 0.0;
  for (double x : raised) norm2 += x * x;
  return norm2 + sz2 + sz;
}

StateParameters initial_state(const MultipletParameters& p) {
  StateParameters s;
  s.f_dd[0] = p.f0dd_initial;
  s.f_dd[2] = p.f2dd_initial;
  s.f_dd[4] = p.f4dd_initial;
  // The closed 2p6 shell adds F0(pd) and G(pd) terms that are the same for every state: kept so
  // that the relative energy axis has one convention for initial and final states.
  s.f_pd[0] = p.f0pd;
  s.f_pd[2] = p.f2pd;
  s.g_pd[1] = p.g1pd;
  s.g_pd[3] = p.g3pd;
  s.zeta3d = p.zeta3d_initial;
  s.zeta2p = p.zeta2p;
  s.symmetry = p.symmetry;
  s.tendq = p.tendq;
  s.ds = p.ds;
  s.dt = p.dt;
  s.exchange = p.exchange_field;
  return s;
}

StateParameters final_state(const MultipletParameters& p) {
  StateParameters s = initial_state(p);
  s.f_dd[0] = p.f0dd_final;
  s.f_dd[2] = p.f2dd_final;
  s.f_dd[4] = p.f4dd_final;
  s.zeta3d = p.zeta3d_final;
  return s;
}

}  // namespace

namespace {

struct NamedField {
  const char* name;
  double MultipletParameters::*field;
};
constexpr std::array<NamedField, 18> kNamedFields{{
    {"f0dd_initial", &MultipletParameters::f0dd_initial},
    {"f2dd_initial", &MultipletParameters::f2dd_initial},
    {"f4dd_initial", &MultipletParameters::f4dd_initial},
    {"zeta3d_initial", &MultipletParameters::zeta3d_initial},
    {"f0dd_final", &MultipletParameters::f0dd_final},
    {"f2dd_final", &MultipletParameters::f2dd_final},
    {"f4dd_final", &MultipletParameters::f4dd_final},
    {"f0pd", &MultipletParameters::f0pd},
    {"f2pd", &MultipletParameters::f2pd},
    {"g1pd", &MultipletParameters::g1pd},
    {"g3pd", &MultipletParameters::g3pd},
    {"zeta3d_final", &MultipletParameters::zeta3d_final},
    {"zeta2p", &MultipletParameters::zeta2p},
    {"tendq", &MultipletParameters::tendq},
    {"ds", &MultipletParameters::ds},
    {"dt", &MultipletParameters::dt},
    {"exchange_field", &MultipletParameters::exchange_field},
    {"temperature_k", &MultipletParameters::temperature_k},
}};

}  // namespace

const std::vector<std::string>& multiplet_parameter_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const auto& f : kNamedFields) names.emplace_back(f.name);
    return names;
  }();
  return kNames;
}

void set_parameter(MultipletParameters& p, const std::string& name, double value) {
  for (const auto& f : kNamedFields) {
    if (name == f.name) {
      p.*(f.field) = value;
      return;
    }
  }
  std::string message = "unknown multiplet parameter '" + name + "'";
  if (const std::string near = closest_match(name, multiplet_parameter_names()); !near.empty()) {
    message += " (did you mean '" + near + "'?)";
  }
  throw Error(message);
}

MultipletParameters make_parameters(const Ion& ion, const HartreeFockValues& hf,
                                    const ParameterScaling& scaling) {
  MultipletParameters p;
  p.n3d = ion.n3d;
  p.f2dd_initial = scaling.slater_dd * hf.f2dd_initial;
  p.f4dd_initial = scaling.slater_dd * hf.f4dd_initial;
  p.zeta3d_initial = scaling.zeta * hf.zeta3d_initial;
  p.f2dd_final = scaling.slater_dd * hf.f2dd_final;
  p.f4dd_final = scaling.slater_dd * hf.f4dd_final;
  p.f2pd = scaling.slater_pd * hf.f2pd;
  p.g1pd = scaling.slater_pd * hf.g1pd;
  p.g3pd = scaling.slater_pd * hf.g3pd;
  p.zeta3d_final = scaling.zeta * hf.zeta3d_final;
  p.zeta2p = scaling.zeta * hf.zeta2p;
  return p;
}

StickSpectrum compute_sticks(const MultipletParameters& p, const SolverOptions& options) {
  return std::move(compute_sticks(p, {p.temperature_k}, options).front());
}

std::vector<StickSpectrum> compute_sticks(const MultipletParameters& p, const std::vector<double>& temperatures_k,
                                          const SolverOptions& options) {
  if (p.n3d < 0 || p.n3d > 9) {
    throw Error("multiplet: n3d = " + std::to_string(p.n3d) + " is outside 0..9");
  }
  if (temperatures_k.empty()) throw Error("multiplet: no temperature given");
  for (const double t : temperatures_k) {
    if (!(t >= 0.0) || !std::isfinite(t)) {
      throw Error("multiplet: temperature " + std::to_string(t) + " K is not >= 0");
    }
  }
  const double hottest = *std::max_element(temperatures_k.begin(), temperatures_k.end());
  MultipletDiagnostics diag;

  const bool blocked = options.use_symmetry_blocks;
  const Space initial = make_space(6, p.n3d, blocked);
  const Space final_space = make_space(5, p.n3d + 1, blocked);
  diag.initial_dimension = initial.dimension;
  diag.final_dimension = final_space.dimension;

  const StateParameters si = initial_state(p);
  const StateParameters sf = final_state(p);
  const auto ti = one_body(si);
  const auto tf = one_body(sf);
  const TwoBody vi = two_body(si);
  const TwoBody vf = two_body(sf);

  std::array<SolvedBlock, kNumBlocks> initial_blocks;
  for (int b = 0; b < kNumBlocks; ++b) {
    const auto& dets = initial.blocks[static_cast<std::size_t>(b)];
    diag.initial_block_sizes.push_back(static_cast<int>(dets.size()));
    initial_blocks[static_cast<std::size_t>(b)] =
        solve_block(build_block(dets, initial, ti, vi), "initial", b, diag);
  }

  double e0 = std::numeric_limits<double>::infinity();
  for (const auto& blk : initial_blocks) {
    if (blk.energies.size() > 0) e0 = std::min(e0, blk.energies.minCoeff());
    for (Eigen::Index i = 0; i < blk.energies.size(); ++i) {
      diag.initial_energies_ev.push_back(blk.energies[i]);
    }
  }
  std::sort(diag.initial_energies_ev.begin(), diag.initial_energies_ev.end());
  diag.ground_energy_ev = e0;
  constexpr double kBoltzmannEvPerK = 8.617333262e-5;
  // Levels within 0.1 meV (1.2 K) of the lowest form the ground manifold: zero-field splittings
  // that small (e.g. the cubic splitting of Mn2+ 6A1, 0.03 meV at 10Dq 2.5 eV) are below any
  // measurement temperature, so these levels always share the full weight.
  constexpr double kDegenerate = 1e-4;  // eV
  const auto boltzmann = [&](double excess, double temperature_k) {
    if (excess < kDegenerate) return 1.0;
    return temperature_k == 0.0 ? 0.0 : std::exp(-excess / (kBoltzmannEvPerK * temperature_k));
  };
  // The initial eigenstates with a weight above 1e-8 at the hottest temperature asked for: at any
  // cooler one the weighted states are a subset of these (the weight grows with temperature).
  struct Weighted {
    int block;
    Eigen::Index column;
    double energy;
  };
  std::vector<Weighted> weighted;
  double spin2_sum = 0.0;
  for (int b = 0; b < kNumBlocks; ++b) {
    const auto& blk = initial_blocks[static_cast<std::size_t>(b)];
    for (Eigen::Index i = 0; i < blk.energies.size(); ++i) {
      const double excess = blk.energies[i] - e0;
      if (excess < kDegenerate) {
        ++diag.ground_degeneracy;
        spin2_sum += spin_squared(blk.vectors.col(i), initial.blocks[static_cast<std::size_t>(b)]);
      }
      if (boltzmann(excess, hottest) > 1e-8) weighted.push_back({b, i, blk.energies[i]});
    }
  }
  diag.ground_spin_squared = spin2_sum / diag.ground_degeneracy;

  // Final blocks reached from the weighted initial blocks.
  std::array<bool, kNumBlocks> needed{};
  std::vector<int> qs;
  switch (p.polarization) {
    case BeamPolarization::kZ:
      qs = {0};
      break;
    case BeamPolarization::kLeft:
      qs = {+1};
      break;
    case BeamPolarization::kRight:
      qs = {-1};
      break;
    case BeamPolarization::kX:
    case BeamPolarization::kY:
      qs = {-1, +1};
      break;
    case BeamPolarization::kIsotropic:
      qs = {-1, 0, +1};
      break;
  }
  // Both spaces hold 6 + n electrons, so 2*Jz has the same parity in both, and T_q (which adds 2q
  // to 2*Jz) maps initial block b to final block ((2b + 2q) mod 8) / 2.
  const auto final_block_of = [blocked](int initial_block, int q) {
    return blocked ? (((initial_block * 2 + 2 * q) % 8 + 8) % 8) / 2 : 0;
  };
  for (const auto& w : weighted) {
    for (int q : qs) needed[static_cast<std::size_t>(final_block_of(w.block, q))] = true;
  }
  // The 2p spin-orbit operator alone, sum over 2p electrons of l.s, gives each final state's core
  // hole character: with one hole in 2p6, <l.s>_hole = -<sum l.s>_electrons, and the projector on
  // the hole's j = 3/2 is (2/3)(1 + l.s) (l.s = 1/2 for j = 3/2, -1 for j = 1/2).
  StateParameters so_only;
  so_only.zeta2p = 1.0;
  const auto t_so = one_body(so_only);
  const TwoBody no_two_body(kNumOrbitals * kNumOrbitals);
  std::array<SolvedBlock, kNumBlocks> final_blocks;
  std::array<Eigen::VectorXd, kNumBlocks> final_j32;
  for (int b = 0; b < kNumBlocks; ++b) {
    const auto& dets = final_space.blocks[static_cast<std::size_t>(b)];
    diag.final_block_sizes.push_back(static_cast<int>(dets.size()));
    if (!needed[static_cast<std::size_t>(b)]) continue;
    SolvedBlock& fblk = final_blocks[static_cast<std::size_t>(b)];
    fblk = solve_block(build_block(dets, final_space, tf, vf), "final", b, diag);
    const Eigen::MatrixXd so = build_block(dets, final_space, t_so, no_two_body);
    const Eigen::VectorXd ls_electrons =
        fblk.vectors.cwiseProduct(so * fblk.vectors).colwise().sum().transpose();
    final_j32[static_cast<std::size_t>(b)] =
        ((2.0 / 3.0) * (1.0 - ls_electrons.array())).cwiseMax(0.0).cwiseMin(1.0).matrix();
  }

  // Polarisation weights per q: isotropic averages q = -1, 0, +1; x and y reach the q = -1 and
  // q = +1 final states, which lie in different blocks and so never interfere: each gets 1/2.
  const double q_weight = p.polarization == BeamPolarization::kIsotropic ? 1.0 / 3.0
                          : (p.polarization == BeamPolarization::kX ||
                             p.polarization == BeamPolarization::kY)
                              ? 0.5
                              : 1.0;
  // Transition amplitudes from every weighted initial state, once for all temperatures.
  std::vector<std::vector<Eigen::VectorXd>> amplitudes(weighted.size());
  for (std::size_t k = 0; k < weighted.size(); ++k) {
    const Weighted& w = weighted[k];
    const auto& initial_dets = initial.blocks[static_cast<std::size_t>(w.block)];
    const Eigen::VectorXd g = initial_blocks[static_cast<std::size_t>(w.block)].vectors.col(w.column);
    for (int q : qs) {
      const int fb = final_block_of(w.block, q);
      const SolvedBlock& fblk = final_blocks[static_cast<std::size_t>(fb)];
      if (fblk.energies.size() == 0) {
        amplitudes[k].emplace_back();
        continue;
      }
      const Eigen::VectorXd t = apply_dipole(q, g, initial_dets, final_space, fb);
      amplitudes[k].push_back(fblk.vectors.transpose() * t);
    }
  }

  std::vector<StickSpectrum> results;
  for (const double temperature : temperatures_k) {
    StickSpectrum& result = results.emplace_back();
    result.zeta2p = p.zeta2p;
    result.diagnostics = diag;
    std::vector<double> weight(weighted.size(), 0.0);
    double total_weight = 0.0;
    for (std::size_t k = 0; k < weighted.size(); ++k) {
      const double w = boltzmann(weighted[k].energy - e0, temperature);
      if (w > 1e-8) {
        weight[k] = w;
        total_weight += w;
        ++result.diagnostics.weighted_initial_states;
      }
    }
    std::vector<Stick> sticks;
    for (std::size_t k = 0; k < weighted.size(); ++k) {
      if (weight[k] == 0.0) continue;
      for (std::size_t iq = 0; iq < qs.size(); ++iq) {
        const Eigen::VectorXd& a = amplitudes[k][iq];
        if (a.size() == 0) continue;
        const int fb = final_block_of(weighted[k].block, qs[iq]);
        const SolvedBlock& fblk = final_blocks[static_cast<std::size_t>(fb)];
        const Eigen::VectorXd& j32 = final_j32[static_cast<std::size_t>(fb)];
        const double scale = q_weight * weight[k] / total_weight;
        for (Eigen::Index f = 0; f < a.size(); ++f) {
          const double intensity = scale * a[f] * a[f];
          if (intensity > 0.0) sticks.push_back({fblk.energies[f] - weighted[k].energy, intensity, j32[f]});
        }
      }
    }
    std::sort(sticks.begin(), sticks.end(),
              [](const Stick& a, const Stick& b) { return a.energy_ev < b.energy_ev; });
    double max_intensity = 0.0;
    for (const auto& s : sticks) max_intensity = std::max(max_intensity, s.intensity);
    for (const auto& s : sticks) {
      if (s.intensity < 1e-14 * max_intensity) continue;
      if (!result.sticks.empty() && s.energy_ev - result.sticks.back().energy_ev < 1e-7) {
        Stick& last = result.sticks.back();
        const double total = last.intensity + s.intensity;
        last.energy_ev = (last.energy_ev * last.intensity + s.energy_ev * s.intensity) / total;
        last.j32_weight = (last.j32_weight * last.intensity + s.j32_weight * s.intensity) / total;
        last.intensity = total;
      } else {
        result.sticks.push_back(s);
      }
    }
  }
  return results;
}

}  // namespace xasmap
