// The control thread (daemon_impl.hpp): the REP socket's requests.

#include "daemon_impl.hpp"

namespace xasmap::service {

void Daemon::Impl::control_loop() {
  zmq::socket_t& sock = *control;
  while (!stop_control.load()) {
    inject_fault("control");
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, kPollPeriod);
    if (!(item.revents & ZMQ_POLLIN)) continue;
    zmq::message_t request;
    if (!sock.recv(request, zmq::recv_flags::dontwait)) continue;
    bool extra_frames = false;
    while (request.more()) {
      zmq::message_t extra;
      (void)sock.recv(extra);
      extra_frames = true;
      if (!extra.more()) break;
    }
    msgpack::sbuffer reply;
    try {
      handle_control(extra_frames ? nullptr : &request, reply);
    } catch (const std::exception& e) {
      reply.clear();
      control_error(reply, std::string("internal error: ") + e.what());
    }
    sock.send(zmq::message_t(reply.data(), reply.size()), zmq::send_flags::none);
  }
  sock.close();
}

void Daemon::Impl::control_error(msgpack::sbuffer& reply, const std::string& message) {
  Packer pk(reply);
  pk.pack_map(2);
  pk.pack("ok");
  pk.pack(false);
  pk.pack("error");
  pk.pack(message);
}

void Daemon::Impl::handle_control(const zmq::message_t* request, msgpack::sbuffer& reply) {
  static const std::vector<std::string> kCommands{"status", "library", "config", "reload", "shutdown"};
  if (!request) {
    return control_error(reply, "a control request is one frame holding a msgpack map");
  }
  std::optional<std::string> cmd;
  try {
    cmd = protocol::decode_control_request(static_cast<const std::uint8_t*>(request->data()), request->size(),
                                           static_cast<std::size_t>(config.control.max_request_bytes))
              .cmd;
  } catch (const protocol::ControlRequestError& e) {
    return control_error(reply, e.what());
  }
  Packer pk(reply);
  if (*cmd == "status") return status_reply(pk);
  if (*cmd == "library") return library_reply(reply, pk);
  if (*cmd == "config") {
    const auto state = current_model();
    pk.pack_map(4);
    pk.pack("ok");
    pk.pack(true);
    pk.pack("config_file");
    pk.pack(config_file.string());
    pk.pack("yaml");
    pk.pack(config::to_yaml(effective_config(state.get())));
    pk.pack("model_checksum");
    pk.pack(state ? state->model_checksum : std::string("none: no model is in service yet"));
    return;
  }
  if (*cmd == "reload") {
    const ReloadStart r = start_reload("the control command 'reload'");
    const bool started_now = r == ReloadStart::kStarted;
    pk.pack_map(2);
    pk.pack("ok");
    pk.pack(started_now);
    pk.pack(started_now ? "message" : "error");
    pk.pack(describe(r));
    return;
  }
  if (*cmd == "shutdown") {
    log->info("shutdown requested on the control socket");
    shutdown_requested = true;
    pk.pack_map(2);
    pk.pack("ok");
    pk.pack(true);
    pk.pack("message");
    pk.pack("shutting down: every accepted message will be answered");
    return;
  }
  std::string message = "unknown command '" + protocol::quote_text(*cmd) + "'";
  const std::string near = closest_match(*cmd, kCommands);
  if (!near.empty()) message += "; did you mean '" + near + "'?";
  reply.clear();
  control_error(reply, message + " (commands: status, library, config, reload, shutdown)");
}

