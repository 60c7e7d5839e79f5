// xasmap bench: an end-to-end load generator for a running xasmapd. It offers spectra (or
// stacks) at a fixed rate or flat out, for a bounded count and time, matches every answer to its
// message by id, and reports the delivered throughput, the latency distribution (send to receipt
// of the answer, on this process's monotonic clock), drops and errors.

#include <msgpack.hpp>
#include <zmq.hpp>

#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include "client.hpp"
#include "commands.hpp"
#include "feed_sources.hpp"
#include "latency_histogram.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kBenchOptions = {
    {"input", true, "EP", "the daemon's input endpoint, which the bench binds (default: input.endpoint)"},
    {"output", true, "EP", "the daemon's output endpoint (default: output.endpoint of the config)"},
    {"config", true, "FILE", "configuration to take the endpoints and the input pattern from (default config)"},
    {"pattern", true, "pub|push", "socket the bench sends with (default: push for a pull daemon, else pub)"},
    {"library", true, "DIR", "library folder (manifest.csv) the spectra are drawn from (required)"},
    {"rate", true, "HZ", "offered messages per second; 0 = as fast as they can be sent (default 0)"},
    {"count", true, "N", "messages to send (default 10000)"},
    {"seconds", true, "S", "stop sending after S seconds (default 60)"},
    {"drain", true, "S", "after sending, wait at most S seconds for the last answers (default 5)"},
    {"raw", true, "f4|f8|none", "array encoding: bin of f4 or f8, or msgpack arrays (default f4)"},
    {"stack", true, "RxC[xE]", "send STXM stacks of R x C pixels (E energies) instead of single spectra"},
    {"coverage", true, "partial|full", "energy range: a random part of the library's (default) or all of it"},
    {"variants", true, "N", "distinct noisy spectra built beforehand and cycled (default 256)"},
    {"seed", true, "N", "random seed (default 1)"},
    {"json", false, "", "also print the results as one JSON line"},
};

namespace {

using Clock = std::chrono::steady_clock;

// A pre-encoded message whose id digits and `time` are overwritten in place for every send.
struct Template {
  std::vector<std::uint8_t> bytes;
  std::size_t id_at = 0;    // offset of the 10 id digits
  std::size_t time_at = 0;  // offset of the float64 `time` (0xcb + 8 bytes)
};

constexpr char kIdPrefix[] = "bench-";
constexpr double kTimePlaceholder = 1234.5678;

std::size_t find_bytes(const std::vector<std::uint8_t>& hay, const std::vector<std::uint8_t>& needle) {
  const auto it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end());
  if (it == hay.end()) throw Error("bench: placeholder not found in an encoded message");
  return static_cast<std::size_t>(it - hay.begin());
}

