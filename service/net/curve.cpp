#include "curve.hpp"

#include <sys/stat.h>

#include <array>
#include <chrono>
#include <fstream>
#include <sstream>

namespace xasmap::service {

namespace {

constexpr std::size_t kZ85KeyLength = 40;
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";  // fixed by ZeroMQ (RFC 27)

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

// The 32 bytes of a Z85 key, or nullopt when `text` is not one.
std::optional<std::string> z85_key_bytes(const std::string& text) {
  if (text.size() != kZ85KeyLength) return std::nullopt;
  std::array<std::uint8_t, 32> bytes{};
  if (zmq_z85_decode(bytes.data(), text.c_str()) == nullptr) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// One line of a key file: `public-key = "K"` or `secret-key = "K"` (a certificate), or a bare key.
struct KeyLine {
  std::string name;  // "public-key", "secret-key", or "" for a bare key
  std::string key;
};

// The key lines of `file`, with their line numbers; certificate section headers (`metadata`,
// `curve`) and other `name = value` lines (metadata) are passed over, anything else is an error.
std::vector<std::pair<int, KeyLine>> key_lines(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) throw CurveKeyError(file.string() + ": cannot be read");
  std::vector<std::pair<int, KeyLine>> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string t = trim(line);
    // A bare key first: Z85 keys may hold '=' and start with '#'.
    if (z85_key_bytes(t)) {
      out.push_back({number, KeyLine{"", t}});
      continue;
    }
    if (t.empty() || t[0] == '#' || t == "metadata" || t == "curve") continue;
    const auto eq = t.find('=');
    const std::string name = eq == std::string::npos ? std::string() : trim(t.substr(0, eq));
    // Metadata names are words (letters, digits, - and _), so a key holding '=' is not one.
    if (eq == std::string::npos || name.empty() ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != std::string::npos) {
      throw CurveKeyError(file.string() + ":" + std::to_string(number) + ": '" + t.substr(0, 48) +
                          "' is not a key: expected a 40-character Z85 key or a line public-key = \"...\"");
    }
    std::string value = trim(t.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    if (name != "public-key" && name != "secret-key") continue;  // metadata
    if (!z85_key_bytes(value)) {
      throw CurveKeyError(file.string() + ":" + std::to_string(number) + ": " + name +
                          " is not a 40-character Z85 key");
    }
    out.push_back({number, KeyLine{name, value}});
  }
  return out;
}

}  // namespace

CurveKeyPair generate_curve_keys() {
  std::array<char, kZ85KeyLength + 1> pub{}, sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) {
    throw CurveKeyError(std::string("cannot make a CURVE key pair: ") + zmq_strerror(zmq_errno()) +
                        " (is libzmq built with libsodium?)");
  }
  return {pub.data(), sec.data()};
}

