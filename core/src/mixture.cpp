// Mixed valence: two-component non-negative fits of a spectrum with library spectra
// (xasmap/core/mixture.hpp).

#include "xasmap/core/mixture.hpp"

#include <Eigen/Cholesky>
#include <Eigen/Eigenvalues>
#include <Eigen/QR>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <map>
#include <set>

#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/model.hpp"
#include "mixture_cache.hpp"

namespace xasmap {

double holes_of_ion(const std::string& ion) { return 10.0 - parse_ion(ion).n3d; }

void cap_class_confidence(const Mixture& mixture, Estimate& estimate) {
  if (mixture.single_phase || estimate.class_parameter < 0) return;
  const auto p = static_cast<std::size_t>(estimate.class_parameter);
  if (p >= estimate.values.size() || p >= estimate.confidence.size()) return;
  double share = 0;
  for (const MixtureComponent& c : mixture.components) {
    if (c.class_value == estimate.values[p]) share += c.fraction;
  }
  estimate.confidence[p] = std::min(estimate.confidence[p], share);
}

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

// Windows kept: at most this many, and no more bytes of their rows than kWindowBytes (one at least).
constexpr std::size_t kWindowsKept = 12;
constexpr std::size_t kWindowBytes = std::size_t{96} << 20;
// Part-range windows are narrowed to multiples of this (eV) before the library is read on them.
constexpr double kWindowLatticeEv = 0.5;
// The basis keeps the leading directions until what it leaves of the rows' summed squared norm
// is this small (a row's windowed spectrum is then off by about its square root, relatively).
constexpr double kBasisResidual = 1e-5;
constexpr Eigen::Index kBasisMaxDims = 128;
constexpr Eigen::Index kBasisSampleRows = 20000;  // rows the basis is fitted on, at most

// The spectra's classes and settings (MixturePartition) from their parameter values (np per
// spectrum, flat), the class parameter's index and its sorted values.
std::shared_ptr<const MixturePartition> make_partition(const std::vector<std::string>& shared_names,
                                                       const std::vector<ParameterInfo>& parameters,
                                                       const std::vector<double>& flat_values, int class_parameter,
                                                       const std::vector<double>& class_values) {
  auto out = std::make_shared<MixturePartition>();
  MixturePartition& p = *out;
  p.shared = shared_names;
  std::vector<std::size_t> shared;
  for (const std::string& name : shared_names) {
    for (std::size_t k = 0; k < parameters.size(); ++k) {
      if (parameters[k].name == name) shared.push_back(k);
    }
  }
  const std::size_t np = parameters.size();
  const std::size_t spectra = np == 0 ? 0 : flat_values.size() / np;
  p.class_index.resize(spectra);
  p.setting.resize(spectra);
  std::map<std::vector<double>, int> settings;
  std::vector<double> key(shared.size());
  for (std::size_t s = 0; s < spectra; ++s) {
    const double* v = flat_values.data() + s * np;
    if (class_parameter >= 0) {
      const double c = v[static_cast<std::size_t>(class_parameter)];
      p.class_index[s] =
          static_cast<int>(std::lower_bound(class_values.begin(), class_values.end(), c) - class_values.begin());
    }
    for (std::size_t k = 0; k < shared.size(); ++k) key[k] = v[shared[k]];
    const auto [it, added] = settings.emplace(key, static_cast<int>(settings.size()));
    if (added) p.members.emplace_back();
    p.setting[s] = it->second;
    std::vector<Eigen::Index>& m = p.members[static_cast<std::size_t>(it->second)];
    m.push_back(static_cast<Eigen::Index>(s));
  }
  p.slot.resize(spectra);
  Eigen::Index offset = 0;
  for (const auto& m : p.members) {
    for (const Eigen::Index s : m) p.slot[static_cast<std::size_t>(s)] = offset++;
  }
  return out;
}

}  // namespace

