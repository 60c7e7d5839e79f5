// Mixed valence: two-component non-negative fits of a spectrum with library spectra
// (xasmap/core/mixture.hpp).

#include "xasmap/core/mixture.hpp"

#include <Eigen/Cholesky>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/model.hpp"

namespace xasmap {

double holes_of_ion(const std::string& ion) { return 10.0 - parse_ion(ion).n3d; }

namespace {

// A two-column non-negative least-squares fit of q by weights on y_a and y_b, from the dot
// products: aa = y_a.y_a, ab = y_a.y_b, bb = y_b.y_b, qa = q.y_a, qb = q.y_b, qq = q.q.
// Both weights positive, or the pair is no better than its best single column (infinite rss).
struct PairFit {
  double wa = 0, wb = 0, rss = std::numeric_limits<double>::infinity();
};

PairFit fit_pair(double aa, double ab, double bb, double qa, double qb, double qq) {
  PairFit f;
  const double det = aa * bb - ab * ab;
  if (!(det > 1e-12 * aa * bb)) return f;  // (nearly) the same shape
  f.wa = (bb * qa - ab * qb) / det;
  f.wb = (aa * qb - ab * qa) / det;
  if (!(f.wa > 0 && f.wb > 0)) return PairFit{};
  f.rss = std::max(0.0, qq - f.wa * qa - f.wb * qb);
  return f;
}

// Non-negative least squares in normal form: min w'Gw - 2 w'r over w >= 0 (Lawson and Hanson's
// active set method, for the few columns of a mixture).
Eigen::VectorXd nnls(const Eigen::MatrixXd& g, const Eigen::VectorXd& r) {
  const Eigen::Index k = r.size();
  Eigen::VectorXd w = Eigen::VectorXd::Zero(k);
  std::vector<bool> free(static_cast<std::size_t>(k), false);
  for (int iteration = 0; iteration < 3 * k + 10; ++iteration) {
    const Eigen::VectorXd gradient = r - g * w;  // the negative gradient (halved)
    Eigen::Index enter = -1;
    double best = 1e-12 * (1.0 + r.cwiseAbs().maxCoeff());
    for (Eigen::Index i = 0; i < k; ++i) {
      if (!free[static_cast<std::size_t>(i)] && gradient[i] > best) {
        best = gradient[i];
        enter = i;
      }
    }
    if (enter < 0) break;
    free[static_cast<std::size_t>(enter)] = true;
    for (int inner = 0; inner < 3 * k + 10; ++inner) {
      std::vector<Eigen::Index> f;
      for (Eigen::Index i = 0; i < k; ++i) {
        if (free[static_cast<std::size_t>(i)]) f.push_back(i);
      }
      const auto m = static_cast<Eigen::Index>(f.size());
      Eigen::MatrixXd gf(m, m);
      Eigen::VectorXd rf(m);
      for (Eigen::Index i = 0; i < m; ++i) {
        rf[i] = r[f[static_cast<std::size_t>(i)]];
        for (Eigen::Index j = 0; j < m; ++j) gf(i, j) = g(f[static_cast<std::size_t>(i)], f[static_cast<std::size_t>(j)]);
      }
      const Eigen::LDLT<Eigen::MatrixXd> ldlt(gf);
      Eigen::VectorXd z = ldlt.solve(rf);
      if (ldlt.info() != Eigen::Success || !z.allFinite()) {
        free[static_cast<std::size_t>(enter)] = false;  // degenerate: leave it out
        return w;
      }
      if (z.minCoeff() > 0) {
        w.setZero();
        for (Eigen::Index i = 0; i < m; ++i) w[f[static_cast<std::size_t>(i)]] = z[i];
        break;
      }
      // Step towards z until the first free weight reaches 0, and fix it there.
      double alpha = 1.0;
      for (Eigen::Index i = 0; i < m; ++i) {
        const double wi = w[f[static_cast<std::size_t>(i)]];
        if (z[i] <= 0 && wi - z[i] > 0) alpha = std::min(alpha, wi / (wi - z[i]));
      }
      for (Eigen::Index i = 0; i < m; ++i) {
        const Eigen::Index j = f[static_cast<std::size_t>(i)];
        w[j] += alpha * (z[i] - w[j]);
        if (w[j] <= 1e-15) {
          w[j] = 0;
          free[static_cast<std::size_t>(j)] = false;
        }
      }
    }
  }
  return w;
}

}  // namespace

Mixture Model::mixture(const Prepared& prepared, const Estimate& e, const MixtureOptions& o) const {
  Mixture out;
  const auto single_from_estimate = [&] {
    out.single_phase = true;
    out.components.clear();
    if (e.class_parameter < 0 || e.class_values.empty()) return out;
    const double c = e.values[static_cast<std::size_t>(e.class_parameter)];
    // The spread of the charge's probabilities: the single-phase value's uncertainty.
    double var = 0;
    for (std::size_t k = 0; k < e.class_values.size(); ++k) {
      const double p = k < e.class_probability.size() ? e.class_probability[k] : 0.0;
      var += p * (e.class_values[k] - c) * (e.class_values[k] - c);
    }
    out.mean_value = c;
    out.mean_value_sd = std::sqrt(var);
    out.components.push_back({c, 1.0, 0.0, -1, 1.0});
    return out;
  };
  if (class_parameter_ < 0 || class_values_.size() < 2 || labels_.empty()) return single_from_estimate();

  const Window& w = prepared.window;
  const int n = w.size();
  const PreprocessOptions& pre = options_.preprocess;
  const Eigen::Index per_spectrum = prepared_.rows() / static_cast<Eigen::Index>(labels_.size());
  const Eigen::VectorXd q = prepared.values.segment(w.first, n).cast<double>().transpose();
  const double qq = q.squaredNorm();
  const auto class_of = [&](Eigen::Index s) {
    return values_[static_cast<std::size_t>(s)][static_cast<std::size_t>(class_parameter_)];
  };
  // The shared parameters' values of each spectrum: only spectra with equal ones combine.
  std::vector<std::size_t> shared;
  for (const std::string& name : o.shared_parameters) {
    for (std::size_t p = 0; p < parameters_.size(); ++p) {
      if (parameters_[p].name == name) shared.push_back(p);
    }
  }
  const auto same_setting = [&](Eigen::Index a, Eigen::Index b) {
    for (std::size_t p : shared) {
      if (values_[static_cast<std::size_t>(a)][p] != values_[static_cast<std::size_t>(b)][p]) return false;
    }
    return true;
  };

  // The library at one shifted copy: every spectrum on the window as the spectrum is preprocessed
  // (unit area), the share of its whole edge's area the window holds, its single fit, and the
  // best pair of two classes (seeded by their best single fits, then alternating).
  const auto spectra = static_cast<Eigen::Index>(labels_.size());
  const Window full{0, pre.grid.size - 1};
  struct Best {
    double rss = std::numeric_limits<double>::infinity();
    Eigen::Index a = -1, b = -1;
    PairFit fit;
  };
  struct CopyFit {
    Eigen::MatrixXd y;
    std::vector<double> share;
    Eigen::VectorXd qy, yy;
    std::map<double, std::vector<std::pair<double, Eigen::Index>>> ranked;  // class -> (rss, spectrum)
    double best_single = std::numeric_limits<double>::infinity();
    Best best;
    // The final fit: each component widened (below), its columns, their class (0: a, 1: b),
    // non-negative weights, the classes' summed weights and the residual.
    std::vector<Eigen::Index> columns;
    std::vector<int> column_class;
    Eigen::VectorXd weights;
    double wa = 0, wb = 0, rss = std::numeric_limits<double>::infinity();
  };
  // Each component of the best pair widened to the `per_class` spectra of its class that best
  // explain what the other leaves (a measured component lies between the library's grid points
  // and settings), and all of them fitted at once, non-negative: a class's weight is the sum of
  // its spectra's. When that is no better, the pair alone.
  const auto widen_fit = [&](CopyFit& c) {
    const Best& best = c.best;
    const auto widen = [&](double value, Eigen::Index held, double held_weight, int tag) {
      const Eigen::VectorXd rest = q - held_weight * c.y.row(held).transpose();
      std::vector<std::pair<double, Eigen::Index>> fits;
      for (const auto& [r, s] : c.ranked[value]) {
        if (!same_setting(s, held)) continue;
        const double p = c.y.row(s).dot(rest);
        if (p > 0) fits.push_back({-p * p / c.yy[s], s});
      }
      std::sort(fits.begin(), fits.end());
      for (std::size_t k = 0; k < fits.size() && k < static_cast<std::size_t>(std::max(1, o.per_class)); ++k) {
        c.columns.push_back(fits[k].second);
        c.column_class.push_back(tag);
      }
    };
    widen(class_of(best.a), best.b, best.fit.wb, 0);
    widen(class_of(best.b), best.a, best.fit.wa, 1);
    const auto k = static_cast<Eigen::Index>(c.columns.size());
    Eigen::MatrixXd gram(k, k);
    Eigen::VectorXd rhs(k);
    for (Eigen::Index i = 0; i < k; ++i) {
      rhs[i] = c.qy[c.columns[static_cast<std::size_t>(i)]];
      for (Eigen::Index j = 0; j <= i; ++j) {
        gram(i, j) = gram(j, i) =
            c.y.row(c.columns[static_cast<std::size_t>(i)]).dot(c.y.row(c.columns[static_cast<std::size_t>(j)]));
      }
    }
    c.weights = nnls(gram, rhs);
    c.wa = c.wb = 0;
    for (Eigen::Index i = 0; i < k; ++i) (c.column_class[static_cast<std::size_t>(i)] == 0 ? c.wa : c.wb) += c.weights[i];
    c.rss = std::max(0.0, qq - 2.0 * c.weights.dot(rhs) + c.weights.dot(gram * c.weights));
    if (!(c.wa > 0 && c.wb > 0) || !(c.rss < best.rss)) {
      c.wa = best.fit.wa;
      c.wb = best.fit.wb;
      c.rss = best.rss;
      c.columns = {best.a, best.b};
      c.column_class = {0, 1};
      c.weights = Eigen::Vector2d(c.wa, c.wb);
    }
  };
  const auto fit_copy = [&](Eigen::Index copy) {
    CopyFit c;
    c.y.resize(spectra, n);
    c.share.assign(static_cast<std::size_t>(spectra), 1.0);
    RowVectorXf shaped, whole;
    for (Eigen::Index s = 0; s < spectra; ++s) {
      const auto row = prepared_.row(s * per_spectrum + copy);
      try {
        const double on_window = apply_window_into(row, w, pre, shaped);
        c.y.row(s) = shaped.segment(w.first, n).cast<double>();
        if (!(w.first == full.first && w.last == full.last)) {
          const double on_grid = apply_window_into(row, full, pre, whole);
          if (on_grid > 0 && on_window > 0) c.share[static_cast<std::size_t>(s)] = on_window / on_grid;
        }
      } catch (const PreprocessError&) {
        c.y.row(s).setZero();  // flat on this window: never chosen
      }
    }
    c.qy = c.y * q;
    c.yy = c.y.rowwise().squaredNorm();
    for (Eigen::Index s = 0; s < spectra; ++s) {
      if (!(c.yy[s] > 0)) continue;
      const double k = c.qy[s] / c.yy[s];
      const double r = k > 0 ? qq - k * c.qy[s] : qq;
      c.ranked[class_of(s)].push_back({r, s});
      c.best_single = std::min(c.best_single, r);
    }
    for (auto& [value, list] : c.ranked) std::sort(list.begin(), list.end());
    const auto pair_of = [&](Eigen::Index a, Eigen::Index b) {
      if (!same_setting(a, b)) return PairFit{};
      return fit_pair(c.yy[a], c.y.row(a).dot(c.y.row(b)), c.yy[b], c.qy[a], c.qy[b], qq);
    };
    for (auto ia = c.ranked.begin(); ia != c.ranked.end(); ++ia) {
      for (auto ib = std::next(ia); ib != c.ranked.end(); ++ib) {
        const auto& la = ia->second;
        const auto& lb = ib->second;
        Best local;
        const auto seeds = static_cast<std::size_t>(std::max(1, o.candidates));
        for (std::size_t i = 0; i < std::min(seeds, la.size()); ++i) {
          for (std::size_t j = 0; j < std::min(seeds, lb.size()); ++j) {
            const PairFit f = pair_of(la[i].second, lb[j].second);
            if (f.rss < local.rss) local = {f.rss, la[i].second, lb[j].second, f};
          }
        }
        if (local.a < 0) continue;
        const auto searched = static_cast<std::size_t>(std::max(1, o.search_per_class));
        for (int pass = 0; pass < o.refinements; ++pass) {
          const double before = local.rss;
          for (std::size_t i = 0; i < std::min(searched, la.size()); ++i) {  // a, with b held
            const PairFit f = pair_of(la[i].second, local.b);
            if (f.rss < local.rss) local = {f.rss, la[i].second, local.b, f};
          }
          for (std::size_t j = 0; j < std::min(searched, lb.size()); ++j) {  // b, with a held
            const PairFit f = pair_of(local.a, lb[j].second);
            if (f.rss < local.rss) local = {f.rss, local.a, lb[j].second, f};
          }
          if (!(local.rss < before)) break;
        }
        if (local.rss < c.best.rss) c.best = local;
      }
    }
    if (c.best.a >= 0) widen_fit(c);
    return c;
  };

  // The components' common shift: a mixture's single best match sits at a compromise shift (up to
  // 0.5 eV from the true one), so the copies within shift_search_ev of no shift are tried, every
  // third one first and then the neighbours of the best.
  Eigen::Index nearest = 0;
  for (Eigen::Index j = 1; j < per_spectrum; ++j) {
    if (std::abs(row_shift_[static_cast<std::size_t>(j)]) < std::abs(row_shift_[static_cast<std::size_t>(nearest)])) {
      nearest = j;
    }
  }
  // Only the best copy's fit is kept; the others are remembered as tried.
  std::set<Eigen::Index> tried;
  Eigen::Index copy = -1;
  CopyFit chosen;
  double best_single = std::numeric_limits<double>::infinity();
  const auto try_copy = [&](Eigen::Index j) {
    if (j < 0 || j >= per_spectrum || tried.count(j)) return;
    if (std::abs(row_shift_[static_cast<std::size_t>(j)] - row_shift_[static_cast<std::size_t>(nearest)]) >
        o.shift_search_ev + 1e-9) {
      return;
    }
    CopyFit c = fit_copy(j);
    tried.insert(j);
    best_single = std::min(best_single, c.best_single);
    if (copy < 0 || c.rss < chosen.rss) {
      copy = j;
      chosen = std::move(c);
    }
  };
  try_copy(nearest);
  for (Eigen::Index j = nearest - 3; j >= 0; j -= 3) try_copy(j);
  for (Eigen::Index j = nearest + 3; j < per_spectrum; j += 3) try_copy(j);
  for (int round = 0; round < 2; ++round) {
    const Eigen::Index b = copy;
    try_copy(b - 1);
    try_copy(b + 1);
  }
  out.shift_ev = row_shift_[static_cast<std::size_t>(copy)];
  const Eigen::MatrixXd& y = chosen.y;
  const std::vector<double>& share = chosen.share;
  const Best best = chosen.best;
  out.rss_single = best_single;
  if (best.a < 0) {
    out.rss_mixture = best_single;
    return single_from_estimate();
  }

  const double ca = class_of(best.a), cb = class_of(best.b);
  const std::vector<Eigen::Index>& columns = chosen.columns;
  const std::vector<int>& column_class = chosen.column_class;
  const Eigen::VectorXd& weights = chosen.weights;
  const double wa = chosen.wa, wb = chosen.wb, rss = chosen.rss;
  out.rss_mixture = rss;
  out.gain = best_single > 0 ? 1.0 - rss / best_single : 0.0;

  // Atom fractions from the area weights (each column's own window share), and their standard
  // deviation from the fit's residual variance over the window through the class weights'
  // covariance, times interval_scale (calibrated: the residual is not white).
  const auto holes = [&](double c) {
    const auto it = o.holes.find(c);
    return it != o.holes.end() && it->second > 0 ? it->second : 1.0;
  };
  double ua = 0, ub = 0;  // atoms, up to a common factor
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const double u = weights[static_cast<Eigen::Index>(i)] /
                     (holes(column_class[i] == 0 ? ca : cb) * share[static_cast<std::size_t>(columns[i])]);
    (column_class[i] == 0 ? ua : ub) += u;
  }
  const double fa = ua / (ua + ub);
  // Class weights' covariance from the two-column fit of each class's summed spectrum.
  Eigen::VectorXd ya = Eigen::VectorXd::Zero(n), yb = Eigen::VectorXd::Zero(n);
  for (std::size_t i = 0; i < columns.size(); ++i) {
    (column_class[i] == 0 ? ya : yb) += weights[static_cast<Eigen::Index>(i)] * y.row(columns[i]).transpose();
  }
  ya /= wa;
  yb /= wb;
  const double aa = ya.squaredNorm(), bb = yb.squaredNorm(), ab = ya.dot(yb);
  const double det = std::max(aa * bb - ab * ab, 1e-300);
  const double s2 = rss / std::max<Eigen::Index>(1, n - static_cast<Eigen::Index>(columns.size()));
  const double var_wa = s2 * bb / det, var_wb = s2 * aa / det, cov = -s2 * ab / det;
  const double ka = ua / wa, kb = ub / wb;  // atoms per unit of class weight
  const double d = (ua + ub) * (ua + ub);
  const double ga = ka * ub / d, gb = -kb * ua / d;  // dfa/dwa, dfa/dwb
  const double sd_fa =
      o.interval_scale * std::sqrt(std::max(0.0, ga * ga * var_wa + gb * gb * var_wb + 2 * ga * gb * cov));

  const bool mixed = out.gain >= o.min_gain && std::min(fa, 1.0 - fa) >= o.min_fraction;
  if (!mixed) {
    single_from_estimate();
    out.rss_mixture = rss;
    return out;
  }
  out.single_phase = false;
  out.components = {{ca, fa, sd_fa, static_cast<std::int32_t>(best.a), wa},
                    {cb, 1.0 - fa, sd_fa, static_cast<std::int32_t>(best.b), wb}};
  if (out.components[1].fraction > out.components[0].fraction) std::swap(out.components[0], out.components[1]);
  out.mean_value = fa * ca + (1.0 - fa) * cb;
  out.mean_value_sd = std::abs(ca - cb) * sd_fa;
  return out;
}

}  // namespace xasmap
