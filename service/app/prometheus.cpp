#include "prometheus.hpp"

#include <charconv>
#include <cmath>

namespace xasmap::service {

void StageHistogram::record(double seconds) {
  if (!(seconds >= 0.0)) seconds = 0.0;  // NaN or a clock that stepped back: the first bucket
  std::size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  const double ns = std::min(seconds * 1e9, 1e18);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::llround(ns)), std::memory_order_relaxed);
}

StageHistogram::Snapshot StageHistogram::snapshot() const {
  Snapshot s;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) * 1e-9;
  return s;
}

std::string escape_prometheus(std::string_view text, bool quotes) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

// A sample value: integers as integers, others in the shortest form that reads back exactly,
// +Inf, -Inf and NaN as the format spells them.
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buffer[32];
  const auto [ptr, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  return ec == std::errc() ? std::string(buffer, ptr) : "NaN";
}

}  // namespace

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_prometheus(help, false);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PrometheusText::name_and_labels(std::string_view name, const Labels& labels) {
  out_ += name;
  if (labels.empty()) return;
  out_ += '{';
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i) out_ += ',';
    out_ += labels[i].first;
    out_ += "=\"";
    out_ += escape_prometheus(labels[i].second, true);
    out_ += '"';
  }
  out_ += '}';
}

void PrometheusText::sample(std::string_view name, const Labels& labels, double value) {
  name_and_labels(name, labels);
  out_ += ' ';
  out_ += number(value);
  out_ += '\n';
}

void PrometheusText::sample(std::string_view name, const Labels& labels, std::uint64_t value) {
  name_and_labels(name, labels);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void PrometheusText::histogram(std::string_view name, const Labels& labels, const StageHistogram::Snapshot& s) {
  const std::string base(name);
  for (std::size_t i = 0; i < s.cumulative.size(); ++i) {
    Labels with_le = labels;
    with_le.emplace_back("le", i < StageHistogram::kBounds.size() ? number(StageHistogram::kBounds[i]) : "+Inf");
    sample(base + "_bucket", with_le, s.cumulative[i]);
  }
  sample(base + "_sum", labels, s.sum_seconds);
  sample(base + "_count", labels, s.count());
}

}  // namespace xasmap::service
