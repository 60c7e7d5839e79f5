// xasmap feed: an acquisition emulator. Publishes protocol v1 `spectrum` messages (single spectra
// or STXM stacks) at a given rate, stamped with their send time so that xasmapd can report
// end-to-end latency.

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <msgpack.hpp>
#include <random>
#include <set>
#include <unordered_map>
#include <sstream>
#include <thread>
#include <zmq.hpp>

#include "client.hpp"
#include "commands.hpp"
#include "feed_sources.hpp"
#include "nexus.hpp"
#include "spectrum_files.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/spectrum.hpp"
#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kFeedOptions = with_client_curve_options(with_spectrum_file_options({
    {"input", true, "EP", "the daemon's input endpoint, where to publish (default: input.endpoint of the config)"},
    {"endpoint", true, "EP", "the same as --input (its older name)"},
    {"config", true, "FILE",
     "configuration whose input endpoint, pattern and topic to use (default config)"},
    {"connect", false, "",
     "connect to the endpoint instead of binding it (binding is the default)"},
    {"pattern", true, "pub|push|dealer",
     "socket pattern (default: pub; push when the config's input is pull; dealer, acknowledged, when it is router)"},
    {"ack-timeout", true, "S",
     "dealer: resend a message not answered within S s (default 5); answers are matched by id"},
    {"ack-wait", true, "S", "dealer: after the last message, wait at most S s for the answers (default 60)"},
    {"window", true, "N", "dealer: at most N messages sent and not yet answered (default 1000)"},
    {"topic", true, "TOPIC", "frame-0 topic (default: input.topic of the config)"},
    {"library", true, "DIR", "send noisy copies of the spectra of a library folder (manifest.csv)"},
    {"stack", true, "RxC[xE]",
     "send one synthetic STXM stack of R x C pixels (E energies) built from --library"},
    {"stack-image", true, "PGM",
     "the stack's phase map: a PGM image whose grey levels pick --phases (levels between two "
     "phases' mix them by atom fraction)"},
    {"phases", true, "LABELS",
     "library labels of the stack's phases, dark to bright (default: the default library's "
     "Mn2_tendq0.9_slater0.8_T300_gauss0.2,Mn4_tendq2_slater0.8_T300_gauss0.2)"},
    {"count", true, "N", "messages to send (default: 100 from --library, each file once, 1 stack)"},
    {"rate", true, "HZ", "messages per second; 0 = as fast as possible (default 100)"},
    {"seconds", true, "S", "stop after S seconds even if --count is not reached"},
    {"snr", true, "X",
     "noise: L3 maximum over the noise's standard deviation; 0 = none (default 30)"},
    {"offset-ev", true, "EV", "largest random energy calibration offset, +- (default 0.3)"},
    {"clean", false, "",
     "library spectra as they are: no noise, offset, random grid or background"},
    {"coverage", true, "partial|full",
     "energy range: a random part of the library's (default) or all of it"},
    {"raw", true, "f4|f8", "send energy and intensity as bin of little-endian floats"},
    {"id-prefix", true, "TEXT", "prefix of every message id"},
    {"seed", true, "N", "random seed (default 1)"},
    {"wait-subscriber", true, "S",
     "pub + bind: wait up to S s for a subscriber to the topic (the daemon) before sending (default 10)"},
}));

