#pragma once
// A fixed-size logarithmic histogram of latencies in microseconds: buckets 1% wide from 0.1 us to
// about 10^9 us, so any percentile is within 1% of the exact one; the maximum is exact. Recording
// does not allocate.

#include <array>
#include <cstdint>

namespace xasmap::service {

class LatencyHistogram {
 public:
  void record(double us);
  void clear();
  void merge(const LatencyHistogram& other);
  // The q-quantile (0 <= q <= 1), the upper edge of its bucket capped at max(); 0 when empty.
  double quantile(double q) const;
  // The fraction of samples in buckets that end at or below `us` (within the 1% bucket width).
  double fraction_below(double us) const;
  double max() const { return max_; }
  double min() const { return count_ ? min_ : 0.0; }
  double mean() const { return count_ ? sum_ / static_cast<double>(count_) : 0.0; }
  std::uint64_t count() const { return count_; }

  static constexpr int kBuckets = 2316;  // 1 + ceil(ln(1e9 us / 0.1 us) / ln(1.01))

 private:
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
  double max_ = 0, min_ = 0, sum_ = 0;
};

}  // namespace xasmap::service
