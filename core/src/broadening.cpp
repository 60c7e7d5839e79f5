#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "xasmap/core/error.hpp"
#include "xasmap/core/multiplet.hpp"

namespace xasmap {

double l3_l2_split(const StickSpectrum& s) {
  double total = 0.0, first_moment = 0.0, max_intensity = 0.0;
  for (const auto& st : s.sticks) {
    total += st.intensity;
    first_moment += st.intensity * st.energy_ev;
    max_intensity = std::max(max_intensity, st.intensity);
  }
  if (total <= 0.0) return 0.0;
  const double centroid = first_moment / total;
  const double l3 = centroid - 0.5 * s.zeta2p;
  const double l2 = centroid + s.zeta2p;
  double best_gap = -1.0;
  double split = 0.5 * (l3 + l2);
  double previous = l3;
  for (const auto& st : s.sticks) {
    if (st.intensity < 1e-3 * max_intensity || st.energy_ev < l3) continue;
    const double e = std::min(st.energy_ev, l2);
    if (e - previous > best_gap) {
      best_gap = e - previous;
      split = 0.5 * (e + previous);
    }
    previous = e;
    if (st.energy_ev >= l2) break;
  }
  if (l2 - previous > best_gap) split = 0.5 * (l2 + previous);
  return split;
}

Eigen::VectorXd broaden(const StickSpectrum& s, const Broadening& b,
                        const Eigen::Ref<const Eigen::VectorXd>& energy_ev, double shift_ev) {
  if (!(b.lorentz_l3_ev > 0.0) || !(b.lorentz_l2_ev > 0.0) || !(b.gauss_ev >= 0.0)) {
    throw Error("broaden: Lorentzian widths must be > 0 and the Gaussian width >= 0");
  }
  const Eigen::Index n = energy_ev.size();
  Eigen::VectorXd out = Eigen::VectorXd::Zero(n);
  if (n == 0 || s.sticks.empty()) return out;
  const double split = (std::isfinite(b.split_ev) ? b.split_ev : l3_l2_split(s)) + shift_ev;
  // Each stick's half width at half maximum.
  std::vector<double> stick_hwhm(s.sticks.size());
  for (std::size_t i = 0; i < s.sticks.size(); ++i) {
    const Stick& st = s.sticks[i];
    double fwhm = st.energy_ev + shift_ev < split ? b.lorentz_l3_ev : b.lorentz_l2_ev;
    if (b.rule == LifetimeRule::kCoreHoleCharacter && std::isfinite(st.j32_weight)) {
      const double w = std::clamp(st.j32_weight, 0.0, 1.0);
      fwhm = w * b.lorentz_l3_ev + (1.0 - w) * b.lorentz_l2_ev;
    }
    stick_hwhm[i] = 0.5 * fwhm;
  }

  // Sum of area-normalised Lorentzians at energy e.
  const auto lorentz_sum = [&](double e) {
    double sum = 0.0;
    for (std::size_t i = 0; i < s.sticks.size(); ++i) {
      const double half = stick_hwhm[i];
      const double x = e - (s.sticks[i].energy_ev + shift_ev);
      sum += s.sticks[i].intensity * half / (x * x + half * half);
    }
    return sum / std::numbers::pi;
  };

  if (b.gauss_ev == 0.0) {
    for (Eigen::Index i = 0; i < n; ++i) out[i] = lorentz_sum(energy_ev[i]);
    return out;
  }

  // Lorentzians on a fine uniform grid, convolved with a discrete, unit-sum Gaussian kernel, then
  // interpolated linearly onto the requested grid.
  const double sigma = b.gauss_ev / (2.0 * std::sqrt(2.0 * std::log(2.0)));
  const double narrowest = std::min({b.lorentz_l3_ev, b.lorentz_l2_ev, b.gauss_ev});
  const double step = narrowest / 20.0;
  const double margin = 5.0 * sigma + step;
  const double lo = energy_ev[0] - margin;
  const double hi = energy_ev[n - 1] + margin;
  const auto fine_n = static_cast<Eigen::Index>(std::ceil((hi - lo) / step)) + 1;
  Eigen::VectorXd fine(fine_n);
  for (Eigen::Index i = 0; i < fine_n; ++i) fine[i] = lorentz_sum(lo + static_cast<double>(i) * step);

  const auto half_width = static_cast<Eigen::Index>(std::ceil(5.0 * sigma / step));
  Eigen::VectorXd kernel(2 * half_width + 1);
  for (Eigen::Index k = -half_width; k <= half_width; ++k) {
    const double x = static_cast<double>(k) * step / sigma;
    kernel[k + half_width] = std::exp(-0.5 * x * x);
  }
  kernel /= kernel.sum();
  Eigen::VectorXd convolved = Eigen::VectorXd::Zero(fine_n);
  for (Eigen::Index i = 0; i < fine_n; ++i) {
    double acc = 0.0;
    for (Eigen::Index k = -half_width; k <= half_width; ++k) {
      const Eigen::Index j = std::clamp<Eigen::Index>(i + k, 0, fine_n - 1);
      acc += kernel[k + half_width] * fine[j];
    }
    convolved[i] = acc;
  }
  for (Eigen::Index i = 0; i < n; ++i) {
    const double x = (energy_ev[i] - lo) / step;
    const auto j = std::clamp<Eigen::Index>(static_cast<Eigen::Index>(std::floor(x)), 0, fine_n - 2);
    const double t = x - static_cast<double>(j);
    out[i] = (1.0 - t) * convolved[j] + t * convolved[j + 1];
  }
  return out;
}

}  // namespace xasmap
