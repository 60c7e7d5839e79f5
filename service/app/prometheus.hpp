#pragma once
// Prometheus's text exposition format (version 0.0.4), written by hand: counters, gauges and
// histograms with labels, for xasmapd's /metrics (docs/operations.md, Monitoring). And the one
// kind of histogram it exports: fixed buckets in seconds, recorded from any thread without a lock.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xasmap::service {

// Latencies in seconds over fixed upper bounds (10 us to 10 s, about 2.5 per decade), as
// Prometheus's histogram type holds them. record() is a few relaxed atomic additions.
class StageHistogram {
 public:
  static constexpr std::array<double, 19> kBounds{1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
                                                  2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25,
                                                  0.5, 1.0, 2.5, 5.0, 10.0};
  void record(double seconds);

  struct Snapshot {
    std::array<std::uint64_t, kBounds.size() + 1> cumulative{};  // the last is +Inf: the count
    double sum_seconds = 0;
    std::uint64_t count() const { return cumulative.back(); }
  };
  // Counts read one bucket at a time: a record() running meanwhile may or may not be in it, but
  // the buckets are cumulated from the same reads, so they never decrease along le and end at
  // the count.
  Snapshot snapshot() const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

using Labels = std::vector<std::pair<std::string, std::string>>;

class PrometheusText {
 public:
  // Starts a metric family: its # HELP and # TYPE lines (type: counter, gauge or histogram).
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  void sample(std::string_view name, const Labels& labels, std::uint64_t value);
  // One labelled series of a histogram family: NAME_bucket{...,le=...}, NAME_sum and NAME_count.
  void histogram(std::string_view name, const Labels& labels, const StageHistogram::Snapshot& s);
  const std::string& text() const { return out_; }

  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  void name_and_labels(std::string_view name, const Labels& labels);
  std::string out_;
};

// A label value or help text escaped as the format asks: \\, \" (label values only) and \n.
std::string escape_prometheus(std::string_view text, bool quotes);

}  // namespace xasmap::service