void write_curve_keys(const std::filesystem::path& base, const CurveKeyPair& keys, bool overwrite) {
  const std::filesystem::path secret = base.string() + ".key", pub = base.string() + ".pub";
  for (const auto& f : {secret, pub}) {
    if (!overwrite && std::filesystem::exists(f)) {
      throw CurveKeyError(f.string() + " exists; remove it or pass --force");
    }
  }
  const auto write = [](const std::filesystem::path& f, const std::string& text, std::filesystem::perms perms) {
    {
      std::ofstream out(f, std::ios::trunc);
      if (!out) throw CurveKeyError(f.string() + ": cannot be written");
      out.close();
    }
    // Permissions first, then the contents: the secret is never readable by others.
    std::filesystem::permissions(f, perms, std::filesystem::perm_options::replace);
    std::ofstream out(f, std::ios::trunc);
    out << text;
    if (!out.flush()) throw CurveKeyError(f.string() + ": cannot be written");
  };
  const std::string head = "#   ZeroMQ CURVE certificate written by xasmap keygen\n";
  write(secret,
        head + "#   The SECRET key: do not give this file to anyone; give them " + pub.filename().string() +
            ".\nmetadata\ncurve\n    public-key = \"" + keys.public_z85 + "\"\n    secret-key = \"" +
            keys.secret_z85 + "\"\n",
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  write(pub, head + "#   The public key: list it in an authorized_keys_file.\nmetadata\ncurve\n    public-key = \"" +
                 keys.public_z85 + "\"\n",
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
            std::filesystem::perms::group_read | std::filesystem::perms::others_read);
}

CurveKeyPair read_secret_key_file(const std::filesystem::path& file) {
  std::string secret, listed_public;
  for (const auto& [number, kl] : key_lines(file)) {
    if (kl.name == "public-key") {
      listed_public = kl.key;
    } else if (secret.empty()) {
      secret = kl.key;  // secret-key, or a bare key
    }
  }
  if (secret.empty()) {
    throw CurveKeyError(file.string() + ": holds no secret key (a public key file? the secret one is NAME.key)");
  }
  std::array<char, kZ85KeyLength + 1> pub{};
  if (zmq_curve_public(pub.data(), secret.c_str()) != 0) {
    throw CurveKeyError(file.string() + ": the secret key cannot be used: " + zmq_strerror(zmq_errno()));
  }
  if (!listed_public.empty() && listed_public != pub.data()) {
    throw CurveKeyError(file.string() + ": its public-key is not the secret key's");
  }
  return {pub.data(), secret};
}

std::vector<std::string> read_public_keys_file(const std::filesystem::path& file) {
  std::vector<std::string> keys;
  for (const auto& [number, kl] : key_lines(file)) {
    if (kl.name == "secret-key") {
      throw CurveKeyError(file.string() + ":" + std::to_string(number) +
                          ": a secret key; list public keys only (NAME.pub)");
    }
    keys.push_back(kl.key);
  }
  if (keys.empty()) throw CurveKeyError(file.string() + ": holds no public key");
  return keys;
}

std::string secret_key_permission_warning(const std::filesystem::path& file) {
  struct stat st{};
  if (::stat(file.c_str(), &st) != 0) return {};
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) == 0) return {};
  char mode[8];
  std::snprintf(mode, sizeof mode, "%03o", static_cast<unsigned>(st.st_mode & 0777));
  return "the secret key file " + file.string() + " may be read by others (mode " + mode +
         "); chmod 600 it";
}

CurveSide load_curve_side(const config::Config& cfg, const std::string& section, const config::CurveConfig& curve,
                          bool binds) {
  CurveSide side;
  if (!curve.enabled()) return side;
  const auto fail = [&](const std::string& key, const std::filesystem::path& file, const std::string& what) {
    throw config::ConfigError(cfg.source_file.string(), 0, 0, section + ".curve." + key, "'" + file.string() + "'",
                              what);
  };
  try {
    side.own = read_secret_key_file(curve.secret_key_file);
  } catch (const CurveKeyError& e) {
    fail("secret_key_file", curve.secret_key_file, std::string("a usable secret key file (") + e.what() + ")");
  }
  if (!curve.authorized_keys_file.empty()) {
    try {
      side.authorized = read_public_keys_file(curve.authorized_keys_file);
    } catch (const CurveKeyError& e) {
      fail("authorized_keys_file", curve.authorized_keys_file,
           std::string("a usable file of public keys (") + e.what() + ")");
    }
    if (!binds && side.authorized.size() != 1) {
      fail("authorized_keys_file", curve.authorized_keys_file,
           "exactly one key, the server's, since " + section + " connects (it holds " +
               std::to_string(side.authorized.size()) + ")");
    }
  }
  return side;
}

CurveSides load_curve_sides(const config::Config& cfg) {
  return {load_curve_side(cfg, "input", cfg.input.curve, cfg.input.bind),
          load_curve_side(cfg, "output", cfg.output.curve, cfg.output.bind),
          load_curve_side(cfg, "control", cfg.control.curve, true)};
}

void make_curve_server(zmq::socket_t& socket, const CurveKeyPair& keys, const std::string& domain) {
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_z85);
  if (!domain.empty()) socket.set(zmq::sockopt::zap_domain, domain);  // ZeroMQ refuses an empty one
}

void make_curve_client(zmq::socket_t& socket, const CurveKeyPair& own, const std::string& server_public) {
  socket.set(zmq::sockopt::curve_serverkey, server_public);
  socket.set(zmq::sockopt::curve_publickey, own.public_z85);
  socket.set(zmq::sockopt::curve_secretkey, own.secret_z85);
}

