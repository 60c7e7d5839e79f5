// CURVE key files and the config's curve sections (service/src/curve.hpp): what keygen writes is
// read back, and every malformed file is refused naming its file and line.

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "curve.hpp"
#include "xasmap/config/config.hpp"

using namespace xasmap::service;
namespace fs = std::filesystem;

namespace {

fs::path temp_folder(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("xasmap_test_curve_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& f, const std::string& text) { std::ofstream(f) << text; }

}  // namespace

TEST_CASE("keygen's files read back: the pair, the public file, and their permissions", "[service][curve]") {
  const fs::path d = temp_folder("keygen");
  const CurveKeyPair keys = generate_curve_keys();
  REQUIRE(keys.public_z85.size() == 40);
  REQUIRE(keys.secret_z85.size() == 40);
  write_curve_keys(d / "server", keys, false);
  const CurveKeyPair back = read_secret_key_file(d / "server.key");
  CHECK(back.public_z85 == keys.public_z85);
  CHECK(back.secret_z85 == keys.secret_z85);
  CHECK(read_public_keys_file(d / "server.pub") == std::vector<std::string>{keys.public_z85});
  struct stat st{};
  REQUIRE(::stat((d / "server.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(secret_key_permission_warning(d / "server.key").empty());
  fs::permissions(d / "server.key", fs::perms::group_read, fs::perm_options::add);
  CHECK_THAT(secret_key_permission_warning(d / "server.key"), Catch::Contains("mode 640"));
  // Not replaced unless asked.
  CHECK_THROWS_WITH(write_curve_keys(d / "server", generate_curve_keys(), false), Catch::Contains("exists"));
  const CurveKeyPair other = generate_curve_keys();
  write_curve_keys(d / "server", other, true);
  CHECK(read_secret_key_file(d / "server.key").public_z85 == other.public_z85);
  CHECK(other.public_z85 != keys.public_z85);
  fs::remove_all(d);
}

TEST_CASE("authorized keys: bare keys, certificate lines and comments, and secret keys refused", "[service][curve]") {
  const fs::path d = temp_folder("authorized");
  const CurveKeyPair a = generate_curve_keys(), b = generate_curve_keys();
  write(d / "keys", "# operators\n" + a.public_z85 + "\n\n    public-key = \"" + b.public_z85 + "\"\nmetadata\n");
  CHECK(read_public_keys_file(d / "keys") == std::vector<std::string>{a.public_z85, b.public_z85});
  write(d / "secret", "curve\n    secret-key = \"" + a.secret_z85 + "\"\n");
  CHECK_THROWS_WITH(read_public_keys_file(d / "secret"), Catch::Contains("secret") && Catch::Contains(":2:"));
  write(d / "short", std::string(39, 'A') + "\n");  // one character short
  CHECK_THROWS_WITH(read_public_keys_file(d / "short"), Catch::Contains("short:1:") && Catch::Contains("Z85"));
  write(d / "empty", "# nobody\n");
  CHECK_THROWS_WITH(read_public_keys_file(d / "empty"), Catch::Contains("no public key"));
  CHECK_THROWS_WITH(read_public_keys_file(d / "missing"), Catch::Contains("cannot be read"));
  fs::remove_all(d);
}

TEST_CASE("a secret key file: a bare key is read, a public key alone or a mismatched one refused",
          "[service][curve]") {
  const fs::path d = temp_folder("secret");
  const CurveKeyPair a = generate_curve_keys(), b = generate_curve_keys();
  write(d / "bare", a.secret_z85 + "\n");
  CHECK(read_secret_key_file(d / "bare").public_z85 == a.public_z85);
  write(d / "public_only", "curve\n    public-key = \"" + a.public_z85 + "\"\n");
  CHECK_THROWS_WITH(read_secret_key_file(d / "public_only"), Catch::Contains("no secret key"));
  write(d / "mismatch", "curve\n    public-key = \"" + b.public_z85 + "\"\n    secret-key = \"" + a.secret_z85 + "\"\n");
  CHECK_THROWS_WITH(read_secret_key_file(d / "mismatch"), Catch::Contains("not the secret key's"));
  fs::remove_all(d);
}

TEST_CASE("curve config: required keys, missing files, and the socket that connects takes one server key",
          "[service][curve][config]") {
  const fs::path d = temp_folder("config");
  write_curve_keys(d / "server", generate_curve_keys(), false);
  write_curve_keys(d / "client", generate_curve_keys(), false);
  write_curve_keys(d / "other", generate_curve_keys(), false);
  const auto problems_of = [](const xasmap::config::Config& c) {
    std::string keys;
    for (const auto& p : c.validate()) keys += p.key_path + ";";
    return keys;
  };
  xasmap::config::Config c;
  c.control.curve.secret_key_file = d / "server.key";
  CHECK(problems_of(c) == "control.curve.authorized_keys_file;");  // control lists its clients
  c.control.curve.authorized_keys_file = d / "client.pub";
  CHECK(problems_of(c).empty());
  c.control.curve.authorized_keys_file = d / "nobody.pub";
  CHECK(problems_of(c) == "control.curve.authorized_keys_file;");
  c.control.curve = {};
  c.output.curve.authorized_keys_file = d / "client.pub";  // without this side's key
  CHECK(problems_of(c) == "output.curve.secret_key_file;");
  c.output.curve.secret_key_file = d / "server.key";
  CHECK(problems_of(c).empty());
  c.output.curve.authorized_keys_file.clear();  // a bound output: encryption only is allowed
  CHECK(problems_of(c).empty());
  c.input.curve.secret_key_file = d / "server.key";  // the input must name its publisher
  CHECK(problems_of(c) == "input.curve.authorized_keys_file;");

  // A connecting input takes exactly one key, its server's.
  write(d / "two.pub", "# two\n" + read_public_keys_file(d / "client.pub")[0] + "\n" +
                           read_public_keys_file(d / "other.pub")[0] + "\n");
  c.input.curve.authorized_keys_file = d / "two.pub";
  CHECK_THROWS_WITH(load_curve_side(c, "input", c.input.curve, false),
                    Catch::Contains("input.curve.authorized_keys_file") && Catch::Contains("exactly one key"));
  const CurveSide bound = load_curve_side(c, "input", c.input.curve, true);
  CHECK(bound.authorized.size() == 2);
  c.input.curve.authorized_keys_file = d / "client.pub";
  const CurveSide connecting = load_curve_side(c, "input", c.input.curve, false);
  REQUIRE(connecting.enabled());
  CHECK(connecting.own->public_z85 == read_secret_key_file(d / "server.key").public_z85);
  CHECK(connecting.authorized == read_public_keys_file(d / "client.pub"));

  // The curve sections round-trip through YAML.
  c.control.curve = {d / "server.key", d / "client.pub"};
  xasmap::config::Config back = xasmap::config::parse_config(xasmap::config::to_yaml(c), "round-trip");
  CHECK(back.input.curve == c.input.curve);
  CHECK(back.output.curve == c.output.curve);
  CHECK(back.control.curve == c.control.curve);
  back.source_file = c.source_file;
  CHECK(back == c);
  fs::remove_all(d);
}

TEST_CASE("a wildcard control endpoint warns only without CURVE", "[service][curve][config]") {
  xasmap::config::Config c;
  c.control.endpoint = "tcp://*:5557";
  REQUIRE(c.warnings().size() == 1);
  CHECK_THAT(c.warnings()[0], Catch::Contains("control.curve"));
  c.control.curve.secret_key_file = "server.key";
  CHECK(c.warnings().empty());
  c.input.bind = true;
  c.input.endpoint = "tcp://0.0.0.0:5555";
  REQUIRE(c.warnings().size() == 1);
  CHECK_THAT(c.warnings()[0], Catch::Contains("input.endpoint"));
}
