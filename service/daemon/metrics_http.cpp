#include "metrics_http.hpp"

#include <httplib.h>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <thread>

#include "prometheus.hpp"
#include "xasmap/core/error.hpp"

namespace xasmap::service {

namespace {

// Whether nothing listens on `at`. Debian's httplib binds with SO_REUSEPORT whatever its
// set_socket_options says, so its own bind would succeed beside another daemon on the same port
// and share the scrapes; a plain bind, which no listener admits, tells first.
bool port_is_free(const config::HostPort& at) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(at.host.c_str(), std::to_string(at.port).c_str(), &hints, &found) != 0) return true;  // httplib says
  bool free = true;
  for (addrinfo* a = found; a && free; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);  // a closed connection's TIME_WAIT is no user
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 && errno == EADDRINUSE) free = false;
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return free;
}

}  // namespace

struct MetricsEndpoint::State {
  httplib::Server server;
  std::string address;
  std::thread thread;
};

MetricsEndpoint::MetricsEndpoint(const config::HostPort& at, std::function<std::string()> render)
    : s_(std::make_unique<State>()) {
  httplib::Server& server = s_->server;
  server.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // A scraper that holds its connection open or stalls does not hold a thread for long.
  server.set_keep_alive_timeout(2);
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  server.Get("/metrics", [render = std::move(render)](const httplib::Request&, httplib::Response& res) {
    res.set_content(render(), std::string(PrometheusText::kContentType).c_str());
  });
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404) {
      res.set_content("xasmapd serves its metrics at /metrics, not at " + req.path + "\n", "text/plain");
    }
  });
  if (at.port != 0 && !port_is_free(at)) {
    throw Error("metrics.http_endpoint: " + at.host + ":" + std::to_string(at.port) +
                " is in use (another xasmapd, or another service, listens on it)");
  }
  const int port = at.port == 0 ? server.bind_to_any_port(at.host) : (server.bind_to_port(at.host, at.port) ? at.port : -1);
  if (port <= 0) {
    throw Error("metrics.http_endpoint: cannot listen on " + at.host + ":" + std::to_string(at.port) +
                " (the port is taken, or the address is not this machine's)");
  }
  s_->address = (at.host.find(':') != std::string::npos ? "[" + at.host + "]" : at.host) + ":" + std::to_string(port);
  s_->thread = std::thread([this] { s_->server.listen_after_bind(); });
}

MetricsEndpoint::~MetricsEndpoint() {
  s_->server.stop();
  if (s_->thread.joinable()) s_->thread.join();
}

const std::string& MetricsEndpoint::address() const { return s_->address; }

}  // namespace xasmap::service
