#include "latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace xasmap::service {

namespace {
constexpr double kFloorUs = 0.1;
const double kLogStep = std::log(1.01);

int bucket_of(double us) {
  if (!(us > kFloorUs)) return 0;
  const int b = 1 + static_cast<int>(std::log(us / kFloorUs) / kLogStep);
  return std::min(b, LatencyHistogram::kBuckets - 1);
}

double upper_edge(int b) { return kFloorUs * std::exp(kLogStep * b); }
}  // namespace

void LatencyHistogram::record(double us) {
  if (!std::isfinite(us)) return;
  us = std::max(us, 0.0);
  ++buckets_[static_cast<std::size_t>(bucket_of(us))];
  if (count_ == 0 || us > max_) max_ = us;
  if (count_ == 0 || us < min_) min_ = us;
  sum_ += us;
  ++count_;
}

void LatencyHistogram::clear() { *this = LatencyHistogram(); }

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  max_ = count_ ? std::max(max_, other.max_) : other.max_;
  min_ = count_ ? std::min(min_, other.min_) : other.min_;
  sum_ += other.sum_;
  count_ += other.count_;
}

double LatencyHistogram::quantile(double q) const {
  if (count_ == 0) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the quantile, 1-based: the smallest value with at least q of the samples at or below.
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets_[static_cast<std::size_t>(b)];
    if (seen >= rank) return std::clamp(upper_edge(b), min_, max_);
  }
  return max_;
}

double LatencyHistogram::fraction_below(double us) const {
  if (count_ == 0) return 0.0;
  std::uint64_t below = 0;
  for (int b = 0; b < kBuckets && upper_edge(b) <= us * (1 + 1e-12); ++b) below += buckets_[static_cast<std::size_t>(b)];
  return static_cast<double>(below) / static_cast<double>(count_);
}

}  // namespace xasmap::service
