// The model (daemon_impl.hpp): building it from the config, and swapping a new one in on reload.

#include "daemon_impl.hpp"
#include "model_file.hpp"

namespace xasmap::service {

std::shared_ptr<const ModelState> Daemon::Impl::build(config::Config cfg, std::uint64_t gen, std::stop_token stop) {
  auto state = std::make_shared<ModelState>();
  ProgressCallback progress;
  FitCancelRequested cancelled;
  if (stop.stop_possible()) {
    // Test hook: $XASMAPD_TEST_FIT_PAUSE_MS holds the fit at its first check for that long and
    // then lets it go on (whatever was requested meanwhile), so that a stop asked for in that
    // window has to be seen by a later check (tests/service/daemon_test.py, reload_fit_cancel).
    cancelled = [this, stop, first = std::make_shared<std::once_flag>(),
                 pause_ms = env_int("XASMAPD_TEST_FIT_PAUSE_MS")] {
      bool held = false;
      std::call_once(*first, [&] {
        log->info("reload: fitting the model");
        if (pause_ms > 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
          held = true;
        }
      });
      return !held && stop.stop_requested();
    };
    progress = [this, stop, logged = 0](int done, int total) mutable {
      if (stop.stop_requested()) throw ReloadCancelled();
      const int step = std::max(1, total / 20);
      if (done / step != logged / step || done == total) {
        log->info("reload: {} of {} library spectra simulated", done, total);
        logged = done;
      }
    };
  }
  state->model = build_model(cfg, &state->report, progress, cancelled);
  if (stop.stop_requested()) throw ReloadCancelled();
  state->model_checksum = "none: the model was built at start-up (" + state->report.source + "), not loaded from a file";
  if (auto text = model_checksum_text(state->model, cfg.library.model_file.string())) state->model_checksum = *text;
  if (cfg.library.source == config::LibrarySource::kModel) {
    // A model file brings the settings it was fitted with; those are in force, and reported.
    for (const std::string& note : adopt_model_settings(state->model, cfg)) {
      log->warn("{} ({} uses the model's setting)", note, cfg.library.model_file.string());
    }
  }
  state->session_start_ev = session_offset(cfg, state->model, &state->session_from);
  SessionTrackerOptions track;
  track.window = cfg.calibration.track_window;
  track.min_samples = cfg.calibration.track_min_samples;
  track.min_confidence = cfg.calibration.track_min_confidence;
  state->tracker = std::make_shared<SessionOffsetTracker>(state->session_start_ev, track);
  state->mixture = cfg.estimation.mixture == config::MixtureMode::kAuto && state->model.class_parameter() >= 0;
  if (state->mixture) {
    state->mixture_options = mixture_options(cfg, state->model, &state->mixture_from);
    state->model.prepare_mixture();  // before the first spectrum, not on it
  }
  state->config = std::move(cfg);
  state->generation = gen;
  const Model& m = state->model;
  state->summary = {m.library_size(), static_cast<std::uint64_t>(m.landmark_count()),
                    static_cast<std::uint64_t>(m.options().estimate_dims), to_string(m.options().method)};
  return state;
}

void Daemon::Impl::install(std::shared_ptr<const ModelState> state) {
  std::lock_guard lock(model_mutex);
  const std::uint64_t g = state->generation;
  model_state = std::move(state);
  generation.store(g, std::memory_order_release);
}

const char* Daemon::Impl::describe(ReloadStart r) {
  switch (r) {
    case ReloadStart::kStarted:
      return "reload started; 'status' shows when it is done";
    case ReloadStart::kNotReady:
      return "the daemon is not ready yet: its start-up model is still being built";
    case ReloadStart::kStopping:
      return "the daemon is shutting down";
    case ReloadStart::kBusy:
      return "a reload is already running";
  }
  return "";
}

auto Daemon::Impl::start_reload(const std::string& why) -> ReloadStart {
  std::lock_guard lock(reload_mutex);
  if (stopping) return ReloadStart::kStopping;
  if (!ready.load()) return ReloadStart::kNotReady;  // the start-up build is still running
  bool expected = false;
  if (!reloading.compare_exchange_strong(expected, true)) return ReloadStart::kBusy;
  if (reload_thread.joinable()) reload_thread.join();
  log->info("reload requested by {}: re-reading {}", why, config_file.string());
  reload_thread = std::jthread([this](std::stop_token stop) { reload(stop); });
  return ReloadStart::kStarted;
}

void Daemon::Impl::reload(std::stop_token stop) {
  const auto t0 = Clock::now();
  std::string error, result;
  try {
    config::Config cfg = config::load_config(config_file, overrides);
    std::vector<std::string> restart;
    if (!(cfg.input == config.input)) restart.emplace_back("input");
    if (!(cfg.output == config.output)) restart.emplace_back("output");
    if (!(cfg.control == config.control)) restart.emplace_back("control");
    if (!(cfg.metrics == config.metrics)) restart.emplace_back("metrics");
    if (!(cfg.logging == config.logging)) restart.emplace_back("logging");
    for (const auto& section : restart) {
      log->warn("reload: section '{}' changed; it takes effect only at the next start", section);
    }
    auto state = build(std::move(cfg), generation.load() + 1, stop);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    result = "generation " + std::to_string(state->generation) + ": " + state->report.source + ", " +
             std::to_string(state->summary.size) + " spectra, built in " + std::to_string(seconds) + " s";
    install(std::move(state));
    log->info("reload done: model {}", result);
  } catch (const ReloadCancelled&) {
    log->info("reload cancelled: the daemon is stopping");
  } catch (const std::exception& e) {
    if (stop.stop_requested()) {
      // simulate_library() rethrows our ReloadCancelled as it was thrown; anything else that
      // fails while stopping is reported the same way.
      log->info("reload cancelled: the daemon is stopping ({})", e.what());
    } else {
      error = e.what();
      log->error("reload failed, the running model stays: {}", error);
    }
  }
  std::lock_guard lock(reload_mutex);
  last_reload_error = error;
  if (!result.empty()) last_reload_result = result;
  reloading = false;
}

}  // namespace xasmap::service
