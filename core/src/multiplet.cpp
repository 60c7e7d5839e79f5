#include "xasmap/core/multiplet.hpp"

#include <Eigen/Eigenvalues>
#include <Eigen/SparseCore>
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <unordered_map>

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
// Spin-orbitals: 0..9 are 3d (m = -2..2, spin down then up), 10..15 are 2p (m = -1..1), and with
// charge transfer 16..25 the ligand orbitals L (labelled like the 3d ones, m = -2..2: each is the
// ligand combination of the symmetry of its 3d partner). The crystal-field model uses the first 16.

constexpr int kNumOrbitals = 16;     // 3d and 2p
constexpr int kMaxOrbitals = 26;     // with the ligand shell
constexpr int kFirstP = 10;
constexpr int kFirstL = 16;
constexpr std::uint32_t kDMask = (1u << kFirstP) - 1;
constexpr std::uint32_t kPMask = ((1u << kNumOrbitals) - 1) & ~kDMask;
constexpr std::uint32_t kLMask = ((1u << kMaxOrbitals) - 1) & ~((1u << kNumOrbitals) - 1);

enum class Shell { kD, kP, kL };

struct Orbital {
  int l;
  int m;
  int two_sz;  // -1 or +1
  Shell shell;
};

constexpr std::array<Orbital, kMaxOrbitals> make_orbitals() {
  std::array<Orbital, kMaxOrbitals> o{};
  for (int m = -2; m <= 2; ++m) {
    for (int s = 0; s < 2; ++s) {
      o[static_cast<std::size_t>(2 * (m + 2) + s)] = {2, m, 2 * s - 1, Shell::kD};
      o[static_cast<std::size_t>(kFirstL + 2 * (m + 2) + s)] = {2, m, 2 * s - 1, Shell::kL};
    }
  }
  for (int m = -1; m <= 1; ++m) {
    for (int s = 0; s < 2; ++s) {
      o[static_cast<std::size_t>(kFirstP + 2 * (m + 1) + s)] = {1, m, 2 * s - 1, Shell::kP};
    }
  }
  return o;
}
constexpr std::array<Orbital, kMaxOrbitals> kOrbitals = make_orbitals();

constexpr int d_index(int m, int two_sz) { return 2 * (m + 2) + (two_sz > 0 ? 1 : 0); }
constexpr int p_index(int m, int two_sz) { return kFirstP + 2 * (m + 1) + (two_sz > 0 ? 1 : 0); }
constexpr int l_index(int m, int two_sz) { return kFirstL + 2 * (m + 2) + (two_sz > 0 ? 1 : 0); }

// (-1)^(number of occupied orbitals below `orbital`): the sign of moving an operator past them.
inline double sign_below(std::uint32_t mask, int orbital) {
  return (std::popcount(mask & ((1u << orbital) - 1u)) & 1) ? -1.0 : 1.0;
}

