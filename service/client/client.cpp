#include "client.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>

#include "logging.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/protocol/msgpack_limits.hpp"

namespace xasmap::service {

namespace {
volatile std::sig_atomic_t g_interrupted = 0;
void on_interrupt(int) { g_interrupted = 1; }
}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return g_interrupted != 0; }

std::vector<OptionSpec> with_client_curve_options(std::vector<OptionSpec> options) {
  options.push_back({"curve-key", true, "FILE",
                     "CURVE: this tool's secret key file (xasmap keygen), for daemon sockets with curve on"});
  options.push_back({"server-key", true, "FILE",
                     "CURVE: the public key file of the daemon's sockets (alone: encryption only)"});
  return options;
}

void ClientCurve::apply(zmq::socket_t& socket, bool binds) const {
  if (!own) return;
  if (binds) {
    make_curve_server(socket, *own, "");  // no ZAP domain: any client that knows our key
  } else {
    if (server_public.empty()) throw UsageError("--curve-key needs --server-key, the public key of the daemon's socket");
    make_curve_client(socket, *own, server_public);
  }
}

ClientCurve client_curve(const CliArgs& args) {
  ClientCurve c;
  try {
    if (const auto f = args.value("server-key")) {
      const std::vector<std::string> keys = read_public_keys_file(*f);
      if (keys.size() != 1) throw CurveKeyError(*f + ": holds " + std::to_string(keys.size()) + " keys, not one");
      c.server_public = keys.front();
    }
    if (const auto f = args.value("curve-key")) {
      c.own = read_secret_key_file(*f);
    } else if (!c.server_public.empty()) {
      c.own = generate_curve_keys();  // encryption only: for a socket that admits any client key
    }
  } catch (const CurveKeyError& e) {
    throw UsageError(std::string("--curve-key/--server-key: ") + e.what());
  }
  return c;
}

std::optional<std::vector<std::uint8_t>> control_request_frame(zmq::context_t& context, const std::string& endpoint,
                                                               const std::string& cmd,
                                                               std::chrono::milliseconds timeout,
                                                               const ClientCurve& curve) {
  zmq::socket_t req(context, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  curve.apply(req, false);
  req.set(zmq::sockopt::rcvtimeo, static_cast<int>(timeout.count()));
  req.connect(endpoint);
  msgpack::sbuffer request;
  msgpack::packer<msgpack::sbuffer> pk(request);
  pk.pack_map(1);
  pk.pack("cmd");
  pk.pack(cmd);
  req.send(zmq::buffer(request.data(), request.size()), zmq::send_flags::none);
  zmq::message_t reply;
  if (!req.recv(reply)) return std::nullopt;
  const auto* bytes = static_cast<const std::uint8_t*>(reply.data());
  return std::vector<std::uint8_t>(bytes, bytes + reply.size());
}

std::optional<msgpack::object_handle> control_request(zmq::context_t& context, const std::string& endpoint,
                                                      const std::string& cmd,
                                                      std::chrono::milliseconds timeout, const ClientCurve& curve) {
  const auto frame = control_request_frame(context, endpoint, cmd, timeout, curve);
  if (!frame) return std::nullopt;
  // Bounded by the reply's size, as the protocol's decoders are, so a corrupt reply cannot make it
  // allocate more than the bytes that follow could hold.
  std::size_t offset = 0;
  return msgpack::unpack(reinterpret_cast<const char*>(frame->data()), frame->size(), offset, nullptr, nullptr,
                         protocol::frame_limits(frame->size()));
}

bool wait_readable(zmq::socket_t& socket, std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  try {
    zmq::poll(&item, 1, timeout);
  } catch (const zmq::error_t& e) {
    if (e.num() == EINTR) return false;
    throw;
  }
  return (item.revents & ZMQ_POLLIN) != 0;
}

bool receive_frames(zmq::socket_t& socket, std::chrono::milliseconds timeout, zmq::message_t& topic,
                    zmq::message_t& body) {
  if (!wait_readable(socket, timeout)) return false;
  (void)socket.recv(topic);
  if (!topic.more()) return false;
  (void)socket.recv(body);
  return true;
}

const msgpack::object* find_key(const msgpack::object& map, std::string_view key) {
  if (map.type != msgpack::type::MAP) return nullptr;
  for (const auto& kv : map.via.map) {
    if (kv.key.type == msgpack::type::STR && std::string_view(kv.key.via.str.ptr, kv.key.via.str.size) == key) {
      return &kv.val;
    }
  }
  return nullptr;
}

std::string to_json(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::NIL:
      return "null";
    case msgpack::type::BOOLEAN:
      return o.via.boolean ? "true" : "false";
    case msgpack::type::POSITIVE_INTEGER:
      return std::to_string(o.via.u64);
    case msgpack::type::NEGATIVE_INTEGER:
      return std::to_string(o.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: {
      if (!std::isfinite(o.via.f64)) return "null";
      char b[32];
      std::snprintf(b, sizeof b, "%.10g", o.via.f64);
      return b;
    }
    case msgpack::type::STR:
      return "\"" + json_escape(std::string(o.via.str.ptr, o.via.str.size)) + "\"";
    case msgpack::type::BIN:
      return "\"<bin: " + std::to_string(o.via.bin.size) + " bytes>\"";
    case msgpack::type::EXT:
      return "\"<ext>\"";
    case msgpack::type::ARRAY: {
      std::string s = "[";
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) s += (i ? "," : "") + to_json(o.via.array.ptr[i]);
      return s + "]";
    }
    case msgpack::type::MAP: {
      std::string s = "{";
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        const auto& kv = o.via.map.ptr[i];
        const std::string key = kv.key.type == msgpack::type::STR
                                    ? std::string(kv.key.via.str.ptr, kv.key.via.str.size)
                                    : to_json(kv.key);
        s += (i ? "," : "") + ("\"" + json_escape(key) + "\":") + to_json(kv.val);
      }
      return s + "}";
    }
  }
  return "null";
}

