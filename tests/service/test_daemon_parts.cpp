#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "bounded_queue.hpp"
#include "feed_sources.hpp"
#include "latency_histogram.hpp"
#include "memory_budget.hpp"
#include "prometheus.hpp"

using namespace xasmap::service;

TEST_CASE("latency histogram quantiles are within 1% of the exact ones", "[service]") {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> dist(4.0, 1.2);  // microseconds, heavy tail
  std::vector<double> v(20000);
  LatencyHistogram h;
  for (double& x : v) {
    x = dist(rng);
    h.record(x);
  }
  std::sort(v.begin(), v.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = v[static_cast<std::size_t>(std::ceil(q * v.size())) - 1];
    CHECK(h.quantile(q) >= exact * (1 - 1e-9));
    CHECK(h.quantile(q) <= exact * 1.0101);
  }
  CHECK(h.max() == v.back());
  CHECK(h.min() == v.front());
  CHECK(h.count() == v.size());
  CHECK(h.quantile(1.0) == v.back());

  LatencyHistogram other;
  other.record(1e7);
  h.merge(other);
  CHECK(h.max() == 1e7);
  CHECK(h.count() == v.size() + 1);
  h.clear();
  CHECK(h.count() == 0);
  CHECK(h.quantile(0.5) == 0.0);

  // Minutes-long latencies (an overloaded service) keep their 1% resolution: the range reaches
  // 10^9 us. A narrower range once capped every quantile at 10.8 s.
  for (double us : {2e7, 3e7, 6e7, 3e8}) h.record(us);
  CHECK(h.quantile(0.5) >= 3e7);
  CHECK(h.quantile(0.5) <= 3e7 * 1.0101);
  CHECK(h.quantile(0.75) >= 6e7);
  CHECK(h.quantile(0.75) <= 6e7 * 1.0101);
}

TEST_CASE("stage histograms: Prometheus's cumulative buckets, recorded from several threads", "[service][metrics]") {
  StageHistogram h;
  // Four threads, 25,000 samples each: 1 us, 30 us, 2 ms and 20 s (past the last bound).
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < 25000; ++i) h.record(i % 4 == 0 ? 1e-6 : i % 4 == 1 ? 3e-5 : i % 4 == 2 ? 2e-3 : 20.0);
    });
  }
  for (auto& t : threads) t.join();
  const auto s = h.snapshot();
  CHECK(s.count() == 100000);
  CHECK(s.cumulative[0] == 25000);  // le 1e-5
  CHECK(s.cumulative[1] == 25000);  // le 2.5e-5
  CHECK(s.cumulative[2] == 50000);  // le 5e-5
  CHECK(s.cumulative[6] == 50000);  // le 1e-3
  CHECK(s.cumulative[7] == 75000);  // le 2.5e-3
  CHECK(s.cumulative[18] == 75000);  // le 10
  CHECK(s.sum_seconds == Approx(25000 * (1e-6 + 3e-5 + 2e-3 + 20.0)).epsilon(1e-9));
  // A sample on a bound falls in that bucket (le is "less than or equal"); NaN in the first.
  StageHistogram edge;
  edge.record(1e-3);
  edge.record(std::nan(""));
  CHECK(edge.snapshot().cumulative[5] == 1);  // le 5e-4: the NaN only
  CHECK(edge.snapshot().cumulative[6] == 2);  // le 1e-3
}

TEST_CASE("Prometheus text: families, escaped labels, histograms", "[service][metrics]") {
  PrometheusText p;
  p.family("x_total", "counter", "Line one\nback\\slash");
  p.sample("x_total", {{"code", "a\"b\\c\nd"}}, std::uint64_t{7});
  p.family("g", "gauge", "A gauge.");
  p.sample("g", {}, 0.25);
  p.sample("g", {{"kind", "inf"}}, std::numeric_limits<double>::infinity());
  StageHistogram h;
  h.record(2e-5);
  p.family("lat_seconds", "histogram", "Latency.");
  p.histogram("lat_seconds", {{"stage", "queue"}}, h.snapshot());
  const std::string& t = p.text();
  CHECK(t.find("# HELP x_total Line one\\nback\\\\slash\n# TYPE x_total counter\n") == 0);
  CHECK(t.find("x_total{code=\"a\\\"b\\\\c\\nd\"} 7\n") != std::string::npos);
  CHECK(t.find("g 0.25\n") != std::string::npos);
  CHECK(t.find("g{kind=\"inf\"} +Inf\n") != std::string::npos);
  CHECK(t.find("lat_seconds_bucket{stage=\"queue\",le=\"1e-05\"} 0\n") != std::string::npos);
  CHECK(t.find("lat_seconds_bucket{stage=\"queue\",le=\"2.5e-05\"} 1\n") != std::string::npos);
  CHECK(t.find("lat_seconds_bucket{stage=\"queue\",le=\"+Inf\"} 1\n") != std::string::npos);
  CHECK(t.find("lat_seconds_sum{stage=\"queue\"} 2e-05\n") != std::string::npos);
  CHECK(t.find("lat_seconds_count{stage=\"queue\"} 1\n") != std::string::npos);
}

