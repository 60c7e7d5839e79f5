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

TEST_CASE("a control endpoint on every interface is warned about", "[config][endpoint]") {
  using xasmap::config::is_wildcard_endpoint;
  for (const char* ep : {"tcp://*:5557", "tcp://0.0.0.0:5557", "tcp://[::]:5557", "tcp://[0:0:0:0:0:0:0:0]:1",
                         "tcp://*:*"}) {
    INFO(ep);
    CHECK(is_wildcard_endpoint(ep));
  }
  for (const char* ep : {"tcp://127.0.0.1:5557", "tcp://[::1]:5557", "tcp://daq.example.org:5557",
                         "ipc:///run/xasmap/control.sock", "inproc://control", "tcp://10.0.0.1:*"}) {
    INFO(ep);
    CHECK_FALSE(is_wildcard_endpoint(ep));
  }
  xasmap::config::Config c;
  CHECK(c.warnings().empty());
  c.control.endpoint = "tcp://0.0.0.0:5557";
  REQUIRE(c.warnings().size() == 1);
  CHECK(c.warnings()[0].find("control.endpoint 'tcp://0.0.0.0:5557'") == 0);
  CHECK(c.warnings()[0].find("no authentication") != std::string::npos);
}

TEST_CASE("HTTP listening addresses: HOST:PORT, loopback or warned about", "[config][endpoint]") {
  using xasmap::config::parse_host_port;
  const auto a = parse_host_port("127.0.0.1:9464");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 9464);
  CHECK(a->loopback());
  const auto v6 = parse_host_port("[::1]:0");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == 0);
  CHECK(v6->loopback());
  CHECK(parse_host_port("localhost:80")->loopback());
  CHECK_FALSE(parse_host_port("10.1.2.3:9464")->loopback());
  for (const char* bad : {"", "9464", "http://127.0.0.1:9464", "127.0.0.1:9464/metrics", "127.0.0.1:",
                          "127.0.0.1:x", "*:9464", "::1:9464", ":9464", "bad host:1"}) {
    INFO(bad);
    std::string expected;
    CHECK_FALSE(parse_host_port(bad, &expected));
    CHECK(expected.find("HOST:PORT") != std::string::npos);
  }
  std::string expected;
  CHECK_FALSE(parse_host_port("127.0.0.1:65536", &expected));
  CHECK(expected == "a port in [0, 65535] (0: any free port)");

  xasmap::config::Config c;
  c.metrics.http_endpoint = "127.0.0.1:9464";
  CHECK(c.warnings().empty());
  c.metrics.http_endpoint = "0.0.0.0:9464";
  REQUIRE(c.warnings().size() == 1);
  CHECK(c.warnings()[0].find("metrics.http_endpoint '0.0.0.0:9464' is not a loopback address") == 0);
}