namespace {

std::vector<std::uint8_t> meta_bytes(const Source& s, const std::string& source) {
  msgpack::sbuffer b;
  msgpack::packer<msgpack::sbuffer> pk(b);
  pk.pack_map(3);
  pk.pack("source");
  pk.pack(source);
  pk.pack("label");
  pk.pack(s.meta_label);
  pk.pack("offset_ev");
  pk.pack_double(s.offset_ev);
  return {b.data(), b.data() + b.size()};
}

// The message of `s`: its arrays copied (an acknowledged feed may resend it), or moved out of a
// source sent once.
protocol::SpectrumMessage message_of(Source s, const std::string& kind) {
  protocol::SpectrumMessage m;
  m.id = std::move(s.id);
  m.energy = std::move(s.energy);
  m.intensity = std::move(s.intensity);
  m.intensity_f4 = std::move(s.intensity_f4);
  m.time = wall_seconds();
  m.meta = meta_bytes(s, kind);
  m.stack = !s.shape.empty();
  m.shape = std::move(s.shape);
  return m;
}

// A rate to 3 significant digits (4.57 /s), whole numbers from 100 on (27537 /s).
std::string rate_text(std::size_t n, double elapsed) {
  const double per_second = elapsed > 0 ? static_cast<double>(n) / elapsed : 0.0;
  char text[64];
  std::snprintf(text, sizeof text, per_second >= 100 ? "%.2f s (%.0f /s)" : "%.2f s (%.3g /s)", elapsed, per_second);
  return text;
}

// The acknowledged feed (--pattern dealer, to a daemon whose input is `router`): each message is
// answered to this sender once its estimate (or error) is published. What is not answered within
// --ack-timeout is sent again, whichever daemon is then listening (a restarted one, say); the
// daemon answers a resent id it has already answered with `duplicate`, and passes over one still
// in flight. Every answer is counted as it arrives, so 'answered twice' reports any id answered
// more than once. An `overloaded` error (dropped by the daemon's overflow policy) is no answer:
// the message is sent again. Exit 0 when every message was answered.
int feed_acknowledged(const CliArgs& args, const std::string& endpoint, const std::string& topic,
                      const std::string& raw, double rate, double seconds, const std::vector<Source>& sources,
                      const std::string& kind) {
  using Clock = std::chrono::steady_clock;
  const double ack_timeout_s = args.number("ack-timeout", 5.0);
  const double ack_wait_s = args.number("ack-wait", 60.0);
  const long long window = args.integer("window", 1000);
  if (!(ack_timeout_s > 0 && ack_timeout_s <= 3600)) throw UsageError("--ack-timeout must be in (0, 3600] seconds");
  if (!(ack_wait_s >= 0 && ack_wait_s <= 86400)) throw UsageError("--ack-wait must be in [0, 86400] seconds");
  if (window < 1) throw UsageError("--window must be at least 1");
  {
    std::set<std::string> ids;
    for (const Source& s : sources) {
      if (!ids.insert(s.id).second) throw UsageError("acknowledged sending matches answers by id, and '" + s.id + "' repeats");
    }
  }
  const auto ack_timeout = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(ack_timeout_s));

