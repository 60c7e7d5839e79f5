#pragma once
// xasmapd's optional HTTP endpoint (metrics.http_endpoint): GET /metrics in Prometheus's text
// format, from threads of its own (one listening, two answering), so that a scrape never waits on,
// nor delays, the estimating threads. Anything else gets 404 and says where the metrics are.

#include <functional>
#include <memory>
#include <string>

#include "xasmap/config/config.hpp"

namespace xasmap::service {

class MetricsEndpoint {
 public:
  // Binds `at` now (throws xasmap::Error naming metrics.http_endpoint when it cannot) and serves
  // `render()`'s text until destroyed.
  MetricsEndpoint(const config::HostPort& at, std::function<std::string()> render);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // HOST:PORT as bound (the port chosen when 0 was asked for).
  const std::string& address() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace xasmap::service
