#include <catch2/catch.hpp>

#include "xasmap/config/config.hpp"

using xasmap::config::check_endpoint;

TEST_CASE("valid endpoints pass", "[config][endpoint]") {
  for (const char* ep : {"tcp://127.0.0.1:5555", "tcp://localhost:1", "tcp://[::1]:65535",
                         "tcp://beamline-daq.example.org:5555", "ipc:///tmp/xasmap.sock",
                         "inproc://estimates"}) {
    INFO(ep);
    CHECK(check_endpoint(ep, false).empty());
    CHECK(check_endpoint(ep, true).empty());
  }
  CHECK(check_endpoint("tcp://*:5556", true).empty());
  CHECK(check_endpoint("tcp://127.0.0.1:*", true).empty());
}

TEST_CASE("malformed endpoints say what was expected", "[config][endpoint]") {
  for (const char* ep : {"", "127.0.0.1:5555", "tcp//127.0.0.1:5555", "udp://127.0.0.1:5555",
                         "tcp://127.0.0.1", "tcp://127.0.0.1:", "tcp://127.0.0.1:port",
                         "tcp://:5555", "tcp://bad host:5555", "ipc://", "inproc://"}) {
    INFO(ep);
    CHECK_FALSE(check_endpoint(ep, true).empty());
  }
  CHECK(check_endpoint("tcp://127.0.0.1:0", true) == "a tcp port in [1, 65535]");
  CHECK(check_endpoint("tcp://127.0.0.1:65536", false) == "a tcp port in [1, 65535]");
  CHECK(check_endpoint("tcp://*:5555", false).find("only for binding") != std::string::npos);
  CHECK(check_endpoint("tcp://127.0.0.1:*", false).find("only for binding") != std::string::npos);
}