  zmq::context_t context(1);
  zmq::socket_t sock(context, zmq::socket_type::dealer);
  // Immediate: nothing is queued for a daemon that is not connected (it would be lost with the
  // connection); a send then waits, and what was lost is sent again after --ack-timeout.
  sock.set(zmq::sockopt::immediate, true);
  sock.set(zmq::sockopt::rcvhwm, 0);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::reconnect_ivl, 100);
  client_curve(args).apply(sock, false);
  sock.connect(endpoint);
  install_interrupt_handler();

  struct Pending {
    std::vector<std::uint8_t> body;
    Clock::time_point sent;
  };
  std::unordered_map<std::string, Pending> pending;  // sent, not answered
  std::unordered_map<std::string, int> answers;      // answers received per id
  std::size_t next = 0, estimates = 0, errors = 0, resent = 0, twice = 0, duplicate_replies = 0, overloaded = 0;
  const auto t0 = Clock::now();
  Clock::time_point last_sent = t0, last_resend_scan = t0;
  bool stopped_early = false;
  const auto try_send = [&](const std::vector<std::uint8_t>& body) {
    if (!sock.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
    sock.send(zmq::buffer(body), zmq::send_flags::none);  // the rest of a started message never waits
    return true;
  };
  for (;;) {
    if (interrupted()) break;
    const auto now = Clock::now();
    if (seconds > 0 && now - t0 > std::chrono::duration<double>(seconds) && next < sources.size()) {
      stopped_early = true;  // no new messages; what was sent is still awaited
    }
    bool sent_one = false;
    // A new message, when the rate, the window and the connection allow (not connected: the
    // send is refused at once, and tried again after the wait for answers below).
    if (!stopped_early && next < sources.size() && pending.size() < static_cast<std::size_t>(window) &&
        (rate <= 0 || now >= t0 + std::chrono::duration<double>(static_cast<double>(next) / rate))) {
      auto body = protocol::encode(message_of(sources[next], kind), raw);
      if (try_send(body)) {
        pending[sources[next].id] = Pending{std::move(body), now};
        ++next;
        last_sent = now;
        sent_one = true;
      }
    }
    // Resends of what has not been answered in time (scanned every 100 ms).
    if (now - last_resend_scan > std::chrono::milliseconds(100)) {
      last_resend_scan = now;
      for (auto& [id, p] : pending) {
        if (now - p.sent < ack_timeout) continue;
        if (!try_send(p.body)) break;  // not connected: later
        p.sent = now;
        ++resent;
      }
    }
    // Answers.
    zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(sent_one ? 0 : 2));
    while (true) {
      zmq::message_t answer_topic, body;
      if (!sock.recv(answer_topic, zmq::recv_flags::dontwait)) break;
      if (!answer_topic.more()) continue;
      (void)sock.recv(body);
      while (body.more()) {  // not ours: read and passed over
        zmq::message_t extra;
        (void)sock.recv(extra);
        if (!extra.more()) break;
      }
      const auto id = protocol::peek_id(static_cast<const std::uint8_t*>(body.data()), body.size());
      if (!id) continue;
      const std::string_view t = answer_topic.to_string_view();
      if (t == protocol::kTopicDuplicate) {
        ++duplicate_replies;  // answered before (its answer was lost with a connection)
        pending.erase(*id);
        continue;
      }
      if (t == protocol::kTopicError) {
        try {
          const auto e = protocol::decode_error_message(static_cast<const std::uint8_t*>(body.data()), body.size());
          if (e.code == protocol::ErrorCode::kOverloaded) {
            ++overloaded;  // dropped, not answered: sent again after --ack-timeout
            continue;
          }
        } catch (const protocol::ProtocolError&) {
        }
      }
      if (++answers[*id] > 1) ++twice;
      (t == protocol::kTopicError ? errors : estimates) += 1;
      pending.erase(*id);
    }
    if (next >= sources.size() || stopped_early) {
      if (pending.empty()) break;
      if (Clock::now() - last_sent > std::chrono::duration<double>(ack_wait_s) + ack_timeout) break;
    }
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::cerr << "xasmap feed: sent " << next << " " << kind << (next == 1 ? " message" : " messages") << " to "
            << endpoint << " in " << rate_text(next, elapsed) << ", acknowledged: answered "
            << (next - pending.size()) << " (" << estimates << " estimates, " << errors << " errors, "
            << duplicate_replies << " answered before), resent " << resent << ", overloaded " << overloaded
            << ", answered twice " << twice << ", unanswered " << pending.size() << "\n";
  if (interrupted()) return 130;
  return pending.empty() ? 0 : 1;
}

}  // namespace