// 2*Jz of a determinant, and its symmetry block (2*Jz mod 8).
int two_jz(std::uint32_t mask) {
  int total = 0;
  for (int i = 0; i < kMaxOrbitals; ++i) {
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
  // Charge transfer: the spin-orbitals in use (16, or 26 with the ligand shell), the hopping
  // between each 3d orbital and its ligand partner, and the ligand shell's own crystal field.
  int orbitals = kNumOrbitals;
  double v_b1 = 0, v_a1 = 0, v_b2 = 0, v_e = 0, ligand_tendq = 0;  // Oh: b1 = a1 = e_g, b2 = e = t2g
};

// <a b | 1/r12 | c d> for spin-orbitals, shell-conserving terms only (no configuration mixing).
// p-p terms are left out: with one 2p hole or none they only shift the whole state.
double coulomb(const StateParameters& sp, int a, int b, int c, int d) {
  const Orbital& oa = kOrbitals[static_cast<std::size_t>(a)];
  const Orbital& ob = kOrbitals[static_cast<std::size_t>(b)];
  const Orbital& oc = kOrbitals[static_cast<std::size_t>(c)];
  const Orbital& od = kOrbitals[static_cast<std::size_t>(d)];
  // The ligand shell carries no Coulomb terms: configuration energies stand for them.
  if (oa.shell == Shell::kL || ob.shell == Shell::kL || oc.shell == Shell::kL || od.shell == Shell::kL) return 0.0;
  if (oa.two_sz != oc.two_sz || ob.two_sz != od.two_sz) return 0.0;
  if (oa.m + ob.m != oc.m + od.m) return 0.0;
  const bool pa = oa.shell == Shell::kP, pb = ob.shell == Shell::kP, pc = oc.shell == Shell::kP,
             pd = od.shell == Shell::kP;
  const double* radial = nullptr;
  if (pa == pc && pb == pd) {
    if (pa && pb) return 0.0;
    radial = (!pa && !pb) ? sp.f_dd : sp.f_pd;  // direct
  } else if (pa == pd && pb == pc) {
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

using OneBody = Eigen::Matrix<double, kMaxOrbitals, kMaxOrbitals>;

// One-body matrix t(i, j) of H1 = sum t_ij c+_i c_j: spin-orbit, crystal field, exchange field,
// and with charge transfer the 3d-ligand hopping and the ligand crystal field.
OneBody one_body(const StateParameters& sp) {
  OneBody t;
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
  if (sp.orbitals > kNumOrbitals) {
    // The D4h projectors in the complex basis: a1 = {m = 0}, b1 = {(m = 2 + m = -2)/sqrt 2},
    // b2 = {(m = 2 - m = -2)/sqrt 2}, e = {m = +-1}; Oh's e_g is a1 + b1 and t2g is b2 + e.
    // Hopping V_g (d+_g L_g + L+_g d_g) for each, and the ligand crystal field (e_g at +0.6, t2g
    // at -0.4 ligand_tendq).
    const double ldq = sp.ligand_tendq / 10.0;
    for (int s : {-1, +1}) {
      for (int m = -2; m <= 2; ++m) {
        for (int mp = -2; mp <= 2; ++mp) {
          double a1 = 0.0, b1 = 0.0, b2 = 0.0, e = 0.0;
          if (m == mp) {
            a1 = m == 0 ? 1.0 : 0.0;
            e = std::abs(m) == 1 ? 1.0 : 0.0;
            b1 = b2 = std::abs(m) == 2 ? 0.5 : 0.0;
          } else if (std::abs(m) == 2 && mp == -m) {
            b1 = 0.5;
            b2 = -0.5;
          }
          const double eg = a1 + b1, t2g = b2 + e;
          const double hop = sp.v_a1 * a1 + sp.v_b1 * b1 + sp.v_b2 * b2 + sp.v_e * e;
          if (hop != 0.0) {
            t(d_index(m, s), l_index(mp, s)) += hop;
            t(l_index(mp, s), d_index(m, s)) += hop;
          }
          const double field = ldq * (6.0 * eg - 4.0 * t2g);
          if (field != 0.0) t(l_index(m, s), l_index(mp, s)) += field;
        }
      }
    }
  }
  return t;
}

// Antisymmetrised two-body terms V_ab,cd = <ab|cd> - <ab|dc> of H2 = sum_{a<b, c<d} V c+a c+b cd cc,
// listed per annihilated pair (c, d).
struct PairTerm {
  int a, b;
  double value;
};
using TwoBody = std::vector<std::vector<PairTerm>>;  // index c * kMaxOrbitals + d

// The ligand shell has no two-body terms, so the 3d and 2p pairs are all there are.
TwoBody two_body(const StateParameters& sp) {
  TwoBody terms(kMaxOrbitals * kMaxOrbitals);
  for (int c = 0; c < kNumOrbitals; ++c) {
    for (int d = c + 1; d < kNumOrbitals; ++d) {
      for (int a = 0; a < kNumOrbitals; ++a) {
        for (int b = a + 1; b < kNumOrbitals; ++b) {
          const double v = coulomb(sp, a, b, c, d) - coulomb(sp, a, b, d, c);
          if (std::abs(v) > 1e-14) terms[static_cast<std::size_t>(c * kMaxOrbitals + d)].push_back({a, b, v});
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
  int orbitals = kNumOrbitals;      // spin-orbitals in use (26 with the ligand shell)
  std::vector<std::int32_t> dense;  // without the ligand shell: mask -> position in its block
  std::unordered_map<std::uint32_t, std::int32_t> sparse;  // with it
  int dimension = 0;

  // The position of `mask` in its block, or -1 when it is not in the space.
  std::int32_t find(std::uint32_t mask) const {
    if (!dense.empty()) return mask < dense.size() ? dense[mask] : -1;
    const auto it = sparse.find(mask);
    return it == sparse.end() ? -1 : it->second;
  }
};

// The determinants with n_p 2p electrons and, for each configuration k = 0, 1, ...: n_d + k 3d
// electrons and (with charge transfer, configurations > 1) 10 - k ligand electrons; ascending in
// mask within each block.
Space make_space(int n_p, int n_d, int configurations, bool blocked) {
  Space space;
  const bool ligand = configurations > 1;
  space.orbitals = ligand ? kMaxOrbitals : kNumOrbitals;
  if (!ligand) space.dense.assign(1u << kNumOrbitals, -1);
  // Masks of `bits` bits with `count` set, ascending.
  const auto patterns = [](int bits, int count) {
    std::vector<std::uint32_t> out;
    for (std::uint32_t x = 0; x < (1u << bits); ++x) {
      if (std::popcount(x) == count) out.push_back(x);
    }
    return out;
  };
  std::vector<std::uint32_t> masks;
  for (int k = 0; k < configurations; ++k) {
    if (n_d + k > 10) break;
    const auto ds = patterns(10, n_d + k);
    const auto ps = patterns(6, n_p);
    const auto ls = ligand ? patterns(10, 10 - k) : std::vector<std::uint32_t>{0};
    for (const std::uint32_t l : ls) {
      for (const std::uint32_t pm : ps) {
        for (const std::uint32_t d : ds) masks.push_back(d | (pm << kFirstP) | (l << kFirstL));
      }
    }
  }
  std::sort(masks.begin(), masks.end());
  for (const std::uint32_t mask : masks) {
    auto& block = space.blocks[static_cast<std::size_t>(blocked ? block_of(mask) : 0)];
    const auto position = static_cast<std::int32_t>(block.size());
    if (ligand) {
      space.sparse.emplace(mask, position);
    } else {
      space.dense[mask] = position;
    }
    block.push_back(mask);
    ++space.dimension;
  }
  return space;
}

// One configuration's one- and two-body terms (charge transfer gives each configuration its own
// atomic parameters; the hopping, in every `t`, is the same in all).
struct ConfigTerms {
  OneBody t;
  TwoBody v;
};

// The terms of configuration k (3d count n_d0 + k); the last ones serve any further configuration.
const ConfigTerms& terms_of(const std::vector<ConfigTerms>& terms, std::uint32_t det, int n_d0) {
  const auto k = static_cast<std::size_t>(std::popcount(det & kDMask) - n_d0);
  return terms[std::min(k, terms.size() - 1)];
}

// Calls add(row, col, value) for every Hamiltonian element between determinants of `dets` (rows
// and columns are positions in that block); elements of one (row, col) may come several times and
// sum. `config_shift`: a constant added to the diagonal per configuration (charge transfer), or none.
template <class Add>
void for_each_element(const std::vector<std::uint32_t>& dets, const Space& space,
                      const std::vector<ConfigTerms>& terms, int n_d0,
                      const std::vector<double>& config_shift, Add&& add) {
  const auto n = static_cast<Eigen::Index>(dets.size());
  const int orbitals = space.orbitals;
  for (Eigen::Index col = 0; col < n; ++col) {
    const std::uint32_t det = dets[static_cast<std::size_t>(col)];
    const ConfigTerms& own = terms_of(terms, det, n_d0);
    const OneBody& t = own.t;
    const TwoBody& v = own.v;
    if (!config_shift.empty()) {
      add(col, col, config_shift[static_cast<std::size_t>(std::popcount(det & kDMask) - n_d0)]);
    }
    // One-body: t_ij c+_i c_j
    for (int j = 0; j < orbitals; ++j) {
      if (!(det & (1u << j))) continue;
      const std::uint32_t without_j = det & ~(1u << j);
      const double sign_j = sign_below(det, j);
      for (int i = 0; i < orbitals; ++i) {
        const double tij = t(i, j);
        if (tij == 0.0) continue;
        if (i != j && (without_j & (1u << i))) continue;
        const std::uint32_t target = without_j | (1u << i);
        const std::int32_t row = space.find(target);
        if (row < 0) continue;
        add(row, col, tij * sign_j * sign_below(without_j, i));
      }
    }
    // Two-body: V_ab,cd c+a c+b cd cc
    for (int c = 0; c < kNumOrbitals; ++c) {  // the ligand shell has no two-body terms
      if (!(det & (1u << c))) continue;
      const double sign_c = sign_below(det, c);
      const std::uint32_t after_c = det & ~(1u << c);
      for (int d = c + 1; d < kNumOrbitals; ++d) {
        if (!(after_c & (1u << d))) continue;
        const double sign_cd = sign_c * sign_below(after_c, d);
        const std::uint32_t rest = after_c & ~(1u << d);
        for (const PairTerm& term : v[static_cast<std::size_t>(c * kMaxOrbitals + d)]) {
          if (rest & ((1u << term.a) | (1u << term.b))) continue;
          const double sign_b = sign_below(rest, term.b);
          const std::uint32_t with_b = rest | (1u << term.b);
          const double sign_a = sign_below(with_b, term.a);
          const std::int32_t row = space.find(with_b | (1u << term.a));
          if (row < 0) continue;
          add(row, col, term.value * sign_cd * sign_b * sign_a);
        }
      }
    }
  }
}

Eigen::MatrixXd build_block(const std::vector<std::uint32_t>& dets, const Space& space,
                            const std::vector<ConfigTerms>& terms, int n_d0,
                            const std::vector<double>& config_shift = {}) {
  const auto n = static_cast<Eigen::Index>(dets.size());
  Eigen::MatrixXd h = Eigen::MatrixXd::Zero(n, n);
  for_each_element(dets, space, terms, n_d0, config_shift,
                   [&h](Eigen::Index row, Eigen::Index col, double value) { h(row, col) += value; });
  return h;
}

using SparseHamiltonian = Eigen::SparseMatrix<double>;

SparseHamiltonian build_sparse_block(const std::vector<std::uint32_t>& dets, const Space& space,
                                     const std::vector<ConfigTerms>& terms, int n_d0,
                                     const std::vector<double>& config_shift = {}) {
  const auto n = static_cast<Eigen::Index>(dets.size());
  std::vector<Eigen::Triplet<double>> entries;
  for_each_element(dets, space, terms, n_d0, config_shift,
                   [&entries](Eigen::Index row, Eigen::Index col, double value) {
                     if (value != 0.0) entries.emplace_back(row, col, value);
                   });
  SparseHamiltonian h(n, n);
  h.setFromTriplets(entries.begin(), entries.end());
  h.prune(0.0);
  return h;
}

struct SolvedBlock {
  Eigen::VectorXd energies;
  Eigen::MatrixXd vectors;
};

// Records max |H - H^T| of a dense block and refuses one that is not symmetric.
void check_symmetric(const Eigen::MatrixXd& h, const char* state, int block, MultipletDiagnostics& diag) {
  const double asymmetry = (h - h.transpose()).cwiseAbs().maxCoeff();
  diag.max_asymmetry = std::max(diag.max_asymmetry, asymmetry);
  const double scale = std::max(1.0, h.cwiseAbs().maxCoeff() * static_cast<double>(h.rows()));
  if (asymmetry > 1e-10 * scale) {
    throw Error(std::string("multiplet: the ") + state + " Hamiltonian block " +
                std::to_string(block) + " is not symmetric (max |H - H^T| = " +
                std::to_string(asymmetry) + " eV)");
  }
}

SolvedBlock solve_block(const Eigen::MatrixXd& h, const char* state, int block,
                        MultipletDiagnostics& diag) {
  SolvedBlock out;
  if (h.rows() == 0) return out;
  check_symmetric(h, state, block, diag);
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

// The eigenvalues of the symmetric tridiagonal matrix with diagonal `a` and off-diagonal `b`
// (b[i] = T(i, i+1)), returned in `a`, and the first component of each normalised eigenvector, in
// `first`: implicit QR steps with the Wilkinson shift (Golub & Van Loan, Matrix Computations,
// 4th ed., algorithm 8.3.2) on each unreduced window, accumulating only the first row of the
// rotations. O(m^2) where a full eigen-decomposition is O(m^3).
void tridiagonal_first_components(std::vector<double>& a, std::vector<double> b, std::vector<double>& first) {
  const std::size_t n = a.size();
  first.assign(n, 0.0);
  if (n == 0) return;
  first[0] = 1.0;
  b.resize(n, 0.0);
  constexpr double kEps = std::numeric_limits<double>::epsilon();
  const auto negligible = [&](std::size_t i) {  // is T(i, i+1) zero to working precision?
    return std::abs(b[i]) <= kEps * (std::abs(a[i]) + std::abs(a[i + 1]));
  };
  std::size_t q = n - 1;
  std::size_t steps = 0;
  while (q > 0) {
    if (negligible(q - 1)) {
      b[q - 1] = 0.0;
      --q;
      continue;
    }
    std::size_t p = q - 1;
    while (p > 0 && !negligible(p - 1)) --p;
    if (++steps > 50 * n) throw Error("multiplet: the tridiagonal QR iteration did not converge");
    // Wilkinson shift: the eigenvalue of the window's last 2x2 block closer to its last entry.
    const double delta = 0.5 * (a[q - 1] - a[q]);
    const double bq = b[q - 1];
    const double mu = a[q] - bq * bq / (delta + std::copysign(std::sqrt(delta * delta + bq * bq), delta == 0.0 ? 1.0 : delta));
    double x = a[p] - mu, y = b[p];
    for (std::size_t k = p; k < q; ++k) {
      // The rotation G = [[c, -s], [s, c]] on rows and columns k, k+1 with G^T (x, y) = (r, 0):
      // the first one applies the shift, the others chase the bulge T(k-1, k+1) = y down.
      const double r = std::sqrt(x * x + y * y);  // entries are energies in eV: no overflow
      const double c = r == 0.0 ? 1.0 : x / r, s = r == 0.0 ? 0.0 : y / r;
      if (k > p) b[k - 1] = r;
      const double akk = a[k], ak1 = a[k + 1], bk = b[k];
      a[k] = c * c * akk + 2.0 * c * s * bk + s * s * ak1;
      a[k + 1] = s * s * akk - 2.0 * c * s * bk + c * c * ak1;
      b[k] = c * s * (ak1 - akk) + (c * c - s * s) * bk;
      if (k + 1 < q) {
        y = s * b[k + 1];
        b[k + 1] *= c;
        x = b[k];
      }
      const double zk = first[k], zk1 = first[k + 1];
      first[k] = c * zk + s * zk1;
      first[k + 1] = -s * zk + c * zk1;
    }
  }
}

// Solves (T - sigma I) x = rhs for the symmetric tridiagonal T (diagonal d, off-diagonal e) by
// Gaussian elimination with partial pivoting (the upper factor has two off-diagonals). A pivot
// that vanishes becomes `tiny`: inverse iteration at an exact eigenvalue wants a huge, finite x.
Eigen::VectorXd tridiagonal_solve(const Eigen::VectorXd& d, const Eigen::VectorXd& e, double sigma,
                                  Eigen::VectorXd rhs, double tiny) {
  const Eigen::Index n = d.size();
  std::vector<double> u0(static_cast<std::size_t>(n)), u1(u0.size(), 0.0), u2(u0.size(), 0.0);
  double r0 = d[0] - sigma, r1 = n > 1 ? e[0] : 0.0, r2 = 0.0;  // row i at columns i, i+1, i+2
  for (Eigen::Index i = 0; i + 1 < n; ++i) {
    double l = e[i], n1 = d[i + 1] - sigma, n2 = i + 2 < n ? e[i + 1] : 0.0;  // row i+1
    if (std::abs(l) > std::abs(r0)) {
      std::swap(r0, l);
      std::swap(r1, n1);
      std::swap(r2, n2);
      std::swap(rhs[i], rhs[i + 1]);
    }
    if (r0 == 0.0) r0 = tiny;
    const double m = l / r0;
    n1 -= m * r1;
    n2 -= m * r2;
    rhs[i + 1] -= m * rhs[i];
    const auto k = static_cast<std::size_t>(i);
    u0[k] = r0;
    u1[k] = r1;
    u2[k] = r2;
    r0 = n1;
    r1 = n2;
    r2 = 0.0;
  }
  u0.back() = r0 == 0.0 ? tiny : r0;
  Eigen::VectorXd x(n);
  for (Eigen::Index i = n - 1; i >= 0; --i) {
    const auto k = static_cast<std::size_t>(i);
    double v = rhs[i];
    if (i + 1 < n) v -= u1[k] * x[i + 1];
    if (i + 2 < n) v -= u2[k] * x[i + 2];
    x[i] = v / u0[k];
  }
  return x;
}

// An initial-state block: every eigenvalue, and eigenvectors only for the states asked for
// (those with a Boltzmann weight). Householder tridiagonalisation, eigenvalues by the tridiagonal
// QR iteration, and each vector asked for by inverse iteration on the tridiagonal matrix,
// orthogonalised within clusters of close eigenvalues, then transformed back. Where every vector
// is wanted (the final state) solve_block() is used instead.
struct InitialBlock {
  Eigen::MatrixXd h;
  Eigen::Tridiagonalization<Eigen::MatrixXd> tri;
  Eigen::VectorXd energies;            // ascending
  std::vector<Eigen::Index> columns;   // the eigenvalue indices of `vectors`' columns
  Eigen::MatrixXd vectors;
  Eigen::VectorXd vector(Eigen::Index i) const {
    const auto at = std::find(columns.begin(), columns.end(), i);
    if (at == columns.end()) throw Error("multiplet: no initial eigenvector " + std::to_string(i) + " was computed");
    return vectors.col(at - columns.begin());
  }
};

InitialBlock initial_eigenvalues(Eigen::MatrixXd h, int block, MultipletDiagnostics& diag) {
  InitialBlock out;
  out.h = std::move(h);
  if (out.h.rows() == 0) return out;
  check_symmetric(out.h, "initial", block, diag);
  out.tri.compute(out.h);
  const Eigen::VectorXd diagonal = out.tri.diagonal();  // (a strided view of the packed matrix)
  const Eigen::VectorXd sub = out.tri.subDiagonal();
  std::vector<double> values(diagonal.data(), diagonal.data() + diagonal.size());
  std::vector<double> first;
  tridiagonal_first_components(values, std::vector<double>(sub.data(), sub.data() + sub.size()), first);
  std::sort(values.begin(), values.end());
  out.energies = Eigen::Map<const Eigen::VectorXd>(values.data(), static_cast<Eigen::Index>(values.size()));
  return out;
}

void initial_vectors(InitialBlock& blk, const std::vector<Eigen::Index>& wanted, int block,
                     MultipletDiagnostics& diag) {
  const Eigen::Index n = blk.h.rows();
  blk.columns = wanted;
  blk.vectors.resize(n, static_cast<Eigen::Index>(wanted.size()));
  if (wanted.empty()) return;
  const Eigen::VectorXd d = blk.tri.diagonal();
  const Eigen::VectorXd e = blk.tri.subDiagonal();
  const double norm = std::max(1.0, d.cwiseAbs().maxCoeff() + 2.0 * (e.size() ? e.cwiseAbs().maxCoeff() : 0.0));
  const double tiny = std::numeric_limits<double>::epsilon() * norm;
  Eigen::MatrixXd y(n, static_cast<Eigen::Index>(wanted.size()));
  for (std::size_t k = 0; k < wanted.size(); ++k) {
    const double lambda = blk.energies[wanted[k]];
    // A start with every component nonzero (a fixed pseudo-random sequence).
    Eigen::VectorXd x(n);
    std::uint32_t seed = 2463534242u + static_cast<std::uint32_t>(k) * 2654435761u;
    for (Eigen::Index i = 0; i < n; ++i) {
      seed ^= seed << 13;
      seed ^= seed >> 17;
      seed ^= seed << 5;
      x[i] = 0.5 + static_cast<double>(seed % 1000u) / 1000.0;
    }
    for (int iteration = 0; iteration < 3; ++iteration) {
      x = tridiagonal_solve(d, e, lambda, x, tiny);
      // Within a cluster the iteration finds any vector of the cluster's space: keep it orthogonal
      // to the ones already found there.
      for (std::size_t j = 0; j < k; ++j) {
        if (std::abs(blk.energies[wanted[j]] - lambda) < 1e-3 * norm) {
          x -= y.col(static_cast<Eigen::Index>(j)).dot(x) * y.col(static_cast<Eigen::Index>(j));
        }
      }
      x /= x.norm();
    }
    y.col(static_cast<Eigen::Index>(k)) = x;
  }
  // Column by column: a vector's rounding then does not depend on how many others are asked for
  // (compute_sticks at several temperatures gives each one's sticks bit for bit).
  for (Eigen::Index k = 0; k < y.cols(); ++k) blk.vectors.col(k) = blk.tri.matrixQ() * y.col(k);
  Eigen::VectorXd lambdas(static_cast<Eigen::Index>(wanted.size()));
  for (std::size_t k = 0; k < wanted.size(); ++k) lambdas[static_cast<Eigen::Index>(k)] = blk.energies[wanted[k]];
  const Eigen::MatrixXd residual = blk.h * blk.vectors - blk.vectors * lambdas.asDiagonal();
  const double worst = residual.colwise().norm().maxCoeff() / std::max(1.0, blk.h.norm());
  diag.max_residual = std::max(diag.max_residual, worst);
  const double overlap =
      (blk.vectors.transpose() * blk.vectors - Eigen::MatrixXd::Identity(y.cols(), y.cols())).cwiseAbs().maxCoeff();
  if (worst > 1e-8 || overlap > 1e-8) {
    throw Error("multiplet: initial eigenvectors of block " + std::to_string(block) + ": residual " +
                std::to_string(worst) + ", loss of orthogonality " + std::to_string(overlap) +
                " (both must stay below 1e-8)");
  }
}

// ---------------------------------------------------------------------------------------------
// Lanczos for large final-state blocks

// The spectrum of one transition vector in one final block.
struct TransitionSpectrum {
  Eigen::VectorXd energies;   // ascending
  Eigen::VectorXd intensity;  // |<f|t>|^2 (exact eigenstates) or Gauss weights (Lanczos)
  Eigen::VectorXd j32;        // 2p3/2 character; NaN where not known (Lanczos)
};

// Lanczos from `start` on `h`: the Gauss quadrature of the spectral measure
// sum_f |<f|start>|^2 delta(E - E_f) from the tridiagonal matrix T_m of m steps, its nodes the
// eigenvalues of T_m and its weights |start|^2 times their eigenvectors' squared first
// components. It keeps the first 2m moments of the measure, and stays a good quadrature when the
// Lanczos vectors lose orthogonality (copies of converged eigenvalues then share their weight), so
// no reorthogonalisation is done (the newest vector is reorthogonalised against the two before
// it only). At step counts growing by half, the measure broadened by a Lorentzian of FWHM
// options.krylov_resolution_ev is compared with the previous one's: the run stops when it moved by
// at most options.krylov_tolerance of its maximum, or when a step finds nothing new (the
// quadrature is then exact).
struct LanczosRun {
  TransitionSpectrum spectrum;
  int steps = 0;
  double change = 0;  // the last relative change (0 when the space closed)
};

LanczosRun lanczos_spectrum(const SparseHamiltonian& h, const Eigen::VectorXd& start, double h_norm,
                            const SolverOptions& options, int block) {
  LanczosRun out;
  const double norm0 = start.norm();
  if (!(norm0 > 0.0)) return out;
  const Eigen::Index n = h.rows();
  const Eigen::Index cap = std::max<Eigen::Index>(64, options.krylov_max_steps);
  Eigen::VectorXd v_prev = Eigen::VectorXd::Zero(n), v = start / norm0, w(n);
  std::vector<double> alpha, beta;
  const double drop = 1e-10 * h_norm;
  Eigen::VectorXd grid, previous;
  std::size_t next_check = static_cast<std::size_t>(std::min<Eigen::Index>(n, 64));
  for (;;) {
    w.noalias() = h * v;
    double a = v.dot(w);
    w -= a * v;
    if (!beta.empty()) w -= beta.back() * v_prev;
    // Local reorthogonalisation against the two newest vectors.
    const double a2 = v.dot(w);
    w -= a2 * v;
    a += a2;
    if (!beta.empty()) w -= v_prev.dot(w) * v_prev;
    alpha.push_back(a);
    const double b = w.norm();
    const bool closed = !(b > drop);
    const std::size_t m = alpha.size();
    if (closed || m >= next_check || static_cast<Eigen::Index>(m) >= cap) {
      std::vector<double> nodes = alpha, first;
      tridiagonal_first_components(nodes, beta, first);
      std::vector<std::size_t> order(m);
      for (std::size_t i = 0; i < m; ++i) order[i] = i;
      std::sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return nodes[i] < nodes[j]; });
      TransitionSpectrum& ts = out.spectrum;
      ts.energies.resize(static_cast<Eigen::Index>(m));
      ts.intensity.resize(static_cast<Eigen::Index>(m));
      for (std::size_t i = 0; i < m; ++i) {
        ts.energies[static_cast<Eigen::Index>(i)] = nodes[order[i]];
        ts.intensity[static_cast<Eigen::Index>(i)] = norm0 * norm0 * first[order[i]] * first[order[i]];
      }
      ts.j32 = Eigen::VectorXd::Constant(static_cast<Eigen::Index>(m), std::numeric_limits<double>::quiet_NaN());
      out.steps = static_cast<int>(m);
      if (closed) {
        out.change = 0.0;
        return out;
      }
      // The broadened measure on a grid fixed at the first check: the extreme nodes only move
      // outwards as m grows, and by then they lie close to the extreme eigenvalues reached.
      if (grid.size() == 0) {
        const double margin = std::max(2.0, 10.0 * options.krylov_resolution_ev);
        const double from = ts.energies.minCoeff() - margin, to = ts.energies.maxCoeff() + margin;
        grid = Eigen::VectorXd::LinSpaced(
            static_cast<Eigen::Index>((to - from) / (0.25 * options.krylov_resolution_ev)) + 2, from, to);
      }
      const double gamma = 0.5 * options.krylov_resolution_ev;
      Eigen::VectorXd broadened = Eigen::VectorXd::Zero(grid.size());
      for (Eigen::Index i = 0; i < ts.energies.size(); ++i) {
        broadened.array() += ts.intensity[i] * gamma / ((grid.array() - ts.energies[i]).square() + gamma * gamma);
      }
      out.change = previous.size() == 0 ? 1.0
                                         : (broadened - previous).cwiseAbs().maxCoeff() /
                                               std::max(1e-300, broadened.cwiseAbs().maxCoeff());
      previous = std::move(broadened);
      if (out.change <= options.krylov_tolerance) return out;
      if (static_cast<Eigen::Index>(m) >= cap) {
        throw Error("multiplet: Lanczos on final block " + std::to_string(block) + " did not converge in " +
                    std::to_string(m) + " steps (last change " + std::to_string(out.change) +
                    " of the maximum, asked " + std::to_string(options.krylov_tolerance) + ")");
      }
      next_check = std::min<std::size_t>(static_cast<std::size_t>(cap), m + std::max<std::size_t>(m / 2, 32));
    }
    beta.push_back(b);
    v_prev.swap(v);
    v = w / b;
  }
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
        const std::int32_t row = final_space.find(target);
        if (row < 0) continue;
        w[row] += amplitude * element * sign_below(det, p) * sign_below(without_p, d);
      }
    }
  }
  return w;
}

// <S^2> = |S+ v|^2 + <Sz^2> + <Sz> of a vector over the determinants `dets`.
double spin_squared(const Eigen::VectorXd& v, const std::vector<std::uint32_t>& dets) {
  std::unordered_map<std::uint32_t, double> raised;
  double sz2 = 0.0, sz = 0.0;
  for (std::size_t k = 0; k < dets.size(); ++k) {
    const double a = v[static_cast<Eigen::Index>(k)];
    if (a == 0.0) continue;
    const std::uint32_t det = dets[k];
    int two_sz = 0;
    for (int i = 0; i < kMaxOrbitals; ++i) {
      if (det & (1u << i)) two_sz += kOrbitals[static_cast<std::size_t>(i)].two_sz;
    }
    sz += a * a * two_sz * 0.5;
    sz2 += a * a * two_sz * two_sz * 0.25;
    // S+ = sum over spatial orbitals of c+_{up} c_{down}; up = down + 1 in our numbering.
    for (int down = 0; down < kMaxOrbitals; down += 2) {
      const int up = down + 1;
      if (!(det & (1u << down)) || (det & (1u << up))) continue;
      const std::uint32_t without = det & ~(1u << down);
      raised[without | (1u << up)] += a * sign_below(det, down) * sign_below(without, up);
    }
  }
  double norm2 = 0.0;
  for (const auto& [mask, x] : raised) norm2 += x * x;
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
  if (p.charge_transfer.configurations > 1) {
    s.orbitals = kMaxOrbitals;
    const ChargeTransferParameters& ct = p.charge_transfer;
    const auto or_else = [](double v, double fallback) { return std::isnan(v) ? fallback : v; };
    s.v_b1 = or_else(ct.v_b1, ct.v_eg);
    s.v_a1 = or_else(ct.v_a1, ct.v_eg);
    s.v_b2 = or_else(ct.v_b2, ct.v_t2g);
    s.v_e = or_else(ct.v_e, ct.v_t2g);
    s.ligand_tendq = p.charge_transfer.ligand_tendq;
  }
  return s;
}

// The parameters of the configurations with transferred electrons: configuration 1's, with the
// atomic terms of `transferred` where it gives them (NaN: keep configuration 1's).
StateParameters transferred_state(const StateParameters& base, const TransferredTerms& transferred, bool final) {
  StateParameters s = base;
  const auto set = [](double& target, double value) {
    if (!std::isnan(value)) target = value;
  };
  if (!final) {
    set(s.f_dd[2], transferred.f2dd_initial);
    set(s.f_dd[4], transferred.f4dd_initial);
    set(s.zeta3d, transferred.zeta3d_initial);
  } else {
    set(s.f_dd[2], transferred.f2dd_final);
    set(s.f_dd[4], transferred.f4dd_final);
    set(s.f_pd[2], transferred.f2pd);
    set(s.g_pd[1], transferred.g1pd);
    set(s.g_pd[3], transferred.g3pd);
    set(s.zeta3d, transferred.zeta3d_final);
    set(s.zeta2p, transferred.zeta2p);
  }
  return s;
}

// The diagonal of the Hamiltonian without hopping for one determinant: its one-body diagonal and
// the antisymmetrised direct-minus-exchange pairs.
double diagonal_energy(std::uint32_t det, int orbitals, const OneBody& t, const TwoBody& v) {
  double e = 0.0;
  for (int i = 0; i < orbitals; ++i) {
    if (det & (1u << i)) e += t(i, i);
  }
  for (int c = 0; c < kNumOrbitals; ++c) {
    if (!(det & (1u << c))) continue;
    for (int d = c + 1; d < kNumOrbitals; ++d) {
      if (!(det & (1u << d))) continue;
      for (const PairTerm& term : v[static_cast<std::size_t>(c * kMaxOrbitals + d)]) {
        if (term.a == c && term.b == d) e += term.value;
      }
    }
  }
  return e;
}

// Each configuration's average energy (diagonal_energy over all its determinants), by its 3d count
// less n_d0.
std::vector<double> configuration_averages(const Space& space, int n_d0, int configurations,
                                           const std::vector<ConfigTerms>& terms) {
  std::vector<double> sum(static_cast<std::size_t>(configurations), 0.0), count(sum.size(), 0.0);
  for (const auto& block : space.blocks) {
    for (const std::uint32_t det : block) {
      const auto k = static_cast<std::size_t>(std::popcount(det & kDMask) - n_d0);
      const ConfigTerms& own = terms_of(terms, det, n_d0);
      sum[k] += diagonal_energy(det, space.orbitals, own.t, own.v);
      count[k] += 1.0;
    }
  }
  for (std::size_t k = 0; k < sum.size(); ++k) sum[k] = count[k] > 0 ? sum[k] / count[k] : 0.0;
  return sum;
}

// The constants that put each configuration's average at its configuration energy relative to the
// first one's: 0, delta, 2 delta + udd (`delta` is delta' in the final state). The first
// configuration keeps the crystal-field model's own energies.
std::vector<double> configuration_shifts(const std::vector<double>& averages, double delta, double udd) {
  std::vector<double> shift(averages.size(), 0.0);
  for (std::size_t k = 1; k < averages.size(); ++k) {
    const double wanted = k == 1 ? delta : 2.0 * delta + udd;
    shift[k] = wanted - (averages[k] - averages[0]);
  }
  return shift;
}

StateParameters final_state(const MultipletParameters& p) {
  StateParameters s = initial_state(p);  // the hopping and ligand field are the same
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

TransferredTerms make_transferred_terms(const HartreeFockValues& lower, const ParameterScaling& scaling) {
  TransferredTerms t;
  t.f2dd_initial = scaling.slater_dd * lower.f2dd_initial;
  t.f4dd_initial = scaling.slater_dd * lower.f4dd_initial;
  t.zeta3d_initial = scaling.zeta * lower.zeta3d_initial;
  t.f2dd_final = scaling.slater_dd * lower.f2dd_final;
  t.f4dd_final = scaling.slater_dd * lower.f4dd_final;
  t.f2pd = scaling.slater_pd * lower.f2pd;
  t.g1pd = scaling.slater_pd * lower.g1pd;
  t.g3pd = scaling.slater_pd * lower.g3pd;
  t.zeta3d_final = scaling.zeta * lower.zeta3d_final;
  t.zeta2p = scaling.zeta * lower.zeta2p;
  return t;
}

TransferredTerms transferred_terms_of(const Ion& ion, const AtomicTable& table, const ParameterScaling& scaling,
                                      std::string* from) {
  const std::string lower_name = ion.element + std::to_string(ion.charge - 1) + "+";
  if (ion.charge > 1) {
    try {
      const Ion lower = parse_ion(lower_name);
      TransferredTerms terms = make_transferred_terms(table.lookup(lower), scaling);
      if (from != nullptr) *from = lower.name();
      return terms;
    } catch (const Error&) {
      // not in the table: the ion's own terms
    }
  }
  if (from != nullptr) *from = ion.name() + "'s own (no " + lower_name + " in the table)";
  return {};
}

StickSpectrum compute_sticks(const MultipletParameters& p, const SolverOptions& options) {
  return std::move(compute_sticks(p, {p.temperature_k}, options).front());
}

std::vector<StickSpectrum> compute_sticks(const MultipletParameters& p, const std::vector<double>& temperatures_k,
                                          const SolverOptions& options) {
  if (p.n3d < 0 || p.n3d > 9) {
    throw Error("multiplet: n3d = " + std::to_string(p.n3d) + " is outside 0..9");
  }
  const ChargeTransferParameters& ct = p.charge_transfer;
  if (ct.configurations < 1 || ct.configurations > 3) {
    throw Error("multiplet: charge_transfer.configurations = " + std::to_string(ct.configurations) +
                " is outside 1..3");
  }
  if (ct.configurations > 1 && p.symmetry == CrystalSymmetry::kOh &&
      !(std::isnan(ct.v_b1) && std::isnan(ct.v_a1) && std::isnan(ct.v_b2) && std::isnan(ct.v_e))) {
    throw Error("multiplet: the D4h hoppings v_b1, v_a1, v_b2, v_e need symmetry D4h (Oh has v_eg and v_t2g)");
  }
  if (p.n3d + ct.configurations - 1 > 10) {
    throw Error("multiplet: 3d^" + std::to_string(p.n3d) + " has room for " + std::to_string(10 - p.n3d) +
                " transferred electrons, not " + std::to_string(ct.configurations - 1));
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
  const int configs = ct.configurations;
  const Space initial = make_space(6, p.n3d, configs, blocked);
  // The final state holds the configurations that fit in the 3d shell (3d^10 takes no more).
  const int final_configs = std::min(configs, 10 - p.n3d);
  const Space final_space = make_space(5, p.n3d + 1, final_configs, blocked);
  diag.initial_dimension = initial.dimension;
  diag.final_dimension = final_space.dimension;

  const StateParameters si = initial_state(p);
  const StateParameters sf = final_state(p);
  // Configuration 1's terms, and with charge transfer those of the configurations with transferred
  // electrons (their own atomic parameters when given).
  std::vector<ConfigTerms> ti{{one_body(si), two_body(si)}};
  std::vector<ConfigTerms> tf{{one_body(sf), two_body(sf)}};
  if (configs > 1) {
    const StateParameters si2 = transferred_state(si, ct.transferred, false);
    const StateParameters sf2 = transferred_state(sf, ct.transferred, true);
    ti.push_back({one_body(si2), two_body(si2)});
    tf.push_back({one_body(sf2), two_body(sf2)});
  }
  // Each configuration's average energy; with one configuration the mean of the diagonal.
  const std::vector<double> averages_i = configuration_averages(initial, p.n3d, configs, ti);
  const std::vector<double> averages_f = configuration_averages(final_space, p.n3d + 1, final_configs, tf);
  std::vector<double> shift_i, shift_f;
  if (configs > 1) {
    shift_i = configuration_shifts(averages_i, ct.delta, ct.udd);
    shift_f = configuration_shifts(averages_f, ct.delta + ct.udd - ct.upd, ct.udd);
  }

  std::array<InitialBlock, kNumBlocks> initial_blocks;
  for (int b = 0; b < kNumBlocks; ++b) {
    const auto& dets = initial.blocks[static_cast<std::size_t>(b)];
    diag.initial_block_sizes.push_back(static_cast<int>(dets.size()));
    initial_blocks[static_cast<std::size_t>(b)] =
        initial_eigenvalues(build_block(dets, initial, ti, p.n3d, shift_i), b, diag);
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
    int multiplicity = 1;  // 0: its time-reversal partner stands for it; 2: it stands for both
  };
  std::vector<Weighted> weighted;
  for (int b = 0; b < kNumBlocks; ++b) {
    auto& blk = initial_blocks[static_cast<std::size_t>(b)];
    std::vector<Eigen::Index> wanted;
    for (Eigen::Index i = 0; i < blk.energies.size(); ++i) {
      if (boltzmann(blk.energies[i] - e0, hottest) > 1e-8) {
        weighted.push_back({b, i, blk.energies[i]});
        wanted.push_back(i);
      }
    }
    initial_vectors(blk, wanted, b, diag);
  }
  double spin2_sum = 0.0;
  for (int b = 0; b < kNumBlocks; ++b) {
    const auto& blk = initial_blocks[static_cast<std::size_t>(b)];
    for (Eigen::Index i = 0; i < blk.energies.size(); ++i) {
      if (blk.energies[i] - e0 < kDegenerate) {
        ++diag.ground_degeneracy;
        spin2_sum += spin_squared(blk.vector(i), initial.blocks[static_cast<std::size_t>(b)]);
      }
    }
  }
  diag.ground_spin_squared = spin2_sum / diag.ground_degeneracy;
  // The ground manifold's configuration weights, and its energy from the first configuration's
  // average (with one configuration that average is the diagonal's mean over the space).
  diag.ground_weights.assign(static_cast<std::size_t>(configs), 0.0);
  for (int b = 0; b < kNumBlocks; ++b) {
    const auto& blk = initial_blocks[static_cast<std::size_t>(b)];
    const auto& dets = initial.blocks[static_cast<std::size_t>(b)];
    for (Eigen::Index i = 0; i < blk.energies.size(); ++i) {
      if (blk.energies[i] - e0 >= kDegenerate) continue;
      const Eigen::VectorXd g = blk.vector(i);
      for (std::size_t k = 0; k < dets.size(); ++k) {
        const double a = g[static_cast<Eigen::Index>(k)];
        diag.ground_weights[static_cast<std::size_t>(std::popcount(dets[k] & kDMask) - p.n3d)] +=
            a * a / diag.ground_degeneracy;
      }
    }
  }
  diag.ground_energy_from_average_ev = e0 - averages_i[0];
  diag.initial_average_ev = averages_i[0];
  diag.final_average_ev = averages_f[0];
  if (options.ground_state_only) {
    std::vector<StickSpectrum> results(temperatures_k.size());
    for (auto& r : results) {
      r.zeta2p = p.zeta2p;
      r.diagnostics = diag;
    }
    return results;
  }

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
  // Time reversal: without an exchange field both Hamiltonians commute with it, so the partner of
  // an initial state g, in the block of -2Jz, has g's energy, and its spectrum at q is g's at -q.
  // For the spectra that take q = 0 alone or q = +1 and -1 alike (isotropic, x, y, z) the two are
  // the same: the states of one of each pair of partner blocks are left out and the other's count
  // twice. A block that is its own partner (2Jz = 0 or 4 mod 8) is computed as it is.
  const bool time_reversal = blocked && p.exchange_field == 0.0 &&
                             p.polarization != BeamPolarization::kLeft &&
                             p.polarization != BeamPolarization::kRight;
  const int parity = (6 + p.n3d) % 2;  // of 2*Jz: the number of electrons
  const auto partner_block = [parity](int b) { return ((-(2 * b + parity)) % 8 + 8) % 8 / 2; };
  for (auto& w : weighted) {
    if (!time_reversal) continue;
    const int partner = partner_block(w.block);
    w.multiplicity = partner == w.block ? 1 : partner > w.block ? 2 : 0;
  }
  for (const auto& w : weighted) {
    if (w.multiplicity == 0) continue;
    for (int q : qs) needed[static_cast<std::size_t>(final_block_of(w.block, q))] = true;
  }
  // The 2p spin-orbit operator alone, sum over 2p electrons of l.s, gives each final state's core
  // hole character: with one hole in 2p6, <l.s>_hole = -<sum l.s>_electrons, and the projector on
  // the hole's j = 3/2 is (2/3)(1 + l.s) (l.s = 1/2 for j = 3/2, -1 for j = 1/2).
  StateParameters so_only;
  so_only.zeta2p = 1.0;
  const std::vector<ConfigTerms> t_so{{one_body(so_only), TwoBody(kMaxOrbitals * kMaxOrbitals)}};
  // Each needed final block, with the transition vectors T_q g of every weighted initial state g
  // that land in it: blocks below options.krylov_min_dimension are diagonalised whole, larger ones
  // give each vector's spectrum by Lanczos.
  std::vector<std::vector<TransitionSpectrum>> transitions(weighted.size(),
                                                           std::vector<TransitionSpectrum>(qs.size()));
  for (int b = 0; b < kNumBlocks; ++b) {
    const auto& dets = final_space.blocks[static_cast<std::size_t>(b)];
    diag.final_block_sizes.push_back(static_cast<int>(dets.size()));
    diag.lanczos_steps.push_back(0);
    if (!needed[static_cast<std::size_t>(b)] || dets.empty()) continue;
    const bool krylov = static_cast<int>(dets.size()) >= options.krylov_min_dimension;
    SolvedBlock fblk;
    Eigen::VectorXd j32;
    SparseHamiltonian sparse;
    double h_norm = 1.0;  // the largest absolute column sum, an upper bound of ||H||_2
    if (!krylov) {
      fblk = solve_block(build_block(dets, final_space, tf, p.n3d + 1, shift_f), "final", b, diag);
      const Eigen::MatrixXd so = build_block(dets, final_space, t_so, p.n3d + 1);
      const Eigen::VectorXd ls_electrons =
          fblk.vectors.cwiseProduct(so * fblk.vectors).colwise().sum().transpose();
      j32 = ((2.0 / 3.0) * (1.0 - ls_electrons.array())).cwiseMax(0.0).cwiseMin(1.0).matrix();
    } else {
      sparse = build_sparse_block(dets, final_space, tf, p.n3d + 1, shift_f);
      const SparseHamiltonian diff = sparse - SparseHamiltonian(sparse.transpose());
      double asymmetry = 0.0;
      for (Eigen::Index k = 0; k < diff.nonZeros(); ++k) asymmetry = std::max(asymmetry, std::abs(diff.valuePtr()[k]));
      for (Eigen::Index k = 0; k < sparse.outerSize(); ++k) {
        double sum = 0.0;
        for (SparseHamiltonian::InnerIterator it(sparse, k); it; ++it) sum += std::abs(it.value());
        h_norm = std::max(h_norm, sum);
      }
      diag.max_asymmetry = std::max(diag.max_asymmetry, asymmetry);
      if (asymmetry > 1e-12 * h_norm) {
        throw Error("multiplet: the final Hamiltonian block " + std::to_string(b) +
                    " is not symmetric (max |H - H^T| = " + std::to_string(asymmetry) + " eV)");
      }
    }
    for (std::size_t k = 0; k < weighted.size(); ++k) {
      const Weighted& w = weighted[k];
      if (w.multiplicity == 0) continue;
      for (std::size_t iq = 0; iq < qs.size(); ++iq) {
        if (final_block_of(w.block, qs[iq]) != b) continue;
        const auto& initial_dets = initial.blocks[static_cast<std::size_t>(w.block)];
        const Eigen::VectorXd g = initial_blocks[static_cast<std::size_t>(w.block)].vector(w.column);
        const Eigen::VectorXd t = apply_dipole(qs[iq], g, initial_dets, final_space, b);
        TransitionSpectrum& ts = transitions[k][iq];
        if (!krylov) {
          ts.energies = fblk.energies;
          ts.intensity = (fblk.vectors.transpose() * t).array().square().matrix();
          ts.j32 = j32;
        } else {
          LanczosRun run = lanczos_spectrum(sparse, t, h_norm, options, b);
          diag.lanczos_steps.back() = std::max(diag.lanczos_steps.back(), run.steps);
          diag.lanczos_change = std::max(diag.lanczos_change, run.change);
          ts = std::move(run.spectrum);
        }
      }
    }
  }

  // Polarisation weights per q: isotropic averages q = -1, 0, +1; x and y reach the q = -1 and
  // q = +1 final states, which lie in different blocks and so never interfere: each gets 1/2.
  const double q_weight = p.polarization == BeamPolarization::kIsotropic ? 1.0 / 3.0
                          : (p.polarization == BeamPolarization::kX ||
                             p.polarization == BeamPolarization::kY)
                              ? 0.5
                              : 1.0;

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
        const TransitionSpectrum& ts = transitions[k][iq];
        const double scale = q_weight * weight[k] * weighted[k].multiplicity / total_weight;
        for (Eigen::Index f = 0; f < ts.energies.size(); ++f) {
          const double intensity = scale * ts.intensity[f];
          if (intensity > 0.0) sticks.push_back({ts.energies[f] - weighted[k].energy, intensity, ts.j32[f]});
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