std::vector<std::uint8_t> be_double(double v) {
  std::vector<std::uint8_t> b(9);
  b[0] = 0xcb;
  auto bits = std::bit_cast<std::uint64_t>(v);
  for (int i = 8; i >= 1; --i) {
    b[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(bits & 0xff);
    bits >>= 8;
  }
  return b;
}

Template make_template(const Source& s, const std::string& raw) {
  protocol::SpectrumMessage m;
  m.id = std::string(kIdPrefix) + "0000000000";
  m.energy = s.energy;
  m.intensity = s.intensity;
  m.time = kTimePlaceholder;
  m.stack = !s.shape.empty();
  m.shape = s.shape;
  Template t;
  t.bytes = protocol::encode(m, raw);
  const std::string id = m.id;
  t.id_at = find_bytes(t.bytes, {id.begin(), id.end()}) + std::strlen(kIdPrefix);
  t.time_at = find_bytes(t.bytes, be_double(kTimePlaceholder));
  return t;
}

void patch(Template& t, std::size_t index, double time) {
  // Ten decimal digits, most significant first (counts stay far below 10^10).
  for (int d = 9; d >= 0; --d) {
    t.bytes[t.id_at + static_cast<std::size_t>(d)] = static_cast<std::uint8_t>('0' + index % 10);
    index /= 10;
  }
  const auto b = be_double(time);
  std::memcpy(t.bytes.data() + t.time_at, b.data(), b.size());
}

// The message index of an answer's id, or -1 when it is not one of ours.
long index_of(const std::optional<std::string>& id) {
  if (!id || id->size() != std::strlen(kIdPrefix) + 10 || id->rfind(kIdPrefix, 0) != 0) return -1;
  long v = 0;
  for (std::size_t i = std::strlen(kIdPrefix); i < id->size(); ++i) {
    const char c = (*id)[i];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string us_text(double us) { return us >= 1000 ? fmt("%.2f ms", us / 1000) : fmt("%.0f us", us); }

}  // namespace

int run_bench(const CliArgs& args) {
  const config::Config cfg = config_from_args(args);
  std::string input = args.value("input").value_or(cfg.input.endpoint);
  const std::string output = args.value("output").value_or(cfg.output.endpoint);
  const std::string pattern =
      args.value("pattern").value_or(cfg.input.pattern == config::InputPattern::kPull ? "push" : "pub");
  if (pattern != "pub" && pattern != "push") throw UsageError("--pattern must be pub or push");
  if (!args.value("library")) throw UsageError("--library DIR is required (the spectra to send)");
  const double rate = args.number("rate", 0.0);
  const auto count = static_cast<std::size_t>(args.integer("count", 10000));
  const double seconds = args.number("seconds", 60.0);
  const double drain = args.number("drain", 5.0);
  std::string raw = args.value("raw").value_or("f4");
  if (raw != "f4" && raw != "f8" && raw != "none") throw UsageError("--raw must be f4, f8 or none");
  if (raw == "none") raw.clear();
  const auto variants = static_cast<std::size_t>(std::max<long long>(1, args.integer("variants", 256)));
  if (!(rate >= 0) || count == 0 || !(seconds > 0) || !(drain >= 0)) {
    throw UsageError("--rate must be >= 0, --count > 0, --seconds > 0 and --drain >= 0");
  }
  std::mt19937_64 rng(static_cast<std::uint64_t>(args.integer("seed", 1)));

  // The messages, built before the clock starts.
  const Library lib = load_library(*args.value("library"));
  if (lib.spectra.empty()) throw UsageError("the library in " + *args.value("library") + " is empty");
  std::vector<Template> templates;
  std::string kind = "spectrum";
  Perturbation perturb;
  perturb.full_range = coverage_is_full(args);
  if (args.value("stack")) {
    const auto [rows, cols, energies] = parse_stack_size(*args.value("stack"));
    perturb.stack_energies = energies;
    templates.push_back(make_template(make_stack(lib, default_image(rows, cols), {lib.labels.front(), lib.labels.back()},
                                                 perturb, rng),
                                      raw));
    kind = "stack " + *args.value("stack");
  } else {
    std::uniform_int_distribution<std::size_t> pick(0, lib.spectra.size() - 1);
    for (std::size_t i = 0; i < variants; ++i) templates.push_back(make_template(measured_like(lib.spectra[pick(rng)], perturb, rng), raw));
  }
  if (perturb.full_range) kind += ", full range";

  zmq::context_t context(1);
  zmq::socket_t sub(context, zmq::socket_type::sub);
  sub.set(zmq::sockopt::rcvhwm, 0);
  for (const char* t : {"estimate", "error", "metrics"}) sub.set(zmq::sockopt::subscribe, t);
  sub.connect(output);
  zmq::socket_t out(context, pattern == "push" ? zmq::socket_type::push : zmq::socket_type::xpub);
  out.set(zmq::sockopt::sndhwm, 0);
  out.set(zmq::sockopt::linger, 2000);
  out.bind(input);
  install_interrupt_handler();

  // Ready when the daemon's results reach us (its metrics) and, for PUB, its subscription has
  // reached the bench.
  const auto ready_by = Clock::now() + std::chrono::seconds(20);
  bool have_metrics = false, have_subscriber = pattern == "push";
  while ((!have_metrics || !have_subscriber) && Clock::now() < ready_by && !interrupted()) {
    std::vector<zmq::pollitem_t> items{{sub.handle(), 0, ZMQ_POLLIN, 0}, {out.handle(), 0, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items.data(), pattern == "push" ? 1 : 2, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) throw;
    }
    zmq::message_t m;
    if (items[0].revents & ZMQ_POLLIN) {
      while (sub.recv(m, zmq::recv_flags::dontwait)) have_metrics = true;
    }
    if (pattern != "push" && (items[1].revents & ZMQ_POLLIN) && out.recv(m, zmq::recv_flags::dontwait)) {
      if (m.size() > 0 && static_cast<const char*>(m.data())[0] == 1) have_subscriber = true;
    }
  }
  if (!have_metrics || !have_subscriber) {
    std::cerr << "xasmap bench: the daemon is not reachable (" << (have_metrics ? "" : "no metrics on " + output)
              << (have_subscriber ? "" : std::string(have_metrics ? "" : ", ") + "no subscriber on " + input) << ")\n";
    return 69;
  }
  if (pattern == "push") std::this_thread::sleep_for(std::chrono::milliseconds(300));

  // Sender thread: the offered schedule; send times on the monotonic clock, by message index.
  std::vector<std::int64_t> sent_at(count, 0);
  std::atomic<std::size_t> sent{0};
  std::atomic<bool> sending{true};
  const Clock::time_point t0 = Clock::now();
  std::thread sender([&] {
    for (std::size_t i = 0; i < count && !interrupted(); ++i) {
      if (rate > 0) std::this_thread::sleep_until(t0 + std::chrono::duration<double>(static_cast<double>(i) / rate));
      const Clock::time_point now = Clock::now();
      if (now - t0 > std::chrono::duration<double>(seconds)) break;
      Template& t = templates[i % templates.size()];
      patch(t, i, wall_seconds());
      sent_at[i] = std::chrono::duration_cast<std::chrono::nanoseconds>(now - t0).count();
      // Published before the send: its answer may arrive before this thread runs again.
      sent.store(i + 1, std::memory_order_release);
      try {
        out.send(zmq::buffer(std::string_view("spectrum")), zmq::send_flags::sndmore);
        out.send(zmq::buffer(t.bytes), zmq::send_flags::none);
      } catch (const zmq::error_t& e) {
        sent.store(i, std::memory_order_release);
        if (e.num() == EINTR) break;
        throw;
      }
    }
    sending = false;
  });

  // Receiver: match answers to messages.
  std::vector<std::uint8_t> answered(count, 0);
  LatencyHistogram latency;
  std::map<std::string, std::uint64_t> errors;
  std::uint64_t estimates = 0, duplicates = 0, foreign = 0, undecodable = 0;
  Clock::time_point last_answer = t0, drain_until = Clock::time_point::max();
  std::size_t unique = 0;
  while (!interrupted()) {
    if (!sending.load() && drain_until == Clock::time_point::max()) {
      drain_until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(drain));
    }
    if (Clock::now() > drain_until || (!sending.load() && unique >= sent.load())) break;
    wait_readable(sub, std::chrono::milliseconds(50));  // then take whatever has arrived
    zmq::message_t topic, body;
    while (sub.recv(topic, zmq::recv_flags::dontwait)) {
      if (!topic.more()) continue;
      (void)sub.recv(body);
      const Clock::time_point now = Clock::now();
      const std::string_view t = topic.to_string_view();
      const auto* data = static_cast<const std::uint8_t*>(body.data());
      long idx = -1;
      if (t == protocol::kTopicMetrics) continue;
      if (t == protocol::kTopicEstimate || t == protocol::kTopicEstimateMap) {
        idx = index_of(protocol::peek_id(data, body.size()));
        ++estimates;
      } else if (t == protocol::kTopicError) {
        try {
          const auto e = protocol::decode_error_message(data, body.size());
          ++errors[std::string(protocol::to_string(e.code))];
          idx = index_of(e.id);
        } catch (const protocol::ProtocolError&) {
          ++undecodable;
        }
      }
      if (idx < 0 || static_cast<std::size_t>(idx) >= count || static_cast<std::size_t>(idx) >= sent.load(std::memory_order_acquire)) {
        ++foreign;
        continue;
      }
      if (answered[static_cast<std::size_t>(idx)]++) {
        ++duplicates;
        continue;
      }
      ++unique;
      last_answer = now;
      if (t != protocol::kTopicError) {
        const double us = std::chrono::duration<double, std::micro>(now - t0).count() - sent_at[static_cast<std::size_t>(idx)] / 1000.0;
        latency.record(us);
      }
    }
  }
  sending = false;
  sender.join();

  const std::size_t n_sent = sent.load();
  const double send_s = n_sent > 0 ? sent_at[n_sent - 1] / 1e9 : 0.0;
  const double span_s = std::chrono::duration<double>(last_answer - t0).count();
  const double throughput = span_s > 0 ? static_cast<double>(latency.count()) / span_s : 0.0;
  std::uint64_t error_total = 0, dropped = 0;
  for (const auto& [code, n] : errors) {
    error_total += n;
    if (code == "overloaded") dropped += n;
  }
  const std::size_t missing = n_sent - unique;

  std::cout << "xasmap bench: " << n_sent << " " << kind << " messages (" << (raw.empty() ? "arrays" : "bin " + raw)
            << ") to " << input << ", offered " << (rate > 0 ? fmt("%.0f /s", rate) : std::string("flat out")) << "\n";
  std::cout << "  sent in " << fmt("%.3f s", send_s) << " (" << fmt("%.0f /s", send_s > 0 ? n_sent / send_s : 0.0)
            << "); answered " << unique << ": " << latency.count() << " estimates, " << error_total << " errors ("
            << dropped << " dropped as overloaded), " << missing << " missing, " << duplicates << " duplicates\n";
  std::cout << "  delivered throughput " << fmt("%.0f", throughput) << " /s\n";
  if (latency.count() > 0) {
    std::cout << "  latency (send to answer): p50 " << us_text(latency.quantile(0.5)) << ", p90 "
              << us_text(latency.quantile(0.9)) << ", p99 " << us_text(latency.quantile(0.99)) << ", p99.9 "
              << us_text(latency.quantile(0.999)) << ", max " << us_text(latency.max()) << "\n";
    // A coarse view of the distribution: counts per factor-of-two band.
    std::cout << "  histogram:\n";
    double lo = std::pow(2.0, std::floor(std::log2(std::max(1.0, latency.min()))));
    while (lo <= latency.max()) {
      const double hi = 2 * lo;
      const double share = latency.fraction_below(hi) - latency.fraction_below(lo);
      if (share > 0) {
        std::string bar(static_cast<std::size_t>(std::lround(share * 50)), '#');
        std::cout << "    " << fmt("%9.0f", lo) << " - " << fmt("%-9.0f", hi) << " us " << fmt("%6.2f%%", 100 * share)
                  << " " << bar << "\n";
      }
      lo = hi;
    }
  }
  for (const auto& [code, n] : errors) std::cout << "  error " << code << ": " << n << "\n";
  if (foreign + undecodable > 0) {
    std::cout << "  ignored: " << foreign << " answers to other clients' messages, " << undecodable << " undecodable\n";
  }
  if (args.has("json")) {
    std::cout << "{\"kind\":\"" << kind << "\",\"sent\":" << n_sent << ",\"offered_hz\":" << rate
              << ",\"send_s\":" << send_s << ",\"answered\":" << unique << ",\"estimates\":" << latency.count()
              << ",\"errors\":" << error_total << ",\"dropped\":" << dropped << ",\"missing\":" << missing
              << ",\"duplicates\":" << duplicates << ",\"throughput_hz\":" << throughput
              << ",\"p50_us\":" << latency.quantile(0.5) << ",\"p90_us\":" << latency.quantile(0.9)
              << ",\"p99_us\":" << latency.quantile(0.99) << ",\"p999_us\":" << latency.quantile(0.999)
              << ",\"max_us\":" << latency.max() << "}\n";
  }
  return missing == 0 && duplicates == 0 ? 0 : 1;
}

}  // namespace xasmap::service
