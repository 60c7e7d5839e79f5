#pragma once
// CURVE authentication and encryption for the daemon's sockets and the tools' (docs/operations.md).
//
// Key files are ZeroMQ certificates as `xasmap keygen`, pyzmq's zmq.auth.create_certificates and
// CZMQ's zcert write them: `public-key = "<Z85>"` and, in the secret one, `secret-key = "<Z85>"`.
// A file holding just one bare 40-character Z85 key line is read too. An authorized-keys file
// holds one public key a line (bare, or a certificate's public-key line), # starting a comment.
//
// Which side is which: a socket that binds is the CURVE server, and admits the clients whose
// public keys its authorized-keys file lists (through a ZAP handler, CurveAuthenticator, which
// counts what it refuses); a socket that connects is the CURVE client, and the one key its
// authorized-keys file lists is its server's, so it talks to that server only.

#include <spdlog/logger.h>
#include <zmq.hpp>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "xasmap/config/config.hpp"
#include "xasmap/core/error.hpp"

namespace xasmap::service {

// A key file that cannot be used: names the file, the line and what was expected.
class CurveKeyError : public Error {
 public:
  using Error::Error;
};

struct CurveKeyPair {
  std::string public_z85;  // 40 characters
  std::string secret_z85;  // 40 characters
};

// A new key pair (zmq_curve_keypair).
CurveKeyPair generate_curve_keys();
// Writes BASE.key (public and secret; mode 0600) and BASE.pub (public only); refuses to replace
// an existing file unless `overwrite`.
void write_curve_keys(const std::filesystem::path& base, const CurveKeyPair& keys, bool overwrite);

// The key pair of a secret key file; its public key is derived from the secret one, and one
// written beside it must match.
CurveKeyPair read_secret_key_file(const std::filesystem::path& file);
// The public keys of an authorized-keys file (at least one).
std::vector<std::string> read_public_keys_file(const std::filesystem::path& file);
// A warning when a secret key file may be read by others than its owner, else empty.
std::string secret_key_permission_warning(const std::filesystem::path& file);

// One socket's CURVE settings, read from its config section: off when `own` is empty.
struct CurveSide {
  std::optional<CurveKeyPair> own;
  std::vector<std::string> authorized;  // clients admitted (binding) or the server's key (connecting)
  bool enabled() const { return own.has_value(); }
};
// Reads `section.curve`'s files; a bad file is a config::ConfigError naming the key, so that
// --check-config and start-up fail alike. `binds` tells which side the socket is.
CurveSide load_curve_side(const config::Config& cfg, const std::string& section, const config::CurveConfig& curve,
                          bool binds);

// The three sockets' sides, as start-up and --check-config read them.
struct CurveSides {
  CurveSide input, output, control;
};
CurveSides load_curve_sides(const config::Config& cfg);

// Makes `socket` a CURVE server with `keys`, checked by the ZAP handler under `domain` (empty: no
// domain, so any client that knows the server's key is admitted).
void make_curve_server(zmq::socket_t& socket, const CurveKeyPair& keys, const std::string& domain);
// Makes `socket` a CURVE client with `own` keys, trusting only `server_public`.
void make_curve_client(zmq::socket_t& socket, const CurveKeyPair& own, const std::string& server_public);

// The ZAP handler (ZeroMQ RFC 27) of one context: admits a CURVE client when its public key is
// listed for the socket's domain, or when the domain admits any key; refuses and counts the rest.
// Its socket is bound at construction (before any CURVE server socket binds) and closed only by
// close(), after those sockets: a handshake that finds no handler would be let through.
class CurveAuthenticator {
 public:
  CurveAuthenticator(zmq::context_t& context, std::shared_ptr<spdlog::logger> log);
  ~CurveAuthenticator();
  // Before start(): who may connect to the sockets of `domain`. An empty list admits any key.
  void allow(const std::string& domain, const std::vector<std::string>& public_keys_z85);
  void start();
  void stop();   // stops answering (joins the thread); requests then wait unanswered
  void close();  // closes the handler's socket; after every CURVE socket is closed

  struct Counts {
    std::uint64_t accepted = 0, refused = 0;
  };
  Counts counts(const std::string& domain) const;

 private:
  void loop(std::stop_token stop);
  bool handle_one();

  std::shared_ptr<spdlog::logger> log_;
  zmq::socket_t socket_;
  std::map<std::string, std::set<std::string>> allowed_;  // domain -> binary public keys; fixed after start()
  std::set<std::string> any_key_;                         // domains that admit any key
  mutable std::mutex counts_mutex_;
  std::map<std::string, Counts> counts_;
  std::uint64_t refusals_logged_ = 0;
  std::jthread thread_;
};

}  // namespace xasmap::service
