// The daemon's NeXus result writer (daemon_impl.hpp; docs/files.md): output.nexus_file gets one
// NXentry per stack, appended by a thread of its own so that the disk never holds up a worker.

#include "daemon_impl.hpp"
#include "nexus.hpp"

namespace xasmap::service {

void Daemon::Impl::queue_nexus(protocol::EstimateMapMessage map, double session_offset_ev,
                               std::shared_ptr<const ModelState> state) {
  {
    std::lock_guard lock(nexus_mutex);
    if (nexus_jobs.size() < kNexusWaiting) {
      nexus_jobs.push_back({std::move(map), session_offset_ev, std::move(state)});
      nexus_cv.notify_one();
      return;
    }
  }
  ++nexus_skipped;
  log->error("output.nexus_file: stack '{}' not written: {} stacks are waiting for the disk (the estimate_map is "
             "published as usual)",
             map.id, kNexusWaiting);
}

void Daemon::Impl::nexus_loop() {
  for (;;) {
    NexusJob job;
    {
      std::unique_lock lock(nexus_mutex);
      nexus_cv.wait(lock, [this] { return nexus_closing || !nexus_jobs.empty(); });
      if (nexus_jobs.empty()) return;  // closing, and nothing waits
      job = std::move(nexus_jobs.front());
      nexus_jobs.pop_front();
    }
    const ModelState& s = *job.state;
    try {
      NexusResult r = nexus_result_of(job.map);
      r.version = kVersion;
      r.model_checksum = s.model_checksum;
      r.library = s.report.source + ": " + std::to_string(s.summary.size) + " spectra, " + s.summary.method + ", " +
                  std::to_string(s.summary.landmarks) + " landmarks (model generation " + std::to_string(s.generation) +
                  ")";
      r.config_yaml = config::to_yaml(effective_config(&s));
      r.source = "xasmapd: estimate_map '" + job.map.id + "' (" + config_file.string() + ")";
      r.session_offset_ev = job.session_offset_ev;
      const std::string entry = append_nexus_result(config.output.nexus_file, r);
      ++nexus_written;
      log->debug("output.nexus_file: stack '{}' written as /{}", job.map.id, entry);
    } catch (const std::exception& e) {
      ++nexus_failed;
      log->error("output.nexus_file: stack '{}' not written: {}", job.map.id, e.what());
    }
  }
}

void Daemon::Impl::stop_nexus() {
  {
    std::lock_guard lock(nexus_mutex);
    nexus_closing = true;
  }
  nexus_cv.notify_all();
  if (nexus_thread.joinable()) nexus_thread.join();
}

}  // namespace xasmap::service