TEST_CASE("bounded queue overflow policies", "[service]") {
  const auto forever = [] { return true; };
  SECTION("drop_oldest displaces the oldest") {
    BoundedQueue<int> q(3);
    for (int i = 0; i < 3; ++i) CHECK(q.push(i, OverflowPolicy::kDropOldest, forever).queued);
    const auto r = q.push(3, OverflowPolicy::kDropOldest, forever);
    CHECK(r.queued);
    REQUIRE(r.dropped.has_value());
    CHECK(*r.dropped == 0);
    CHECK(*q.pop(std::chrono::milliseconds(0)) == 1);
  }
  SECTION("drop_newest refuses the newcomer") {
    BoundedQueue<int> q(2);
    q.push(0, OverflowPolicy::kDropNewest, forever);
    q.push(1, OverflowPolicy::kDropNewest, forever);
    const auto r = q.push(2, OverflowPolicy::kDropNewest, forever);
    CHECK_FALSE(r.queued);
    CHECK(*r.dropped == 2);
    CHECK(q.size() == 2);
  }
  SECTION("block waits for room; nothing is lost") {
    BoundedQueue<int> q(4);
    std::atomic<long> sum{0};
    std::thread consumer([&] {
      while (auto v = q.pop(std::chrono::milliseconds(200))) sum += *v;
    });
    long expected = 0;
    for (int i = 0; i < 5000; ++i) {
      const auto r = q.push(i, OverflowPolicy::kBlock, forever);
      CHECK(r.queued);
      expected += i;
    }
    q.close();
    consumer.join();
    CHECK(sum.load() == expected);
  }
  SECTION("block over capacity when told to stop waiting; closed refuses") {
    BoundedQueue<int> q(1);
    q.push(0, OverflowPolicy::kBlock, forever);
    CHECK(q.push(1, OverflowPolicy::kBlock, [] { return false; }).queued);
    CHECK(q.size() == 2);
    q.close();
    CHECK_FALSE(q.push(2, OverflowPolicy::kBlock, forever).queued);
    CHECK(*q.pop(std::chrono::milliseconds(0)) == 0);
    CHECK(*q.pop(std::chrono::milliseconds(0)) == 1);
    CHECK_FALSE(q.pop(std::chrono::milliseconds(0)).has_value());
    CHECK(q.closed_and_empty());
  }
}

TEST_CASE("memory budget: refusals, forced charges, waiting, and charges given back", "[service][memory]") {
  MemoryBudget budget(1000);
  CHECK(budget.try_acquire(600));
  CHECK_FALSE(budget.try_acquire(500));  // 1100 > 1000: nothing taken
  CHECK(budget.used() == 600);
  budget.force_acquire(700);  // a message already accepted: granted over the limit
  CHECK(budget.used() == 1300);
  CHECK_FALSE(budget.try_acquire(1));
  budget.release(700);
  CHECK(budget.used() == 600);
  {
    BudgetCharge charge(&budget, 600);  // adopts the first 600
    BudgetCharge moved = std::move(charge);
    CHECK(charge.bytes() == 0);
    CHECK(moved.bytes() == 600);
    CHECK(budget.used() == 600);  // a move gives nothing back
  }
  CHECK(budget.used() == 0);  // the destructor did, once

  // A waiter is let in by a release from another thread (as ZeroMQ's I/O thread frees a message).
  REQUIRE(budget.try_acquire(900));
  std::atomic<bool> let_in{false};
  std::thread waiter([&] { let_in = budget.acquire_waiting(500, [] { return true; }); });
  budget.release(900);
  waiter.join();
  CHECK(let_in.load());
  CHECK(budget.used() == 500);

  // A waiter told to stop takes its bytes anyway (the message was accepted) and says so.
  CHECK_FALSE(budget.acquire_waiting(800, [] { return false; }));
  CHECK(budget.used() == 1300);
}

TEST_CASE("synthetic stacks: grey levels between two phases mix them by atom fraction", "[feed]") {
  using namespace xasmap::service;
  xasmap::Library lib;
  lib.parameters = {{"charge", true, {}}};
  Eigen::VectorXd e = Eigen::VectorXd::LinSpaced(301, 630.0, 660.0);
  Eigen::VectorXd a = (-(e.array() - 640.0).square() / 2.0).exp();
  Eigen::VectorXd b = 2.0 * (-(e.array() - 645.0).square() / 2.0).exp();
  lib.spectra = {xasmap::Spectrum{e, a}, xasmap::Spectrum{e, b}};
  lib.values = {{2.0}, {4.0}};
  lib.labels = {"A", "B"};
  Perturbation clean;
  clean.clean = true;
  std::mt19937_64 rng(1);
  const Source s = make_stack(lib, {{0, 51, 255}}, {"A", "B"}, clean, rng);
  REQUIRE(s.shape == std::vector<std::int64_t>{1, 3, static_cast<std::int64_t>(s.energy.size())});
  const std::size_t n = s.energy.size();
  for (std::size_t i = 0; i < n; i += 7) {
    const double ya = s.intensity[i], yb = s.intensity[2 * n + i];
    CHECK(s.intensity[n + i] == Approx(0.8 * ya + 0.2 * yb).margin(1e-12));  // grey 51: 20 % of B
  }
  // The built-in map holds both phases and, in its strip, every fraction between them.
  const auto image = default_image(64, 64);
  std::set<int> greys;
  for (const auto& row : image) greys.insert(row.begin(), row.end());
  CHECK(greys.count(0) == 1);
  CHECK(greys.count(255) == 1);
  CHECK(greys.size() >= 30);
}
