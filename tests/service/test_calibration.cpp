// The shipped absolute-energy calibration of the default Mn library (docs/simulator.md), at the
// reference setting the offsets belong to (Slater 0.8, 300 K, Gaussian 0.3 eV; the default
// library's nuisance variants around it are placed with the same offsets):
//  - Mn2+ 10Dq 0.9 eV reproduces the XRM2018 poster's own calculated curve on its energy scale;
//  - Mn3+ and Mn4+ are calibrated on one half of the measured references (MnEdgeNet's Data2
//    LaMnO3 and SrMnO3): a free energy shift moves neither by more than one 0.05 eV step;
//  - the other half (Data2 and Data3 MnO, Data3 LaMnO3 and MnO2), never used for calibration, is
//    best matched by a library spectrum of its own charge, within the daemon's shift range.
// Comparison: on the overlap of the measured range and 636.5-658 eV, a line through the first and
// last 1.5 eV is subtracted and the area normalised, then spectra are compared by cosine.

#include <catch2/catch.hpp>

#include <cmath>
#include <map>
#include <string>

#include "default_settings.hpp"
#include "library_builder.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/spectrum.hpp"

using namespace xasmap;

namespace {

const std::string kData = XASMAP_TEST_DATA_DIR;

Eigen::VectorXd interpolate(const Spectrum& s, const Eigen::VectorXd& at) {
  Eigen::VectorXd out(at.size());
  Eigen::Index j = 0;
  for (Eigen::Index i = 0; i < at.size(); ++i) {
    while (j + 2 < s.energy_ev.size() && s.energy_ev[j + 1] < at[i]) ++j;
    const double t = (at[i] - s.energy_ev[j]) / (s.energy_ev[j + 1] - s.energy_ev[j]);
    out[i] = (1 - t) * s.intensity[j] + t * s.intensity[j + 1];
  }
  return out;
}

Eigen::VectorXd prepare(const Eigen::VectorXd& e, Eigen::VectorXd y) {
  const Eigen::Index n = e.size();
  const Eigen::Index k = static_cast<Eigen::Index>(std::round(1.5 / (e[1] - e[0])));
  const double x0 = e.head(k).mean(), y0 = y.head(k).mean();
  const double x1 = e.tail(k).mean(), y1 = y.tail(k).mean();
  for (Eigen::Index i = 0; i < n; ++i) y[i] -= y0 + (y1 - y0) * (e[i] - x0) / (x1 - x0);
  return y / (y.sum() * (e[1] - e[0]));
}

double cosine(const Eigen::VectorXd& a, const Eigen::VectorXd& b) {
  return a.dot(b) / (a.norm() * b.norm());
}

struct FineLibrary {
  Eigen::VectorXd fine_energy;  // 630-668 eV in 0.01 eV steps
  std::vector<SimulatedSpectrum> spectra;
};

// Simulated once per process: ctest runs the three cases, all tagged [calibration], in one process
// (tests/CMakeLists.txt).
const FineLibrary& default_library() {
  static const FineLibrary lib = [] {
    const config::Config cfg = test::single_setting();
    const AtomicTable table = AtomicTable::load(std::string(XASMAP_SOURCE_DIR) + "/data/atomic");
    FineLibrary l;
    l.fine_energy = Eigen::VectorXd::LinSpaced(3801, 630.0, 668.0);
    l.spectra = simulate_library(service::make_jobs(cfg.library.simulate, table),
                                 service::broadening_of(cfg.library.simulate), l.fine_energy);
    return l;
  }();
  return lib;
}

}  // namespace