namespace {

std::string key_text(const msgpack::object& key) {
  return key.type == msgpack::type::STR ? std::string(key.via.str.ptr, key.via.str.size)
                                        : to_json(key);
}

// A scalar (or array of scalars) as table text; nullopt for what needs more than one cell.
std::optional<std::string> cell_text(const msgpack::object& o) {
  switch (o.type) {
    case msgpack::type::BOOLEAN:
      return o.via.boolean ? "yes" : "no";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: {
      char b[32];
      std::snprintf(b, sizeof b, "%.6g", o.via.f64);
      return b;
    }
    case msgpack::type::STR:
      return o.via.str.size == 0 ? "-" : std::string(o.via.str.ptr, o.via.str.size);
    case msgpack::type::ARRAY: {
      std::string s;
      for (std::uint32_t i = 0; i < o.via.array.size; ++i) {
        const auto item = cell_text(o.via.array.ptr[i]);
        const auto kind = o.via.array.ptr[i].type;
        if (!item || kind == msgpack::type::ARRAY) {
          return std::to_string(o.via.array.size) + (o.via.array.size == 1 ? " entry" : " entries");
        }
        s += (i ? ", " : "") + *item;
      }
      return s.empty() ? "-" : s;
    }
    case msgpack::type::MAP:
      return std::nullopt;
    default:
      return to_json(o);
  }
}

void table_rows(const msgpack::object& map, const std::string& prefix,
                std::vector<std::pair<std::string, std::string>>& rows) {
  for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
    const auto& kv = map.via.map.ptr[i];
    const std::string key = prefix + key_text(kv.key);
    if (prefix.empty() && key == "ok" && kv.val.type == msgpack::type::BOOLEAN &&
        kv.val.via.boolean)
      continue;
    if (kv.val.type == msgpack::type::MAP) {
      table_rows(kv.val, key + ".", rows);
    } else {
      rows.emplace_back(key, *cell_text(kv.val));
    }
  }
}

}  // namespace

std::string to_table(const msgpack::object& reply) {
  if (reply.type != msgpack::type::MAP) return to_json(reply) + "\n";
  std::vector<std::pair<std::string, std::string>> rows;
  table_rows(reply, "", rows);
  std::size_t width = 0;
  for (const auto& [key, value] : rows) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : rows)
    out += key + std::string(width + 2 - key.size(), ' ') + value + "\n";
  return out;
}

}  // namespace xasmap::service