int run_feed(const CliArgs& args) {
  const config::Config cfg = config_from_args(args);
  if (args.has("input") && args.has("endpoint")) throw UsageError("give --input or --endpoint, not both");
  const std::string endpoint = args.value("input").value_or(args.value("endpoint").value_or(cfg.input.endpoint));
  const std::string pattern =
      args.value("pattern").value_or(cfg.input.pattern == config::InputPattern::kPull     ? "push"
                                     : cfg.input.pattern == config::InputPattern::kRouter ? "dealer"
                                                                                           : "pub");
  if (pattern != "pub" && pattern != "push" && pattern != "dealer") {
    throw UsageError("--pattern must be pub, push or dealer");
  }
  const bool bind = pattern != "dealer" && !args.has("connect");  // a DEALER connects to the daemon's ROUTER
  const std::string topic = args.value("topic").value_or(cfg.input.topic);
  const std::string raw = args.value("raw").value_or("");
  if (!raw.empty() && raw != "f4" && raw != "f8") throw UsageError("--raw must be f4 or f8");
  const double rate = args.number("rate", 100.0);
  if (!(rate >= 0)) throw UsageError("--rate must be >= 0");
  const double seconds = args.number("seconds", 0.0);
  Perturbation perturb;
  perturb.clean = args.has("clean");
  perturb.snr = args.number("snr", 30.0);
  perturb.max_offset_ev = args.number("offset-ev", 0.3);
  perturb.full_range = coverage_is_full(args);
  if (!(perturb.snr >= 0) || !(perturb.max_offset_ev >= 0)) throw UsageError("--snr and --offset-ev must be >= 0");
  const std::string prefix = args.value("id-prefix").value_or("");
  std::mt19937_64 rng(static_cast<std::uint64_t>(args.integer("seed", 1)));

  // The messages, built before the clock starts so that the rate is the sending rate.
  std::vector<Source> sources;
  std::string kind;
  if (args.value("stack")) {
    if (!args.value("library")) throw UsageError("--stack needs --library DIR for the phases' spectra");
    const auto [rows, cols, energies] = parse_stack_size(*args.value("stack"));
    perturb.stack_energies = energies;
    const Library lib = load_library(*args.value("library"));
    auto image = args.value("stack-image") ? read_pgm(*args.value("stack-image")) : default_image(rows, cols);
    if (static_cast<int>(image.size()) != rows || static_cast<int>(image.front().size()) != cols) {
      throw UsageError("--stack-image is " + std::to_string(image.front().size()) + "x" +
                       std::to_string(image.size()) + " (cols x rows), not the --stack size");
    }
    const auto phases = split(args.value("phases").value_or("Mn2_tendq0.9_slater0.8_T300_gauss0.2,Mn4_tendq2_slater0.8_T300_gauss0.2"), ',');
    const long long count = args.integer("count", 1);
    for (long long i = 0; i < count; ++i) {
      Source s = make_stack(lib, image, phases, perturb, rng);
      s.id = prefix + "stack-" + std::to_string(i + 1);
      sources.push_back(std::move(s));
    }
    kind = "stack";
  } else if (args.value("library")) {
    if (!args.positionals().empty()) throw UsageError("give spectrum files or --library, not both");
    const Library lib = load_library(*args.value("library"));
    if (lib.spectra.empty()) throw UsageError("the library in " + *args.value("library") + " is empty");
    const long long count = args.integer("count", 100);
    std::uniform_int_distribution<std::size_t> pick(0, lib.spectra.size() - 1);
    for (long long i = 0; i < count; ++i) {
      const std::size_t j = pick(rng);
      Source s = measured_like(lib.spectra[j], perturb, rng);
      char id[32];
      std::snprintf(id, sizeof id, "lib-%06lld", i + 1);
      s.id = prefix + id;
      s.meta_label = lib.labels[j];
      sources.push_back(std::move(s));
    }
    kind = "library";
  } else {
    if (args.positionals().empty()) throw UsageError("nothing to send: give spectrum files, --library DIR or --stack RxC");
    std::vector<Source> files;
    const SpectrumReadOptions reading = spectrum_read_options(args);
    for (const auto& f : args.positionals()) {
      Source s;
      s.id = prefix + std::filesystem::path(f).stem().string();
      s.meta_label = std::filesystem::path(f).filename().string();
      if (is_nexus_file(f) && nexus_kind(f) == NexusKind::kStack) {
        // An NXstxm stack: one stack message, pixel-major as the protocol has it.
        NexusStack stack = read_nxstxm(f);
        s.energy = to_std(stack.energy_ev);
        s.intensity_f4 = std::move(stack.intensity);
        s.shape = {static_cast<std::int64_t>(stack.ny), static_cast<std::int64_t>(stack.nx),
                   static_cast<std::int64_t>(stack.energy_ev.size())};
      } else {
        const Spectrum sp = is_nexus_file(f) ? read_nxxas(f).spectrum : read_spectrum(f, reading);
        s.energy = to_std(sp.energy_ev);
        s.intensity = to_std(sp.intensity);
      }
      files.push_back(std::move(s));
    }
    const auto count = static_cast<std::size_t>(args.integer("count", static_cast<long long>(files.size())));
    for (std::size_t i = 0; i < count; ++i) {
      Source s = count <= files.size() ? std::move(files[i]) : files[i % files.size()];
      if (i >= files.size()) s.id += "#" + std::to_string(i / files.size() + 1);
      sources.push_back(std::move(s));
    }
    kind = "file";
  }

  if (pattern == "dealer") return feed_acknowledged(args, endpoint, topic, raw, rate, seconds, sources, kind);

  zmq::context_t context(1);
  zmq::socket_t sock(context, pattern == "push" ? zmq::socket_type::push
                              : bind             ? zmq::socket_type::xpub
                                                 : zmq::socket_type::pub);
  sock.set(zmq::sockopt::sndhwm, 0);
  sock.set(zmq::sockopt::linger, 5000);
  client_curve(args).apply(sock, bind);  // a publisher the daemon's input.curve trusts
  if (bind) {
    sock.bind(endpoint);
  } else {
    sock.connect(endpoint);
  }
  install_interrupt_handler();
  if (pattern == "pub" && bind) {
    // A PUB drops what it sends before a subscriber's subscription arrives; the XPUB sees the
    // subscription, so sending starts only once somebody listens: a subscription to the topic
    // itself, as xasmapd's, not one to everything (a dashboard's or a recorder's, which would
    // start the feed before the daemon has subscribed).
    const double wait = args.number("wait-subscriber", 10.0);
    sock.set(zmq::sockopt::rcvtimeo, 100);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait);
    bool subscribed = false;
    while (!subscribed && !interrupted() && std::chrono::steady_clock::now() < deadline) {
      zmq::message_t sub;
      try {
        if (sock.recv(sub) && sub.size() == topic.size() + 1 && static_cast<const char*>(sub.data())[0] == 1 &&
            std::string_view(static_cast<const char*>(sub.data()) + 1, topic.size()) == topic) {
          subscribed = true;
        }
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;  // interrupted: the loop's condition ends it
      }
    }
    if (!subscribed) {
      std::cerr << "xasmap feed: no subscriber to topic '" << topic << "' on " << endpoint << " within " << wait << " s\n";
      return 69;
    }
  } else if (!bind) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the connection settle
  }

  const auto t0 = std::chrono::steady_clock::now();
  std::size_t sent = 0;
  for (Source& s : sources) {
    if (interrupted()) break;
    if (rate > 0) std::this_thread::sleep_until(t0 + std::chrono::duration<double>(static_cast<double>(sent) / rate));
    if (seconds > 0 && std::chrono::steady_clock::now() - t0 > std::chrono::duration<double>(seconds)) break;
    // Each source is sent once here: its arrays move into the message, and the encoded bytes into
    // ZeroMQ without a copy (it frees them once sent).
    auto* body = new std::vector<std::uint8_t>(protocol::encode(message_of(std::move(s), kind), raw));
    zmq::message_t frame(body->data(), body->size(),
                         [](void*, void* hint) { delete static_cast<std::vector<std::uint8_t>*>(hint); }, body);
    try {
      sock.send(zmq::buffer(topic), zmq::send_flags::sndmore);
      sock.send(frame, zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) break;  // a PUSH waiting for a peer, interrupted
      throw;
    }
    ++sent;
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "xasmap feed: sent " << sent << " " << kind << (sent == 1 ? " message" : " messages")
            << " to " << endpoint << " in " << rate_text(sent, elapsed) << "\n";
  return interrupted() ? 130 : 0;
}

}  // namespace xasmap::service
