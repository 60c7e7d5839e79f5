// The library builder's jobs (service/app/library_builder.cpp): what each simulated spectrum is
// asked to be, before any simulation.

#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>

#include "library_builder.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/core/atomic_data.hpp"

using namespace xasmap;

TEST_CASE("charge transfer: delta_shift_ev moves each ion's Delta sweep, and the label is the Delta simulated",
          "[service][library]") {
  config::SimulateConfig s;
  s.tendq_ev = config::Sweep::single(1.0);
  s.slater_scale = config::Sweep::single(0.8);
  s.temperature_k = config::Sweep::single(300.0);
  s.gauss_fwhm_ev = config::Sweep::single(0.2);
  s.charge_transfer.configurations = 2;
  s.charge_transfer.delta_ev = config::Sweep{{-2.0, 0.0, 2.0}, 0, 0, 0};
  s.charge_transfer.delta_shift_ev = {{"Mn2+", 7.0}, {"Mn3+", 4.5}};  // Mn4+: none
  const AtomicTable table = AtomicTable::load(std::string(XASMAP_SOURCE_DIR) + "/data/atomic");
  const auto jobs = service::make_jobs(s, table);
  REQUIRE(jobs.size() == 9);
  std::map<int, std::set<double>> deltas;
  for (const SimulationJob& j : jobs) {
    const int charge = static_cast<int>(j.labels.at("charge"));
    const double delta = j.parameters.charge_transfer.delta;
    CHECK(j.labels.at("delta") == delta);
    deltas[charge].insert(delta);
  }
  CHECK(deltas[2] == std::set<double>{5.0, 7.0, 9.0});
  CHECK(deltas[3] == std::set<double>{2.5, 4.5, 6.5});
  CHECK(deltas[4] == std::set<double>{-2.0, 0.0, 2.0});
}
