// Mixed valence (core/mixture.hpp): two-component fits with atom fractions, on a small library
// of simulated Mn2+/3+/4+ spectra, where the components' own spectra are in the library and the
// answer is known exactly.

#include <catch2/catch.hpp>

#include <string>

#include "multiplet_support.hpp"
#include "xasmap/core/atomic_data.hpp"
#include "xasmap/core/heldout.hpp"
#include "xasmap/core/mixture.hpp"
#include "xasmap/core/model.hpp"

using namespace xasmap;

namespace {

// Mn2+/3+/4+ at 10Dq 0-2.4 eV in 0.4 eV steps, on their raw (sum-rule) intensity scale.
const HeldOutClean& clean() {
  static const HeldOutClean c = [] {
    HeldOutPhysics p;
    for (int k = 0; k <= 6; ++k) p.tendq_ev.push_back(0.4 * k);
    p.energy_offset_ev = {{"Mn2+", 645.05}, {"Mn3+", 646.35}, {"Mn4+", 647.10}};
    return simulate_heldout(p, testing::table(), 2);
  }();
  return c;
}

// The library's model; with kEdgeStep (not linear on a window), mixture() reads every library row
// on the window itself instead of through the compact basis.
Model fit_model(BackgroundKind background, double max_shift_ev = 0.0) {
  const Library lib = testing::charge_tendq_library(clean());
  ModelOptions o;
  o.preprocess.grid = EnergyGrid::from_range(635, 660, 0.1);
  o.preprocess.background = background;
  o.max_shift_ev = max_shift_ev;
  o.landmarks = 12;
  o.estimate_dims = 6;
  o.threads = 1;
  return Model::fit(lib, o);
}

const Model& model() {
  static const Model m = fit_model(BackgroundKind::kPrePostLine);
  return m;
}

const Model& step_model() {
  static const Model m = fit_model(BackgroundKind::kEdgeStep);
  return m;
}

const HeldOutClean::Entry& entry(int charge, double tendq) {
  for (const auto& e : clean().entries) {
    if (e.charge == charge && std::abs(e.tendq_ev - tendq) < 1e-9) return e;
  }
  throw std::runtime_error("no such entry");
}

// Atom fraction fa of entry a and 1 - fa of entry b, on the simulator's own scale.
Mixture mix(const HeldOutClean::Entry& a, const HeldOutClean::Entry& b, double fa, const MixtureOptions& o,
            double from_ev = 0, double to_ev = 1e9, const Model& with = model(), double offset_ev = 0) {
  const Eigen::VectorXd y = fa * a.intensity + (1.0 - fa) * b.intensity;
  std::vector<double> e, v;
  for (Eigen::Index i = 0; i < y.size(); ++i) {
    if (clean().energy_ev[i] < from_ev || clean().energy_ev[i] > to_ev) continue;
    e.push_back(clean().energy_ev[i] + offset_ev);
    v.push_back(y[i]);
  }
  const Spectrum s{Eigen::Map<Eigen::VectorXd>(e.data(), static_cast<Eigen::Index>(e.size())),
                   Eigen::Map<Eigen::VectorXd>(v.data(), static_cast<Eigen::Index>(v.size()))};
  const Prepared p = preprocess(s, with.options().preprocess);
  Estimate est;
  with.estimate_into(p, est);
  return with.mixture(p, est, o);
}

MixtureOptions with_holes() {
  MixtureOptions o;
  o.holes = {{2.0, holes_of_ion("Mn2+")}, {3.0, holes_of_ion("Mn3+")}, {4.0, holes_of_ion("Mn4+")}};
  return o;
}

}  // namespace

TEST_CASE("holes of 3d ions", "[mixture]") {
  CHECK(holes_of_ion("Mn2+") == 5);
  CHECK(holes_of_ion("Mn4+") == 7);
  CHECK(holes_of_ion("Ti4+") == 10);
  CHECK(holes_of_ion("Ni2+") == 2);
}

