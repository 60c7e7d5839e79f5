// xasmap status: ask a running xasmapd over its control socket.

#include <chrono>
#include <iostream>
#include <thread>

#include "client.hpp"
#include "commands.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kStatusOptions = with_client_curve_options({
    {"control", true, "EP",
     "the daemon's control endpoint (default: control.endpoint of the config)"},
    {"config", true, "FILE", "configuration whose control.endpoint to use (default config)"},
    {"cmd", true, "CMD", "status (default), library, config, reload or shutdown"},
    {"wait", true, "SECONDS", "status only: retry until the daemon is ready, for at most SECONDS"},
    {"timeout", true, "SECONDS", "how long to wait for one reply (default 2)"},
    {"json", false, "", "print the reply as one line of JSON instead of a table"},
});

int run_status(const CliArgs& args) {
  const std::string endpoint = args.value("control") ? *args.value("control") : config_from_args(args).control.endpoint;
  const std::string cmd = args.value("cmd").value_or("status");
  const double wait_s = args.number("wait", 0.0);
  const double timeout_s = args.number("timeout", 2.0);
  if (!(wait_s >= 0 && wait_s <= 3600)) throw UsageError("--wait must be in [0, 3600] seconds");
  if (!(timeout_s > 0 && timeout_s <= 600)) throw UsageError("--timeout must be in (0, 600] seconds");
  if (wait_s > 0 && cmd != "status") throw UsageError("--wait goes with --cmd status only");
  const auto timeout = std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));

  const ClientCurve curve = client_curve(args);
  zmq::context_t context(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  for (;;) {
    // While waiting for start-up, short tries; otherwise one try of the full timeout.
    const auto attempt = wait_s > 0 ? std::min(timeout, std::chrono::milliseconds(500)) : timeout;
    auto reply = control_request(context, endpoint, cmd, attempt, curve);
    const bool last_try = std::chrono::steady_clock::now() >= deadline;
    if (reply) {
      const msgpack::object& r = reply->get();
      const msgpack::object* ready = find_key(r, "ready");
      const bool is_ready = ready && ready->type == msgpack::type::BOOLEAN && ready->via.boolean;
      if (wait_s > 0 && !is_ready && !last_try) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      if (args.has("json")) {
        std::cout << to_json(r) << "\n";
      } else {
        std::cout << to_table(r);
      }
      const msgpack::object* ok = find_key(r, "ok");
      const bool is_ok = ok && ok->type == msgpack::type::BOOLEAN && ok->via.boolean;
      if (!is_ok) return 1;
      return (wait_s > 0 && !is_ready) ? 69 : 0;
    }
    if (last_try) {
      std::cerr << "xasmap status: no reply from " << endpoint << " within "
                << (wait_s > 0 ? wait_s : timeout_s) << " s\n";
      return 69;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace xasmap::service