void Model::prepare_mixture() const {
  if (!mixture_cache_) return;
  const auto whole = mixture_window(Window{0, options_.preprocess.grid.size - 1}, MixtureOptions{}.shared_parameters);
  for (Eigen::Index copy = 0; copy < whole->copies; ++copy) whole->ensure_copy(*this, copy);
}

std::shared_ptr<const MixtureWindow> Model::mixture_window(const Window& window,
                                                         const std::vector<std::string>& shared) const {
  MixtureCache& cache = *mixture_cache_;
  std::unique_lock<std::mutex> lock(cache.mutex);
  if (!cache.partition || cache.partition->shared != shared) {
    cache.partition = make_partition(shared, parameters_, flat_values_, class_parameter_, class_values_);
  }
  const std::shared_ptr<const MixturePartition> partition = cache.partition;
  // A window kept already, made the most recently used.
  const auto kept_window = [&]() -> std::shared_ptr<const MixtureWindow> {
    for (std::size_t i = 0; i < cache.windows.size(); ++i) {
      if (cache.windows[i]->window == window && cache.windows[i]->partition == partition) {
        std::rotate(cache.windows.begin(), cache.windows.begin() + static_cast<std::ptrdiff_t>(i),
                    cache.windows.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        return cache.windows.front();
      }
    }
    return nullptr;
  };
  if (auto found = kept_window()) return found;
  const PreprocessOptions& pre = options_.preprocess;
  const int grid = pre.grid.size;
  const Window full{0, grid - 1};
  const Eigen::Index rows = prepared_.rows();
  RowVectorXf shaped, whole;
  if (!cache.built) {
    cache.linear = window_is_linear(pre);
    if (cache.linear) {
      // The rows' unit-area spectra on the whole grid (a flat row: zero), their uncentred second
      // moment on a sample of rows, and its leading eigenvectors.
      const auto unit_row = [&](Eigen::Index r, RowVectorXf& out) {
        try {
          apply_window_into(prepared_.row(r), full, pre, out);
        } catch (const PreprocessError&) {
          out.setZero(grid);
        }
      };
      const Eigen::Index stride = std::max<Eigen::Index>(1, (rows + kBasisSampleRows - 1) / kBasisSampleRows);
      Eigen::MatrixXd moment = Eigen::MatrixXd::Zero(grid, grid);
      Eigen::MatrixXf block(256, grid);
      Eigen::Index filled = 0;
      const auto flush = [&] {
        if (filled == 0) return;
        const Eigen::MatrixXf part = block.topRows(filled).transpose() * block.topRows(filled);
        moment += part.cast<double>();
        filled = 0;
      };
      for (Eigen::Index r = 0; r < rows; r += stride) {
        unit_row(r, shaped);
        block.row(filled++) = shaped;
        if (filled == block.rows()) flush();
      }
      flush();
      const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(moment);
      if (eigen.info() != Eigen::Success) throw Error("mixture: the eigen solver failed on the library's basis");
      const Eigen::VectorXd& lambda = eigen.eigenvalues();  // ascending
      const double total = std::max(lambda.sum(), 1e-300);
      Eigen::Index m = 0;
      double left = total;
      while (m < std::min<Eigen::Index>(kBasisMaxDims, grid) && left > kBasisResidual * total) {
        left -= std::max(0.0, lambda[grid - 1 - m]);
        ++m;
      }
      m = std::max<Eigen::Index>(m, 1);
      cache.captured = 1.0 - std::max(0.0, left) / total;
      cache.basis = eigen.eigenvectors().rightCols(m).rowwise().reverse().cast<float>();
      cache.coefficients.resize(rows, m);
      for (Eigen::Index r = 0; r < rows; ++r) {
        unit_row(r, shaped);
        cache.coefficients.row(r) = shaped * cache.basis;
      }
    }
    cache.built = true;  // only once it all succeeded (a throw above leaves it to the next call)
  }

  // The basis is built (once, above, under the lock) and never changes: the window is built
  // without the lock, so that other threads' spectra on kept windows do not wait for it.
  lock.unlock();
  auto mw = std::make_shared<MixtureWindow>();
  mw->window = window;
  mw->partition = partition;
  const int n = window.size();
  const auto spectra = static_cast<Eigen::Index>(labels_.size());
  mw->copies = rows / std::max<Eigen::Index>(1, spectra);
  mw->spectra = spectra;
  mw->share.assign(static_cast<std::size_t>(rows), 0.0f);
  mw->zz.assign(static_cast<std::size_t>(rows), 0.0f);
  mw->filled = std::make_unique<std::once_flag[]>(static_cast<std::size_t>(mw->copies));
  MixtureWindow* target = mw.get();  // the fill lives in it, and dies with it
  const Eigen::Index copies = mw->copies;
  if (cache.linear) {
    // The window's processing of each basis direction; an orthonormal basis of those (thin QR).
    // A copy's rows are then their coordinates on it (R c_r), divided by each row's area there.
    const Eigen::Index m = cache.basis.cols();
    Eigen::MatrixXd processed(n, m);
    for (Eigen::Index j = 0; j < m; ++j) {
      const RowVectorXf column = cache.basis.col(j).transpose();
      window_background_into(column, window, pre, shaped);
      processed.col(j) = shaped.segment(window.first, n).transpose().cast<double>();
    }
    const bool by_area = pre.normalize == NormalizationKind::kArea;
    const Eigen::VectorXd area = processed.colwise().sum().transpose() * pre.grid.step_ev;
    const Eigen::Index k = std::min<Eigen::Index>(n, m);
    const Eigen::HouseholderQR<Eigen::MatrixXd> qr(processed);
    mw->basis = (qr.householderQ() * Eigen::MatrixXd::Identity(n, k)).cast<float>();
    const Eigen::MatrixXf r_t =
        qr.matrixQR().topRows(k).triangularView<Eigen::Upper>().toDenseMatrix().transpose().cast<float>();
    mw->z.setZero(rows, k);
    mw->fill = [target, r_t, area, by_area, spectra, copies](const Model& model, Eigen::Index copy) {
      const FeatureMatrix* coefficients = &model.mixture_cache_->coefficients;
      for (Eigen::Index s = 0; s < spectra; ++s) {
        const Eigen::Index r = s * copies + copy;  // the model's row
        const Eigen::Index t = target->at(s, copy);
        // A unit-area row's area on the window (1 on the whole grid), up to the basis's truncation.
        const double share = by_area ? coefficients->row(r).cast<double>().dot(area) : 1.0;
        if (!(share > 1e-3)) continue;  // flat or empty on the window: never used
        target->share[static_cast<std::size_t>(t)] = static_cast<float>(std::min(share, 1.0));
        target->z.row(t).noalias() = coefficients->row(r) * r_t;
        target->z.row(t) /= static_cast<float>(share);
        target->zz[static_cast<std::size_t>(t)] = target->z.row(t).squaredNorm();
      }
    };
  } else {
    // No basis: every row processed on the window as it is, and its area there over its whole one.
    mw->z.setZero(rows, n);
    mw->fill = [target, window, full, spectra, copies](const Model& model, Eigen::Index copy) {
      const PreprocessOptions& o = model.options_.preprocess;
      RowVectorXf on, all;
      for (Eigen::Index s = 0; s < spectra; ++s) {
        const Eigen::Index r = s * copies + copy;  // the model's row
        const Eigen::Index t = target->at(s, copy);
        try {
          const double on_window = apply_window_into(model.prepared_.row(r), window, o, on);
          const double on_grid = apply_window_into(model.prepared_.row(r), full, o, all);
          target->z.row(t) = on.segment(window.first, window.size());
          const double share = on_grid > 0 && on_window > 0 ? on_window / on_grid : 1.0;
          target->share[static_cast<std::size_t>(t)] = static_cast<float>(share);
          target->zz[static_cast<std::size_t>(t)] = target->z.row(t).squaredNorm();
        } catch (const PreprocessError&) {
          // flat on this window: its zz stays 0 and it is never chosen
        }
      }
    };
  }
  lock.lock();
  if (auto found = kept_window()) return found;  // another thread built it meanwhile
  cache.windows.insert(cache.windows.begin(), std::move(mw));
  std::size_t bytes = 0, kept = 0;
  for (; kept < cache.windows.size() && kept < kWindowsKept; ++kept) {
    const MixtureWindow& k = *cache.windows[kept];
    bytes += static_cast<std::size_t>(k.z.size() + k.basis.size()) * sizeof(float) + 8 * k.share.size();
    if (kept > 0 && bytes > kWindowBytes) break;
  }
  cache.windows.resize(kept);
  return cache.windows.front();
}

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
    out.components.push_back({c, 1.0, 0.0, -1, 1.0, e.values});
    return out;
  };
  if (class_parameter_ < 0 || class_values_.size() < 2 || labels_.empty()) return single_from_estimate();

  // A part-range spectrum is read on its window narrowed to the window lattice (both ends inwards),
  // so that spectra whose ranges differ by a few points share the library's rows on it (a new
  // window costs a QR, and each shifted copy's rows when first tried).
  const PreprocessOptions& pre = options_.preprocess;
  const Window full{0, pre.grid.size - 1};
  Window w = prepared.window;
  static thread_local RowVectorXf rewindowed;
  const RowVectorXf* values = &prepared.values;
  if (!(w == full)) {
    const int lattice = std::max(1, static_cast<int>(std::lround(kWindowLatticeEv / pre.grid.step_ev)));
    Window narrowed{(w.first + lattice - 1) / lattice * lattice, w.last == full.last ? w.last : (w.last + 1) / lattice * lattice - 1};
    if (narrowed.size() >= std::max(8, w.size() - 2 * lattice) && !(narrowed == w)) {
      try {
        apply_window_into(prepared.values, narrowed, pre, rewindowed);
        values = &rewindowed;
        w = narrowed;
      } catch (const PreprocessError&) {
        // flat on the narrowed window: keep the spectrum's own
      }
    }
  }
  const int n = w.size();
  const Eigen::Index per_spectrum = prepared_.rows() / static_cast<Eigen::Index>(labels_.size());
  // The library on the spectrum's window, and the spectrum on the same basis: every product
  // below is one of k coordinates, not of the window's n points.
  const std::shared_ptr<const MixtureWindow> library = mixture_window(w, o.shared_parameters);
  const MixtureWindow& mw = *library;
  const Eigen::Index dims = mw.z.cols();
  const Eigen::VectorXf q_points = values->segment(w.first, n).transpose();
  const double qq = q_points.cast<double>().squaredNorm();
  const Eigen::VectorXf h = mw.basis.size() > 0 ? Eigen::VectorXf(mw.basis.transpose() * q_points) : q_points;
  const auto class_of = [&](Eigen::Index s) {
    return values_[static_cast<std::size_t>(s)][static_cast<std::size_t>(class_parameter_)];
  };
  // Each spectrum's class (an index into class_values_) and setting: spectra combine only when
  // their shared parameters' values are equal, i.e. their settings are.
  const std::size_t np = parameters_.size();
  const std::vector<int>& class_index = mw.partition->class_index;
  const std::vector<int>& setting = mw.partition->setting;
  const std::vector<std::vector<Eigen::Index>>& members = mw.partition->members;
  const std::vector<Eigen::Index>& slot = mw.partition->slot;
  const auto same_setting = [&](Eigen::Index a, Eigen::Index b) {
    return setting[static_cast<std::size_t>(a)] == setting[static_cast<std::size_t>(b)];
  };

  // The library at one shifted copy: every spectrum on the window as the spectrum is preprocessed
  // (unit area), the share of its whole edge's area the window holds, its single fit, and the
  // best pair of two classes (seeded by their best single fits, then alternating).
  const auto spectra = static_cast<Eigen::Index>(labels_.size());
  struct Best {
    double rss = std::numeric_limits<double>::infinity();
    Eigen::Index a = -1, b = -1;
    PairFit fit;
  };
  struct CopyFit {
    Eigen::Index copy = -1;
    std::vector<double> share;
    Eigen::VectorXd qy, yy;
    // Per class (index into class_values_): its search_per_class best single fits, best first.
    std::vector<std::vector<std::pair<double, Eigen::Index>>> ranked;
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
  const auto row_of = [&](const CopyFit& c, Eigen::Index s) { return mw.z.row(mw.at(s, c.copy)); };
  const auto dot = [&](const CopyFit& c, Eigen::Index a, Eigen::Index b) {
    return static_cast<double>(mw.product(c.copy, a, b));
  };
  // Spectrum s's single fit of the spectrum at c's copy: the residual of q by k y_s, k >= 0.
  const auto single_rss = [&](const CopyFit& c, Eigen::Index s) {
    const double k = c.qy[s] / c.yy[s];
    return k > 0 ? qq - k * c.qy[s] : qq;
  };
  const auto widen_fit = [&](CopyFit& c) {
    const Best& best = c.best;
    // Every spectrum of the class and the pair's setting is considered (not only its best single
    // fits: a component of a mixture need not fit the whole spectrum well); its products with the
    // held one in one pass.
    const auto widen = [&](int value, Eigen::Index held, double held_weight, int tag) {
      std::vector<std::pair<double, Eigen::Index>> fits;
      for (const Eigen::Index s : members[static_cast<std::size_t>(setting[static_cast<std::size_t>(held)])]) {
        if (class_index[static_cast<std::size_t>(s)] != value || !(c.yy[s] > 0)) continue;
        const double p = c.qy[s] - held_weight * dot(c, s, held);  // its product with what is left
        if (p > 0) fits.push_back({-p * p / c.yy[s], s});
      }
      const auto keep = std::min(fits.size(), static_cast<std::size_t>(std::max(1, o.per_class)));
      std::partial_sort(fits.begin(), fits.begin() + static_cast<std::ptrdiff_t>(keep), fits.end());
      for (std::size_t k = 0; k < keep; ++k) {
        c.columns.push_back(fits[k].second);
        c.column_class.push_back(tag);
      }
    };
    widen(class_index[static_cast<std::size_t>(best.a)], best.b, best.fit.wb, 0);
    widen(class_index[static_cast<std::size_t>(best.b)], best.a, best.fit.wa, 1);
    const auto k = static_cast<Eigen::Index>(c.columns.size());
    Eigen::MatrixXd gram(k, k);
    Eigen::VectorXd rhs(k);
    for (Eigen::Index i = 0; i < k; ++i) {
      rhs[i] = c.qy[c.columns[static_cast<std::size_t>(i)]];
      for (Eigen::Index j = 0; j <= i; ++j) {
        gram(i, j) = gram(j, i) = dot(c, c.columns[static_cast<std::size_t>(i)], c.columns[static_cast<std::size_t>(j)]);
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
  // The spectra a copy is searched over: all (pool empty), or those of the chosen settings.
  std::vector<Eigen::Index> pool;
  const auto fit_copy = [&](Eigen::Index copy) {
    CopyFit c;
    c.copy = copy;
    mw.ensure_copy(*this, copy);
    c.qy.setZero(spectra);
    c.yy.setZero(spectra);
    c.share.assign(static_cast<std::size_t>(spectra), 0.0);
    if (pool.empty()) {
      // This copy's rows of the window's library (in the partition's order).
      const Eigen::VectorXf by_slot = mw.z.middleRows(copy * spectra, spectra) * h;
      for (Eigen::Index s = 0; s < spectra; ++s) c.qy[s] = by_slot[slot[static_cast<std::size_t>(s)]];
    } else {
      for (const Eigen::Index s : pool) c.qy[s] = static_cast<double>(row_of(c, s).dot(h.transpose()));
    }
    const auto each = [&](auto&& f) {
      if (pool.empty()) {
        for (Eigen::Index s = 0; s < spectra; ++s) f(s);
      } else {
        for (const Eigen::Index s : pool) f(s);
      }
    };
    each([&](Eigen::Index s) {
      const auto r = static_cast<std::size_t>(mw.at(s, copy));
      c.yy[s] = mw.zz[r];  // 0: flat on this window, never chosen
      c.share[static_cast<std::size_t>(s)] = mw.share[r];
    });
    c.ranked.resize(class_values_.size());
    each([&](Eigen::Index s) {
      if (!(c.yy[s] > 0)) return;
      const double r = single_rss(c, s);
      c.ranked[static_cast<std::size_t>(class_index[static_cast<std::size_t>(s)])].push_back({r, s});
      c.best_single = std::min(c.best_single, r);
    });
    // Each class's search_per_class best single fits, the first `candidates` of them in order (the
    // seeds; the alternating passes below take the best of all of them, in any order).
    const auto searched = static_cast<std::size_t>(std::max(1, o.search_per_class));
    const auto seeded = static_cast<std::size_t>(std::max(1, o.candidates));
    for (auto& list : c.ranked) {
      if (list.size() > searched) {
        std::nth_element(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(searched), list.end());
        list.resize(searched);
      }
      const std::size_t first = std::min(seeded, list.size());
      std::partial_sort(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(first), list.end());
    }
    const auto pair_of = [&](Eigen::Index a, Eigen::Index b) {
      if (!same_setting(a, b)) return PairFit{};
      return fit_pair(c.yy[a], dot(c, a, b), c.yy[b], c.qy[a], c.qy[b], qq);
    };
    for (auto ia = c.ranked.begin(); ia != c.ranked.end(); ++ia) {
      for (auto ib = std::next(ia); ib != c.ranked.end(); ++ib) {
        const auto& la = *ia;
        const auto& lb = *ib;
        Best local;
        const auto seeds = static_cast<std::size_t>(std::max(1, o.candidates));
        for (std::size_t i = 0; i < std::min(seeds, la.size()); ++i) {
          for (std::size_t j = 0; j < std::min(seeds, lb.size()); ++j) {
            const PairFit f = pair_of(la[i].second, lb[j].second);
            if (f.rss < local.rss) local = {f.rss, la[i].second, lb[j].second, f};
          }
        }
        if (local.a < 0) continue;
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
  // The copies after the first are searched over the settings whose best few single fits of each
  // class pair best at it (a mixture's components share the instrument and the temperature, and
  // its best single match's setting need not be theirs: a broader instrument blurs as mixing does).
  if (o.settings_searched > 0 && static_cast<std::size_t>(o.settings_searched) < members.size() && copy >= 0) {
    const CopyFit& first = chosen;
    std::vector<std::pair<double, std::size_t>> scores;
    const auto seeds = static_cast<std::size_t>(std::max(1, o.candidates / 2));
    std::vector<std::vector<std::pair<double, Eigen::Index>>> by_class(class_values_.size());
    for (std::size_t g = 0; g < members.size(); ++g) {
      for (auto& list : by_class) list.clear();
      double score = std::numeric_limits<double>::infinity();
      for (const Eigen::Index s : members[g]) {
        if (!(first.yy[s] > 0)) continue;
        const double r = single_rss(first, s);
        by_class[static_cast<std::size_t>(class_index[static_cast<std::size_t>(s)])].push_back({r, s});
        score = std::min(score, r);
      }
      for (auto& list : by_class) {
        const std::size_t keep = std::min(seeds, list.size());
        std::partial_sort(list.begin(), list.begin() + static_cast<std::ptrdiff_t>(keep), list.end());
        list.resize(keep);
      }
      for (std::size_t ca = 0; ca < by_class.size(); ++ca) {
        for (std::size_t cb = ca + 1; cb < by_class.size(); ++cb) {
          for (const auto& [ra, a] : by_class[ca]) {
            for (const auto& [rb, b] : by_class[cb]) {
              const PairFit f = fit_pair(first.yy[a], dot(first, a, b), first.yy[b], first.qy[a], first.qy[b], qq);
              score = std::min(score, f.rss);
            }
          }
        }
      }
      scores.push_back({score, g});
    }
    const auto keep = static_cast<std::size_t>(o.settings_searched);
    std::partial_sort(scores.begin(), scores.begin() + static_cast<std::ptrdiff_t>(keep), scores.end());
    for (std::size_t i = 0; i < keep; ++i) {
      const std::vector<Eigen::Index>& m = members[scores[i].second];
      pool.insert(pool.end(), m.begin(), m.end());
    }
  }
  for (Eigen::Index j = nearest - 3; j >= 0; j -= 3) try_copy(j);
  for (Eigen::Index j = nearest + 3; j < per_spectrum; j += 3) try_copy(j);
  for (int round = 0; round < 2; ++round) {
    const Eigen::Index b = copy;
    try_copy(b - 1);
    try_copy(b + 1);
  }
  out.shift_ev = row_shift_[static_cast<std::size_t>(copy)];
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
  // Each component's parameters: atom-weighted means (continuous), its heaviest column's (categorical).
  std::vector<double> va(np, 0.0), vb(np, 0.0);
  double heaviest_a = -1, heaviest_b = -1;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const double u = weights[static_cast<Eigen::Index>(i)] /
                     (holes(column_class[i] == 0 ? ca : cb) * share[static_cast<std::size_t>(columns[i])]);
    (column_class[i] == 0 ? ua : ub) += u;
    std::vector<double>& v = column_class[i] == 0 ? va : vb;
    double& heaviest = column_class[i] == 0 ? heaviest_a : heaviest_b;
    const std::vector<double>& of = values_[static_cast<std::size_t>(columns[i])];
    for (std::size_t p = 0; p < np; ++p) {
      if (!parameters_[p].categorical) {
        v[p] += u * of[p];
      } else if (u > heaviest) {
        v[p] = of[p];
      }
    }
    heaviest = std::max(heaviest, u);
  }
  for (std::size_t p = 0; p < np; ++p) {
    if (!parameters_[p].categorical) {
      va[p] /= ua;
      vb[p] /= ub;
    }
  }
  const double fa = ua / (ua + ub);
  // Class weights' covariance from the two-column fit of each class's summed spectrum.
  // (On the window's basis: its columns are orthonormal, so products are those over the window.)
  Eigen::VectorXd ya = Eigen::VectorXd::Zero(dims), yb = Eigen::VectorXd::Zero(dims);
  for (std::size_t i = 0; i < columns.size(); ++i) {
    (column_class[i] == 0 ? ya : yb) +=
        weights[static_cast<Eigen::Index>(i)] * row_of(chosen, columns[i]).transpose().cast<double>();
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
  out.novelty = e.novelty * std::sqrt(std::max(0.0, 1.0 - out.gain));
  const double sd_fa = std::hypot(
      o.interval_scale * std::sqrt(std::max(0.0, ga * ga * var_wa + gb * gb * var_wb + 2 * ga * gb * cov)),
      o.systematic_sd * out.novelty);

  const double max_novelty = o.max_novelty > 0 ? o.max_novelty : options_.novelty_threshold;
  const bool mixed = out.gain >= o.min_gain && std::min(fa, 1.0 - fa) >= o.min_fraction && out.novelty <= max_novelty;
  if (!mixed) {
    single_from_estimate();
    out.rss_mixture = rss;
    return out;
  }
  out.single_phase = false;
  out.components = {{ca, fa, sd_fa, static_cast<std::int32_t>(best.a), wa, std::move(va)},
                    {cb, 1.0 - fa, sd_fa, static_cast<std::int32_t>(best.b), wb, std::move(vb)}};
  if (out.components[1].fraction > out.components[0].fraction) std::swap(out.components[0], out.components[1]);
  out.mean_value = fa * ca + (1.0 - fa) * cb;
  out.mean_value_sd = std::abs(ca - cb) * sd_fa;
  return out;
}

}  // namespace xasmap