TEST_CASE("Mn2+ 10Dq 0.9 lands on the poster's calculated curve", "[calibration]") {
  const Spectrum poster = read_spectrum(kData + "/xrm2018/poster_fig2_Mn2plus_Oh_10Dq0.9_calculated.csv");
  const FineLibrary& lib = default_library();
  const SimulatedSpectrum* mn2 = nullptr;
  for (const auto& s : lib.spectra) {
    if (s.labels.at("charge") == 2 && std::abs(s.labels.at("tendq") - 0.9) < 1e-9) mn2 = &s;
  }
  REQUIRE(mn2 != nullptr);
  const Spectrum ours{lib.fine_energy, mn2->intensity};
  const Eigen::VectorXd at = poster.energy_ev;
  const Eigen::VectorXd theirs = poster.intensity.array() - poster.intensity.minCoeff();
  CHECK(cosine(interpolate(ours, at), theirs) >= 0.995);
  // L3 maxima (below 646 eV) within 0.06 eV: the digitised curve lies on a 0.05 eV grid.
  Eigen::Index i_theirs = 0, i_ours = 0;
  (at.array() < 646).select(theirs, 0.0).maxCoeff(&i_theirs);
  (lib.fine_energy.array() < 646).select(mn2->intensity, 0.0).maxCoeff(&i_ours);
  CHECK(at[i_theirs] == Approx(640.40).margin(0.03));
  CHECK(lib.fine_energy[i_ours] == Approx(at[i_theirs]).margin(0.06));
}

namespace {

struct Match {
  int charge = 0;
  double tendq = 0, cosine = -2;
  double shift = 0;       // best free shift of the right charge's spectra
};

Match best_match(const std::string& name, int charge) {
  const FineLibrary& lib = default_library();
  const Spectrum measured =
      read_spectrum(kData + "/experimental/xinhuolin_MnEdgeNet/" + name + ".csv");
  const double lo = std::max(636.5, measured.energy_ev[0]);
  const double hi = std::min(658.0, measured.energy_ev[measured.energy_ev.size() - 1]);
  const auto n = static_cast<Eigen::Index>(std::floor((hi - lo) / 0.1)) + 1;
  const Eigen::VectorXd grid = Eigen::VectorXd::LinSpaced(n, lo, lo + 0.1 * static_cast<double>(n - 1));
  const Eigen::VectorXd y = prepare(grid, interpolate(measured, grid));
  Match m;
  for (const auto& s : lib.spectra) {
    const double c =
        cosine(prepare(grid, interpolate(Spectrum{lib.fine_energy, s.intensity}, grid)), y);
    if (c > m.cosine) {
      m.cosine = c;
      m.charge = static_cast<int>(s.labels.at("charge"));
      m.tendq = s.labels.at("tendq");
    }
  }
  double best_shift_cos = -2;
  for (const auto& s : lib.spectra) {
    if (static_cast<int>(s.labels.at("charge")) != charge) continue;
    for (double shift = -1.0; shift <= 1.0 + 1e-9; shift += 0.05) {
      const Spectrum shifted{lib.fine_energy.array() + shift, s.intensity};
      const double c = cosine(prepare(grid, interpolate(shifted, grid)), y);
      if (c > best_shift_cos) {
        best_shift_cos = c;
        m.shift = shift;
      }
    }
  }
  WARN(name << ": best charge " << m.charge << "+ at 10Dq " << m.tendq << " (cos " << m.cosine
            << "), free shift " << m.shift << " eV");
  return m;
}

}  // namespace

TEST_CASE("the calibration half fixes the Mn3+ and Mn4+ offsets", "[calibration]") {
  for (const auto& [name, charge] : std::map<std::string, int>{{"Data2_LaMnO3", 3}, {"Data2_SrMnO3", 4}}) {
    INFO(name);
    const Match m = best_match(name, charge);
    CHECK(m.charge == charge);
    // The shipped offset is where this spectrum fits best, to one 0.05 eV step.
    CHECK(std::abs(m.shift) <= 0.05 + 1e-9);
  }
}

TEST_CASE("the held-out half matches its own charge at the shipped offsets", "[calibration]") {
  const std::map<std::string, int> references{
      {"Data2_MnO", 2}, {"Data3_MnO", 2}, {"Data3_LaMnO3", 3}, {"Data3_MnO2", 4}};
  for (const auto& [name, charge] : references) {
    INFO(name);
    const Match m = best_match(name, charge);
    CHECK(m.charge == charge);
    CHECK(m.cosine > 0.9);
    // Within the daemon's default per-spectrum shift range (library.preprocess.max_shift_ev).
    CHECK(std::abs(m.shift) <= 0.5 + 1e-9);
  }
}
