// xasmapd's lifecycle (daemon_impl.hpp): start-up, sockets and CURVE, shutdown and draining.

#include "daemon.hpp"

#include "daemon_impl.hpp"

namespace xasmap::service {

void Daemon::Impl::inject_fault(const std::string& where) {
  if (test_faults.empty() || ("," + test_faults + ",").find("," + where + ",") == std::string::npos) return;
  {
    std::lock_guard lock(fault_mutex);
    if (std::find(faults_fired.begin(), faults_fired.end(), where) != faults_fired.end()) return;
    faults_fired.push_back(where);
  }
  throw std::runtime_error("test fault injected in " + where);
}

void Daemon::Impl::stop_threads() {
  {
    std::lock_guard lock(reload_mutex);
    stopping = true;
    stop_receiving = true;
    ready = false;
    reload_thread.request_stop();  // a reload still building gives up (ReloadCancelled)
  }
  shutdown_requested = true;
  // The receiver stops reading; on the acknowledged input it goes on answering senders until
  // the publisher has handed over its last answer, so it is joined after the publisher.
  while (receiver.joinable() && !reading_done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  queue.close();
  for (auto& w : workers) {
    if (w.joinable()) w.join();
  }
  stop_nexus();  // the workers are done: every stack they answered is queued for the file
  outbox.close();
  if (publisher.joinable()) publisher.join();
  acks_done = true;
  if (receiver.joinable()) receiver.join();
  stop_control = true;
  if (controller.joinable()) controller.join();
  if (authenticator) authenticator->stop();
  std::jthread pending;
  {
    std::lock_guard lock(reload_mutex);
    pending = std::move(reload_thread);
  }
  if (pending.joinable()) pending.join();
}

Daemon::Impl::~Impl() {
  stop_threads();
  metrics_http.reset();
  input.reset();
  output.reset();
  control.reset();
  acks_in.reset();
  acks_out.reset();
  authenticator.reset();
  context.close();
}

std::shared_ptr<const ModelState> Daemon::Impl::current_model() const {
  std::lock_guard lock(model_mutex);
  return model_state;
}

void Daemon::Impl::log_startup(const ModelState& s, double sockets_s, double total_s) const {
  const auto& r = s.report;
  const Model& m = s.model;
  const auto& c = s.config;
  log->info("xasmapd {} ready in {:.2f} s (protocol v{}, config {})", kVersion, total_s,
            protocol::kProtocolVersion, config_file.string());
  log->info("  library    {}: {} spectra, {} rows with shifted copies, grid {}-{} eV step {} eV",
            r.source, m.library_size(), m.rows(), c.library.grid.emin_ev, c.library.grid.emax_ev,
            c.library.grid.step_ev);
  log->info("  embedding  {}, {} distance, {} landmarks, {} estimation dims, {} map dims",
            to_string(m.options().method), to_string(m.options().distance), m.landmark_count(),
            m.options().estimate_dims, m.options().map_dims);
  if (s.search_ev() > 0.0) {
    log->info("  session    energy offset {:+.2f} eV ({}), tracking {}, searched within +-{:.2f} eV until known",
              s.session_start_ev, s.session_from, config::to_string(c.calibration.track), s.search_ev());
  } else {
    log->info("  session    energy offset {:+.2f} eV ({}), tracking {}", s.session_start_ev, s.session_from,
              config::to_string(c.calibration.track));
  }
  log->info("  mixture    {}", s.mixture ? "auto: " + s.mixture_from : std::string("off"));
  log->info("  start-up   library {:.2f} s, model file {:.2f} s, preprocess {:.2f} s, landmarks {:.2f} s, "
            "embedding {:.2f} s, index {:.2f} s, sockets {:.3f} s",
            r.library_s, r.load_s, r.fit.preprocess_s, r.fit.landmarks_s, r.fit.embed_s, r.fit.index_s,
            sockets_s);
  log->info("  input      {} {} {} topic '{}', queue {} ({}), memory budget {} MiB, {} workers{}",
            config::to_string(config.input.pattern), config.input.bind ? "bind" : "connect", input_endpoint,
            config.input.topic, config.input.queue_capacity, config::to_string(config.input.overflow),
            config.input.memory_budget_bytes >> 20, workers_count, curve_note(input_curve, config.input.bind));
  log->info("  output     {} {} {}, metrics every {} s{}{}{}", config.output.wait_for_subscriber ? "xpub" : "pub",
            config.output.bind ? "bind" : "connect", output_endpoint, config.metrics.interval_s,
            curve_note(output_curve, config.output.bind),
            metrics_http ? ", Prometheus at http://" + metrics_http->address() + "/metrics" : "",
            !config.output.wait_for_subscriber ? ""
            : holding_input()                  ? "; no input read until a subscriber subscribes"
                                               : "; input read while a subscriber is subscribed");
  log->info("  control    rep bind {}{}", control_endpoint, curve_note(control_curve, true));
  if (!config.output.nexus_file.empty()) log->info("  nexus      each stack's maps appended to {}", config.output.nexus_file.string());
}

bool Daemon::Impl::set_up_curve() {
  try {
    CurveSides sides = load_curve_sides(config);
    input_curve = std::move(sides.input);
    output_curve = std::move(sides.output);
    control_curve = std::move(sides.control);
  } catch (const config::ConfigError& e) {
    log->error("{}", e.what());
    return false;
  }
  for (const auto* c : {&config.input.curve, &config.output.curve, &config.control.curve}) {
    if (!c->enabled()) continue;
    if (const std::string w = secret_key_permission_warning(c->secret_key_file); !w.empty()) log->warn("{}", w);
  }
  const bool zap_needed = control_curve.enabled() || (input_curve.enabled() && config.input.bind) ||
                          (output_curve.enabled() && config.output.bind);
  if (!zap_needed) return true;
  authenticator.emplace(context, log);
  authenticator->allow("xasmap.control", control_curve.authorized);
  if (config.input.bind) authenticator->allow("xasmap.input", input_curve.authorized);
  if (config.output.bind) authenticator->allow("xasmap.output", output_curve.authorized);
  authenticator->start();
  return true;
}

void Daemon::Impl::apply_curve(zmq::socket_t& socket, const CurveSide& side, const char* name, bool binds) {
  if (!side.enabled()) return;
  if (binds) {
    make_curve_server(socket, *side.own, std::string("xasmap.") + name);
  } else {
    make_curve_client(socket, *side.own, side.authorized.front());
  }
}

const char* Daemon::Impl::curve_note(const CurveSide& side, bool binds) {
  if (!side.enabled()) return "";
  if (!binds) return ", CURVE (known server)";
  return side.authorized.empty() ? ", CURVE (encrypted, any client)" : ", CURVE (listed clients)";
}

int Daemon::Impl::run() {
  const auto t_start = Clock::now();
  if (!set_up_curve()) return 78;
  try {
    control.emplace(context, zmq::socket_type::rep);
    apply_curve(*control, control_curve, "control", true);
    control->set(zmq::sockopt::linger, 0);
    // A request far over control.max_request_bytes is cut off by ZeroMQ (the peer is
    // disconnected) instead of being held whole in memory; one up to 16 times the limit still
    // gets an error reply that names the key.
    control->set(zmq::sockopt::maxmsgsize,
                 static_cast<std::int64_t>(std::max<long long>(1 << 20, 16 * config.control.max_request_bytes)));
    control->bind(config.control.endpoint);
    control_endpoint = describe_endpoint(*control, config.control.endpoint);
  } catch (const zmq::error_t& e) {
    log->error("cannot bind the control socket to {}: {}", config.control.endpoint, e.what());
    return 69;
  }
  try {
    // An XPUB when the input waits for a subscriber: the same output, whose subscriptions the
    // publisher reads (every subscribe and unsubscribe, a subscriber's leaving included).
    output.emplace(context, config.output.wait_for_subscriber ? zmq::socket_type::xpub : zmq::socket_type::pub);
    if (config.output.wait_for_subscriber) output->set(zmq::sockopt::xpub_verboser, 1);
    output->set(zmq::sockopt::sndhwm, config.output.send_hwm);
    output->set(zmq::sockopt::linger, 1000);
    apply_curve(*output, output_curve, "output", config.output.bind);
    if (config.output.bind) {
      output->bind(config.output.endpoint);
    } else {
      output->connect(config.output.endpoint);  // e.g. to a proxy's XSUB
    }
    output_endpoint = describe_endpoint(*output, config.output.endpoint);
  } catch (const zmq::error_t& e) {
    log->error("cannot open the output socket on {}: {}", config.output.endpoint, e.what());
    return 69;
  }
  if (!config.metrics.http_endpoint.empty()) {
    try {
      metrics_http = std::make_unique<MetricsEndpoint>(*config::parse_host_port(config.metrics.http_endpoint),
                                                       [this] { return prometheus_text(); });
    } catch (const std::exception& e) {
      log->error("{}", e.what());
      return 69;
    }
  }
  for (const std::string& w : config.warnings()) log->warn("{}", w);
  controller = std::jthread([this] { guarded("control", [this] { control_loop(); }); });
  publisher = std::jthread([this] { guarded("publisher", [this] { publish_loop(); }); });
  log->info("xasmapd {} starting: control {}, output {}{}; building the model ({})", kVersion, control_endpoint,
            output_endpoint, metrics_http ? ", metrics http://" + metrics_http->address() + "/metrics" : "",
            config::to_string(config.library.source));

  int status = 0;
  // The start-up model is built on its own thread, so that SIGTERM, SIGINT or `shutdown` stop the
  // daemon at once even while a large library is being simulated: nothing has been accepted yet.
  std::atomic<bool> built{false};
  std::string build_error;
  bool model_file_damaged = false;
  std::jthread builder([&] {
    try {
      install(build(config, 1));
    } catch (const ModelFileError& e) {
      build_error = e.what();
      model_file_damaged = true;
    } catch (const std::exception& e) {
      build_error = e.what();
    }
    built = true;
  });
  if (!wait_for_signals([&] { return built.load(); })) {
    log->info("stopping during start-up: nothing was accepted yet");
    stop_receiving = true;
    outbox.close();
    if (publisher.joinable()) publisher.join();
    stop_control = true;
    if (controller.joinable()) controller.join();
    log->flush();
    spdlog::shutdown();
    // The builder cannot be interrupted; leave without waiting for it (and without running
    // destructors it might still depend on).
    std::quick_exit(0);
  }
  builder.join();
  if (!build_error.empty()) {
    log->error("cannot build the model: {}", build_error);
    // A damaged model file never loads: 65 (EX_DATAERR), which the systemd unit does not retry.
    status = model_file_damaged ? 65 : 69;
  }
  double sockets_s = 0;
  if (status == 0) {
    const auto t_sockets = Clock::now();
    try {
      const bool sub = config.input.pattern == config::InputPattern::kSub;
      input.emplace(context, sub            ? zmq::socket_type::sub
                             : acknowledged ? zmq::socket_type::router
                                            : zmq::socket_type::pull);
      // With a drop policy the receiver drains ZeroMQ's buffer at once and every drop happens, counted
      // and answered, in the daemon's queue. ZeroMQ's buffer is still bounded (kDropReceiveHwm
      // messages), outside the memory budget: a feed faster than the receiver itself then waits
      // (TCP back-pressure), and a PUB feed drops at its own send_hwm. With `block` the buffer is
      // held to queue_capacity, so that a PUSH sender feels the back-pressure (a PUB sender drops
      // beyond it: docs/operations.md).
      input->set(zmq::sockopt::rcvhwm, config.input.overflow == config::Overflow::kBlock
                                           ? config.input.queue_capacity
                                           : std::min(config.input.queue_capacity, kDropReceiveHwm));
      // Acknowledged: the last answers are flushed to their senders at a stop (up to 2 s).
      input->set(zmq::sockopt::linger, acknowledged ? 2000 : 0);
      if (sub) input->set(zmq::sockopt::subscribe, config.input.topic);
      if (acknowledged) {
        acks_in.emplace(context, zmq::socket_type::pull);
        acks_in->set(zmq::sockopt::rcvhwm, 0);
        acks_in->bind("inproc://xasmapd-answers");
        acks_out.emplace(context, zmq::socket_type::push);
        acks_out->set(zmq::sockopt::sndhwm, 0);
        acks_out->connect("inproc://xasmapd-answers");
      }
      apply_curve(*input, input_curve, "input", config.input.bind);
      if (config.input.bind) {
        input->bind(config.input.endpoint);
      } else {
        input->connect(config.input.endpoint);
      }
      std::lock_guard lock(input_endpoint_mutex);
      input_endpoint = describe_endpoint(*input, config.input.endpoint);
    } catch (const zmq::error_t& e) {
      log->error("cannot open the input socket on {}: {}", config.input.endpoint, e.what());
      status = 69;
    }
    sockets_s = std::chrono::duration<double>(Clock::now() - t_sockets).count();
  }
  if (status == 0) {
    if (!config.output.nexus_file.empty()) nexus_thread = std::thread([this] { nexus_loop(); });
    for (int i = 0; i < workers_count; ++i) {
      workers.emplace_back([this] { guarded("worker", [this] { work_loop(); }); });
    }
    receiver = std::jthread([this] { guarded("receiver", [this] { receive_loop(); }); });
    ready = true;
    log_startup(*current_model(), sockets_s, std::chrono::duration<double>(Clock::now() - t_start).count());
    inject_fault("run");
    wait_for_signals([] { return false; });
  }
  drain();
  return status;
}

void Daemon::Impl::drain() {
  const auto t0 = Clock::now();
  {
    // From here on start_reload() refuses as "shutting down": `stopping` and `stop_receiving`
    // are set before `ready` is cleared, all under the lock start_reload() decides under.
    std::lock_guard lock(reload_mutex);
    stopping = true;
    stop_receiving = true;
    ready = false;
  }
  if (drain_pause_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(drain_pause_ms));
  // The receiver stops, the workers answer what was accepted, the publisher sends it and a last
  // metrics, the control socket closes; a reload still building is asked to stop (a simulated
  // library gives up between spectra) and joined without holding reload_mutex, which it needs
  // at its end; its model is not used.
  stop_threads();
  const Counters c = counters();
  log->info("xasmapd stopped in {:.3f} s: received {}, published {}, rejected {}, dropped {}{}",
            std::chrono::duration<double>(Clock::now() - t0).count(), c.received, c.published, c.rejected,
            c.dropped, acknowledged ? ", duplicates " + std::to_string(c.duplicates) : std::string());
}

Daemon::Daemon(config::Config config, std::filesystem::path config_file, config::Overrides overrides,
               std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(config_file), std::move(overrides),
                                   std::move(log))) {}

Daemon::~Daemon() = default;

int Daemon::run() { return impl_->run(); }

}  // namespace xasmap::service