TEST_CASE("a mixture of two library spectra: atom fractions and mean valence", "[mixture]") {
  const MixtureOptions o = with_holes();
  for (const double fa : {0.2, 0.5, 0.7}) {
    const Mixture m = mix(entry(2, 0.8), entry(4, 2.0), fa, o);
    INFO("Mn2+ fraction " << fa << ": gain " << m.gain);
    REQUIRE_FALSE(m.single_phase);
    REQUIRE(m.components.size() == 2);
    const auto& c2 = m.components[0].class_value == 2.0 ? m.components[0] : m.components[1];
    CHECK(c2.fraction == Approx(fa).margin(0.01));
    CHECK(m.mean_value == Approx(2.0 * fa + 4.0 * (1 - fa)).margin(0.02));
    CHECK(m.components[0].fraction >= m.components[1].fraction);
    CHECK(m.gain > 0.9);
  }
  // Read by area instead of atoms, a 50/50 Mn2+/Mn4+ mixture is 5:7 in area: valence 3.17.
  const Mixture by_area = mix(entry(2, 0.8), entry(4, 2.0), 0.5, MixtureOptions{});
  CHECK(by_area.mean_value == Approx(2.0 * 5.0 / 12.0 + 4.0 * 7.0 / 12.0).margin(0.02));
  // Adjacent charges too.
  const Mixture m34 = mix(entry(3, 1.6), entry(4, 2.4), 0.4, o);
  REQUIRE_FALSE(m34.single_phase);
  CHECK(m34.mean_value == Approx(3.0 * 0.4 + 4.0 * 0.6).margin(0.02));
}

TEST_CASE("a pure library spectrum stays single phase, with its own charge", "[mixture]") {
  const MixtureOptions o = with_holes();
  for (const auto& e : clean().entries) {
    const Mixture m = mix(e, e, 1.0, o);
    INFO("Mn" << e.charge << "+ 10Dq " << e.tendq_ev << ": gain " << m.gain);
    CHECK(m.single_phase);
    REQUIRE(m.components.size() == 1);
    CHECK(m.components[0].class_value == e.charge);
    CHECK(m.components[0].fraction == 1.0);
    CHECK(m.mean_value == e.charge);
  }
}

TEST_CASE("a mixture on part of the range: fractions from each component's share of its edge", "[mixture]") {
  // 638-655 eV: the window holds different shares of the Mn2+ and Mn4+ edges' areas.
  const Mixture m = mix(entry(2, 0.8), entry(4, 2.0), 0.5, with_holes(), 638.0, 655.0);
  REQUIRE_FALSE(m.single_phase);
  CHECK(m.mean_value == Approx(3.0).margin(0.03));
}

TEST_CASE("each component reports its own 10Dq, and a single phase the estimate's", "[mixture]") {
  const Mixture m = mix(entry(2, 0.8), entry(4, 2.0), 0.5, with_holes());
  REQUIRE_FALSE(m.single_phase);
  for (const MixtureComponent& c : m.components) {
    REQUIRE(c.values.size() == 2);
    CHECK(c.values[0] == c.class_value);
    // The library holds both components at 0.4 eV steps: within a tenth of a step.
    CHECK(c.values[1] == Approx(c.class_value == 2.0 ? 0.8 : 2.0).margin(0.04));
  }
  const Mixture pure = mix(entry(3, 1.2), entry(3, 1.2), 1.0, with_holes());
  REQUIRE(pure.single_phase);
  CHECK(pure.components[0].values[1] == Approx(1.2).margin(0.04));
}

