// What xasmapd exports to Prometheus (daemon_impl.hpp; docs/operations.md, Monitoring): the
// counters every message passes through, the queue and the model, and each stage's latency.

#include "daemon_impl.hpp"

namespace xasmap::service {

void Daemon::Impl::record_stages(const protocol::Latency& latency) {
  stage_latency[kStageQueue].record(latency.queue * 1e-6);
  stage_latency[kStageDecode].record(latency.decode * 1e-6);
  stage_latency[kStageCompute].record(latency.compute * 1e-6);
}

std::string Daemon::Impl::prometheus_text() const {
  PrometheusText p;
  // The outcomes before `received` (counters()): received >= published + rejected + dropped.
  const Counters c = counters();
  std::array<std::uint64_t, kErrorCodes> by_code{};
  for (std::size_t i = 0; i < kErrorCodes; ++i) by_code[i] = rejected_by_code[i].load();

  p.family("xasmapd_received_total", "counter", "Messages read from the input socket.");
  p.sample("xasmapd_received_total", {}, c.received);
  p.family("xasmapd_published_total", "counter", "Results published: estimates and stack maps.");
  p.sample("xasmapd_published_total", {}, c.published);
  p.family("xasmapd_rejected_total", "counter",
           "Messages answered with an error, by its code (docs/protocol.md, Errors).");
  for (std::size_t i = 0; i < kErrorCodes; ++i) {
    const auto code = static_cast<ErrorCode>(i);
    if (code == ErrorCode::kOverloaded) continue;  // drops: xasmapd_dropped_total
    p.sample("xasmapd_rejected_total", {{"code", std::string(protocol::to_string(code))}}, by_code[i]);
  }
  p.family("xasmapd_dropped_total", "counter", "Messages dropped by the overflow policy (input.overflow).");
  p.sample("xasmapd_dropped_total", {}, c.dropped);
  p.family("xasmapd_duplicates_total", "counter",
           "Resent messages answered 'duplicate' instead of estimated again (pattern router).");
  p.sample("xasmapd_duplicates_total", {}, c.duplicates);
  p.family("xasmapd_thread_failures_total", "counter", "Exceptions that escaped a thread's loop (restarted).");
  p.sample("xasmapd_thread_failures_total", {}, thread_failures.load());

  p.family("xasmapd_queue_depth", "gauge", "Messages received and not yet answered.");
  p.sample("xasmapd_queue_depth", {}, c.queue_depth);
  p.family("xasmapd_memory_used_bytes", "gauge", "Bytes charged to input.memory_budget_bytes.");
  p.sample("xasmapd_memory_used_bytes", {}, static_cast<std::uint64_t>(budget.used()));
  p.family("xasmapd_memory_budget_bytes", "gauge", "input.memory_budget_bytes.");
  p.sample("xasmapd_memory_budget_bytes", {}, static_cast<std::uint64_t>(budget.limit()));
  p.family("xasmapd_ready", "gauge", "1 while the daemon estimates, 0 while it starts or stops.");
  p.sample("xasmapd_ready", {}, std::uint64_t{ready.load() ? 1u : 0u});
  p.family("xasmapd_waiting_for_subscriber", "gauge",
           "1 while the input is not read because nothing is subscribed to the output (output.wait_for_subscriber).");
  p.sample("xasmapd_waiting_for_subscriber", {}, std::uint64_t{holding_input() ? 1u : 0u});
  p.family("xasmapd_uptime_seconds", "gauge", "Seconds since the daemon started.");
  p.sample("xasmapd_uptime_seconds", {}, std::chrono::duration<double>(Clock::now() - started).count());
  p.family("xasmapd_build_info", "gauge", "Always 1; the labels say which xasmapd and protocol.");
  p.sample("xasmapd_build_info", {{"version", std::string(kVersion)},
                                  {"protocol", std::to_string(protocol::kProtocolVersion)}},
           std::uint64_t{1});

  if (const auto state = current_model()) {
    p.family("xasmapd_model_generation", "gauge", "The model in service: 1 at start-up, one more per reload.");
    p.sample("xasmapd_model_generation", {}, state->generation);
    p.family("xasmapd_model_age_seconds", "gauge", "Seconds since the model in service was built or loaded.");
    p.sample("xasmapd_model_age_seconds", {}, std::chrono::duration<double>(Clock::now() - state->built).count());
    p.family("xasmapd_library_spectra", "gauge", "Spectra in the model's library.");
    p.sample("xasmapd_library_spectra", {}, state->summary.size);
    const auto t = state->tracker->snapshot();
    p.family("xasmapd_session_offset_ev", "gauge",
             "The session's energy offset (measured = true + offset, eV): applied is what estimates use, "
             "start is the configured or calibrated one, tracked is the tracker's (docs/estimation.md).");
    p.sample("xasmapd_session_offset_ev", {{"kind", "applied"}}, state->applied_offset_ev());
    p.sample("xasmapd_session_offset_ev", {{"kind", "start"}}, state->session_start_ev);
    p.sample("xasmapd_session_offset_ev", {{"kind", "tracked"}}, t.tracked_ev);
    p.family("xasmapd_session_offset_samples", "gauge", "Confident estimates in the tracker's window.");
    p.sample("xasmapd_session_offset_samples", {}, static_cast<std::uint64_t>(t.samples));
    p.family("xasmapd_session_offset_searched_ev", "gauge",
             "How far around the session offset each spectrum is searched; 0 once the offset is known.");
    p.sample("xasmapd_session_offset_searched_ev", {}, state->search_ev());
  }

  p.family("xasmapd_latency_seconds", "histogram",
           "Each result's time by stage: queue (received to a worker), decode, compute (estimate), service "
           "(received to published).");
  static constexpr std::array<const char*, kStages> kStageNames{"queue", "decode", "compute", "service"};
  for (int s = 0; s < kStages; ++s) p.histogram("xasmapd_latency_seconds", {{"stage", kStageNames[s]}},
                                                stage_latency[s].snapshot());
  return p.text();
}

}  // namespace xasmap::service
