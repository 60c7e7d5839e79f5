#pragma once
// ZeroMQ client helpers shared by the tools that talk to a running xasmapd (status, watch, map,
// feed): control requests, JSON rendering of replies, and Ctrl-C handling.

#include <msgpack.hpp>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "clock.hpp"
#include "curve.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::service {

// The CURVE keys a tool uses towards a daemon whose sockets have CURVE on (--curve-key,
// --server-key; docs/operations.md). Off when neither option is given.
struct ClientCurve {
  std::optional<CurveKeyPair> own;  // --curve-key; a throw-away pair when only --server-key is given
  std::string server_public;        // --server-key
  bool enabled() const { return own.has_value(); }
  // Before `socket` connects (a CURVE client of server_public) or binds (a CURVE server with
  // `own`, as xasmap feed's publisher is for a daemon whose input connects).
  void apply(zmq::socket_t& socket, bool binds) const;
};
// `options` with the two options (--curve-key, --server-key) of the tools that open sockets
// towards a daemon.
std::vector<OptionSpec> with_client_curve_options(std::vector<OptionSpec> options);
// Reads --curve-key and --server-key; throws UsageError naming the option when a file is unusable.
ClientCurve client_curve(const CliArgs& args);

// Sends {"cmd": cmd} to the control endpoint and returns the reply, or nullopt when nothing
// answers within `timeout` (the REQ socket is then discarded, as ZeroMQ requires). A daemon with
// control.curve on answers only a client whose key it lists (`curve`).
std::optional<msgpack::object_handle> control_request(zmq::context_t& context, const std::string& endpoint,
                                                      const std::string& cmd,
                                                      std::chrono::milliseconds timeout,
                                                      const ClientCurve& curve = {});
// The same, the reply's frame as it came (for the protocol's decoders, e.g. decode_library_reply).
std::optional<std::vector<std::uint8_t>> control_request_frame(zmq::context_t& context, const std::string& endpoint,
                                                               const std::string& cmd,
                                                               std::chrono::milliseconds timeout,
                                                               const ClientCurve& curve = {});

// Waits up to `timeout` for `socket` to have a message. False on a timeout, and also when a
// signal (Ctrl-C, SIGTERM, a terminal resize) cut the wait short, so that the caller's loop
// re-checks its stop conditions.
bool wait_readable(zmq::socket_t& socket, std::chrono::milliseconds timeout);

// A result as the daemon publishes it, two frames (topic, body), waited for up to `timeout`.
// False on a timeout, an interrupted wait, or a message of one frame (which is taken and dropped).
bool receive_frames(zmq::socket_t& socket, std::chrono::milliseconds timeout, zmq::message_t& topic,
                    zmq::message_t& body);

// A msgpack value as compact JSON (bin as "<bin: N bytes>", non-finite floats as null).
std::string to_json(const msgpack::object& o);

// A reply map as lines of "key  value" for a person: keys padded to one column, nested maps as
// dotted keys (endpoints.input), booleans as yes/no, numbers to 6 significant digits, an empty
// string as "-", an array of scalars comma-separated and an array holding maps or arrays as its
// length ("126 entries"). `ok: true` is left out; it is implied.
std::string to_table(const msgpack::object& reply);

// The value of key `key` in a msgpack map, or nullptr.
const msgpack::object* find_key(const msgpack::object& map, std::string_view key);

// Ctrl-C / SIGTERM for interactive tools: the handler only sets the flag.
void install_interrupt_handler();
bool interrupted();

}  // namespace xasmap::service