TEST_CASE("mixtures under preprocessing that is not linear on a window (edge-step background)", "[mixture]") {
  // The exact rows path: the same answers as through the basis.
  for (const double fa : {0.3, 0.6}) {
    const Mixture m = mix(entry(2, 0.8), entry(4, 2.0), fa, with_holes(), 0, 1e9, step_model());
    INFO("Mn2+ fraction " << fa << ": gain " << m.gain);
    REQUIRE_FALSE(m.single_phase);
    CHECK(m.mean_value == Approx(2.0 * fa + 4.0 * (1 - fa)).margin(0.03));
  }
  const Mixture pure = mix(entry(4, 2.0), entry(4, 2.0), 1.0, with_holes(), 0, 1e9, step_model());
  CHECK(pure.single_phase);
}

TEST_CASE("part-range spectra a few points apart share the library's rows and agree", "[mixture]") {
  // Windows narrowed to the 0.5 eV lattice: 638.1-655.0 and 638.4-655.3 eV are both read on
  // 638.5-654.9 eV, where their points are the same: the same answer.
  const Mixture a = mix(entry(2, 0.8), entry(3, 1.6), 0.5, with_holes(), 638.1, 655.0);
  const Mixture b = mix(entry(2, 0.8), entry(3, 1.6), 0.5, with_holes(), 638.4, 655.3);
  INFO("gain " << a.gain << ", mixture novelty " << a.novelty << ", minor " << a.components.back().fraction);
  REQUIRE_FALSE(a.single_phase);
  REQUIRE_FALSE(b.single_phase);
  CHECK(a.mean_value == Approx(2.5).margin(0.03));
  CHECK(b.mean_value == Approx(a.mean_value).margin(1e-4));
  CHECK(b.components[0].fraction == Approx(a.components[0].fraction).margin(1e-4));
}

TEST_CASE("a two-phase spectrum's single charge is not confident", "[mixture]") {
  Estimate e;
  e.class_parameter = 0;
  e.values = {3.0, 1.2};
  e.confidence = {0.99, std::nan("")};
  Mixture single;
  single.components = {{3.0, 1.0, 0.0, -1, 1.0, {}}};
  cap_class_confidence(single, e);
  CHECK(e.confidence[0] == 0.99);  // single phase: as estimated
  Mixture two;
  two.single_phase = false;
  two.components = {{4.0, 0.5, 0.02, 1, 0.5, {}}, {2.0, 0.5, 0.02, 2, 0.5, {}}};
  cap_class_confidence(two, e);
  CHECK(e.confidence[0] == 0.0);  // Mn3+ is neither component of a 2+/4+ mixture
  e.confidence[0] = 0.95;
  two.components = {{4.0, 0.7, 0.02, 1, 0.7, {}}, {3.0, 0.3, 0.02, 2, 0.3, {}}};
  cap_class_confidence(two, e);
  CHECK(e.confidence[0] == Approx(0.3));
}

TEST_CASE("a model moved after its mixture windows were built still reads them", "[mixture]") {
  // Windows fill their rows a shifted copy at a time from the model that asks, not one captured
  // when they were built: a model moved (as a daemon moves a fitted one into place) stays right.
  // With shifted copies (+-0.4 eV), the second spectrum, 0.35 eV up, tries copies the first did not.
  for (const BackgroundKind background : {BackgroundKind::kPrePostLine, BackgroundKind::kEdgeStep}) {
    Model first = fit_model(background, 0.4);
    const Mixture before = mix(entry(2, 0.8), entry(4, 2.0), 0.4, with_holes(), 638.0, 655.0, first);
    const Model moved = std::move(first);
    const Mixture after = mix(entry(2, 0.8), entry(4, 2.0), 0.4, with_holes(), 638.0, 655.0, moved, 0.35);
    REQUIRE_FALSE(before.single_phase);
    REQUIRE_FALSE(after.single_phase);
    CHECK(before.mean_value == Approx(2.0 * 0.4 + 4.0 * 0.6).margin(0.03));
    CHECK(after.mean_value == Approx(2.0 * 0.4 + 4.0 * 0.6).margin(0.03));
    CHECK(after.shift_ev == Approx(0.35).margin(0.051));
  }
}