// ---- the ZAP handler ----

CurveAuthenticator::CurveAuthenticator(zmq::context_t& context, std::shared_ptr<spdlog::logger> log)
    : log_(std::move(log)), socket_(context, zmq::socket_type::rep) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind(kZapEndpoint);
}

CurveAuthenticator::~CurveAuthenticator() {
  stop();
  close();
}

void CurveAuthenticator::allow(const std::string& domain, const std::vector<std::string>& public_keys_z85) {
  if (public_keys_z85.empty()) {
    any_key_.insert(domain);
    return;
  }
  for (const std::string& k : public_keys_z85) {
    if (auto bytes = z85_key_bytes(k)) allowed_[domain].insert(*bytes);
  }
}

void CurveAuthenticator::start() {
  thread_ = std::jthread([this](std::stop_token stop) { loop(stop); });
}

void CurveAuthenticator::stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

void CurveAuthenticator::close() { socket_.close(); }

CurveAuthenticator::Counts CurveAuthenticator::counts(const std::string& domain) const {
  std::lock_guard lock(counts_mutex_);
  const auto it = counts_.find(domain);
  return it == counts_.end() ? Counts{} : it->second;
}

void CurveAuthenticator::loop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    try {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      if (item.revents & ZMQ_POLLIN) handle_one();
    } catch (const std::exception& e) {
      // Never silent, and never a handshake let through: an unanswered request is refused by
      // its timeout (ZeroMQ waits for the reply).
      log_->error("the CURVE authenticator failed on a request: {}", e.what());
    }
  }
}

// One ZAP request (RFC 27): version, request id, domain, address, routing id, mechanism,
// credentials (CURVE: the client's 32-byte public key); the reply names the request and says
// 200 (admitted) or 400 (refused).
bool CurveAuthenticator::handle_one() {
  std::vector<zmq::message_t> frames(1);
  if (!socket_.recv(frames[0], zmq::recv_flags::dontwait)) return false;
  while (frames.back().more()) {  // a multipart request arrives whole
    zmq::message_t next;
    (void)socket_.recv(next);
    if (frames.size() < 16) frames.push_back(std::move(next));
    else if (!next.more()) break;
  }
  const auto text = [&](std::size_t i) { return i < frames.size() ? frames[i].to_string() : std::string(); };
  const std::string version = text(0), request_id = text(1), domain = text(2), address = text(3),
                    mechanism = text(5), key = text(6);
  bool admit = false;
  std::string why;
  if (version != "1.0") {
    why = "unknown ZAP version";
  } else if (mechanism != "CURVE") {
    why = "mechanism " + mechanism + " where CURVE is required";
  } else if (any_key_.count(domain)) {
    admit = true;
  } else if (const auto it = allowed_.find(domain); it != allowed_.end() && it->second.count(key)) {
    admit = true;
  } else {
    why = "the client's key is not in the authorized keys";
  }
  {
    std::lock_guard lock(counts_mutex_);
    Counts& c = counts_[domain];
    ++(admit ? c.accepted : c.refused);
  }
  if (!admit) {
    // Every refusal is counted; the first 20 and then every 1000th are logged, so that a flood
    // of attempts cannot fill the log.
    ++refusals_logged_;
    if (refusals_logged_ <= 20 || refusals_logged_ % 1000 == 0) {
      std::array<char, kZ85KeyLength + 1> z85{};
      if (key.size() == 32) zmq_z85_encode(z85.data(), reinterpret_cast<const std::uint8_t*>(key.data()), 32);
      log_->warn("CURVE: refused a client of the {} socket from {} (key {}): {} (refusal {})",
                 domain.rfind("xasmap.", 0) == 0 ? domain.substr(7) : domain, address,
                 key.size() == 32 ? z85.data() : "-", why, refusals_logged_);
    }
  }
  socket_.send(zmq::buffer(version), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(std::string(admit ? "200" : "400")), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(std::string(admit ? "OK" : "not authorized")), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(std::string(admit ? "curve" : "")), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(std::string()), zmq::send_flags::none);
  return true;
}

}  // namespace xasmap::service