void Daemon::Impl::status_reply(Packer& pk) {
  const Counters c = counters();
  std::string reload_error, reload_result;
  {
    std::lock_guard lock(reload_mutex);
    reload_error = last_reload_error;
    reload_result = last_reload_result;
  }
  pk.pack_map(26);
  pk.pack("ok");
  pk.pack(true);
  pk.pack("ready");
  pk.pack(ready.load());
  pk.pack("received");
  pk.pack(c.received);
  pk.pack("published");
  pk.pack(c.published);
  pk.pack("rejected");
  pk.pack(c.rejected);
  pk.pack("dropped");
  pk.pack(c.dropped);
  pk.pack("duplicates");
  pk.pack(c.duplicates);
  pk.pack("queue_depth");
  pk.pack(c.queue_depth);
  pk.pack("queued");
  pk.pack(static_cast<std::uint64_t>(queue.size()));
  pk.pack("uptime_s");
  pk.pack(std::chrono::duration<double>(Clock::now() - started).count());
  pk.pack("config_file");
  pk.pack(config_file.string());
  pk.pack("version");
  pk.pack(std::string(kVersion));
  pk.pack("protocol");
  pk.pack(protocol::kProtocolVersion);
  pk.pack("model_generation");
  pk.pack(generation.load());
  pk.pack("reloading");
  pk.pack(reloading.load());
  pk.pack("last_reload");
  pk.pack(reload_result);
  pk.pack("last_reload_error");
  pk.pack(reload_error);
  pk.pack("thread_failures");
  pk.pack(thread_failures.load());
  pk.pack("memory_used_bytes");
  pk.pack(static_cast<std::uint64_t>(budget.used()));
  pk.pack("memory_budget_bytes");
  pk.pack(static_cast<std::uint64_t>(budget.limit()));
  pk.pack("metrics_http");
  pk.pack(metrics_http ? metrics_http->address() : std::string());
  pk.pack("nexus_file");
  pk.pack_map(4);
  pk.pack("path");
  pk.pack(config.output.nexus_file.string());
  pk.pack("written");
  pk.pack(nexus_written.load());
  pk.pack("failed");
  pk.pack(nexus_failed.load());
  pk.pack("skipped");
  pk.pack(nexus_skipped.load());
  pk.pack("unannounced");
  pk.pack(unannounced.load());
  pk.pack("waiting_for_subscriber");
  pk.pack(holding_input());
  pk.pack("endpoints");
  pk.pack_map(3);
  pk.pack("input");
  {
    std::lock_guard lock(input_endpoint_mutex);
    pk.pack(input_endpoint);
  }
  pk.pack("output");
  pk.pack(output_endpoint);
  pk.pack("control");
  pk.pack(control_endpoint);
  // CURVE per socket: whether it is on, and what the ZAP handler admitted and refused (sockets
  // that bind; one that connects checks its server's key itself).
  pk.pack("curve");
  pk.pack_map(3);
  const auto side = [&](const char* name, const CurveSide& keys) {
    pk.pack(name);
    const CurveAuthenticator::Counts n =
        authenticator ? authenticator->counts(std::string("xasmap.") + name) : CurveAuthenticator::Counts{};
    pk.pack_map(3);
    pk.pack("enabled");
    pk.pack(keys.enabled());
    pk.pack("accepted");
    pk.pack(n.accepted);
    pk.pack("refused");
    pk.pack(n.refused);
  };
  side("input", input_curve);
  side("output", output_curve);
  side("control", control_curve);
}

void Daemon::Impl::library_reply(msgpack::sbuffer& reply, Packer& pk) {
  const auto state = current_model();
  if (!state) {
    pk.pack_map(2);
    pk.pack("ok");
    pk.pack(false);
    pk.pack("error");
    pk.pack("the model is not built yet; 'status' says when the daemon is ready");
    return;
  }
  const Model& model = state->model;
  const auto bytes = protocol::encode_library_reply(model.parameters(), model.labels(), model.values(),
                                                    model.library_map(), state->summary.method);
  reply.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

config::Config Daemon::Impl::effective_config() const { return effective_config(current_model().get()); }

config::Config Daemon::Impl::effective_config(const ModelState* state) const {
  if (!state) return config;
  config::Config c = state->config;
  c.input = config.input;
  c.output = config.output;
  c.control = config.control;
  c.metrics = config.metrics;
  c.logging = config.logging;
  return c;
}

}  // namespace xasmap::service
