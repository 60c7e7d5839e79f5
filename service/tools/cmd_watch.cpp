// xasmap watch: a live terminal dashboard of a running xasmapd's output (estimates, maps, errors
// and metrics), or one plain line per message with --plain or when stdout is not a terminal.
// The state and the text live in watch_view.hpp; this file holds the socket and the terminal.

#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <string_view>

#include "client.hpp"
#include "commands.hpp"
#include "watch_view.hpp"
#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kWatchOptions = with_client_curve_options({
    {"output", true, "EP", "the daemon's output endpoint (default: output.endpoint of the config)"},
    {"config", true, "FILE", "configuration whose output.endpoint to use (default config)"},
    {"seconds", true, "S", "stop after S seconds (default: run until Ctrl-C)"},
    {"count", true, "N", "stop after N estimates and maps"},
    {"plain", false, "", "one line per message, no screen control (also when stdout is not a terminal)"},
    {"rows", true, "N", "rows of the estimates table (default: as many as fit the terminal)"},
    {"refresh", true, "S", "redraw the screen at most every S seconds (default 0.25)"},
});

namespace {

using Clock = std::chrono::steady_clock;

// Rows kept for the table when --rows does not say: more than any terminal shows.
constexpr std::size_t kKeepRows = 500;
// How long one wait for a message may last, so that Ctrl-C and the limits are noticed promptly.
constexpr auto kPollPeriod = std::chrono::milliseconds(100);
// Messages handled between two looks at the clock, so that a flood cannot starve the screen.
constexpr int kBatch = 1000;

volatile std::sig_atomic_t g_resized = 0;
void on_resize(int) { g_resized = 1; }

void install_resize_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_resize;
  sa.sa_flags = SA_RESTART;  // a resize must not fail a write to the terminal (poll still wakes)
  sigemptyset(&sa.sa_mask);
  sigaction(SIGWINCH, &sa, nullptr);
}

struct TerminalSize {
  std::size_t columns = 80, rows = 24;
};

// The size of the terminal on stdout; 80x24 when it cannot be read.
TerminalSize terminal_size() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
    return {ws.ws_col, ws.ws_row};
  }
  return {};
}

// Hides the cursor and clears the screen while the dashboard runs, and shows the cursor again
// however run_watch ends (the last dashboard stays on screen).
class ScreenGuard {
 public:
  ScreenGuard() { std::cout << "\x1b[?25l\x1b[2J\x1b[H" << std::flush; }
  ~ScreenGuard() { std::cout << "\x1b[?25h" << std::flush; }
  ScreenGuard(const ScreenGuard&) = delete;
  ScreenGuard& operator=(const ScreenGuard&) = delete;
};

// Draws `lines` from the top left corner, clearing what is left of older drawings.
void draw(const std::vector<std::string>& lines, bool clear_first) {
  std::cout.clear();  // a write cut short by Ctrl-C (EINTR) fails the stream; the next frame repairs it
  std::string out = clear_first ? "\x1b[2J\x1b[H" : "\x1b[H";
  for (std::size_t i = 0; i < lines.size(); ++i) {
    out += lines[i];
    out += "\x1b[K";
    if (i + 1 < lines.size()) out += "\n";
  }
  out += "\x1b[J";
  std::cout << out << std::flush;
}

// A bound endpoint's "*" host means this host to a client; a "*" port cannot be guessed.
std::string connectable(const std::string& endpoint) {
  if (endpoint.rfind("tcp://", 0) == 0 && endpoint.size() >= 2 && endpoint.substr(endpoint.size() - 2) == ":*") {
    throw UsageError("the output endpoint " + endpoint +
                     " has a wildcard port; give the port in use with --output (xasmap status shows it)");
  }
  const std::string any_host = "tcp://*:";
  if (endpoint.rfind(any_host, 0) == 0) return "tcp://127.0.0.1:" + endpoint.substr(any_host.size());
  return endpoint;
}

// Decodes one message into the state and returns its plain line. A message that breaks the
// protocol is counted as malformed, never fatal.
std::string handle(WatchState& state, const std::string& topic, const zmq::message_t& body) {
  const auto* data = static_cast<const std::uint8_t*>(body.data());
  const std::size_t size = body.size();
  try {
    if (topic == protocol::kTopicEstimate) return state.add(protocol::decode_estimate(data, size));
    if (topic == protocol::kTopicEstimateMap) return state.add(protocol::decode_estimate_map(data, size));
    if (topic == protocol::kTopicError) return state.add(protocol::decode_error_message(data, size));
    if (topic == protocol::kTopicMetrics) return state.add(protocol::decode_metrics(data, size), wall_seconds());
    return state.add_malformed(topic, "unknown topic");
  } catch (const protocol::ProtocolError& e) {
    return state.add_malformed(topic, e.what());
  }
}

// Receives one whole message without waiting; nullopt when none is there. Returns its plain line.
std::optional<std::string> receive_one(zmq::socket_t& sub, WatchState& state) {
  zmq::message_t topic_frame;
  if (!sub.recv(topic_frame, zmq::recv_flags::dontwait)) return std::nullopt;
  const std::string topic = topic_frame.to_string();
  std::size_t frames = 1;
  zmq::message_t body, extra;
  if (topic_frame.more()) {
    // The parts of a multipart message arrive together, so these never wait.
    (void)sub.recv(body, zmq::recv_flags::none);
    ++frames;
    bool more = body.more();
    while (more) {
      (void)sub.recv(extra, zmq::recv_flags::none);
      ++frames;
      more = extra.more();
    }
  }
  if (frames != 2) {
    return state.add_malformed(topic, std::to_string(frames) + (frames == 1 ? " frame" : " frames") +
                                          " where the protocol has 2");
  }
  return handle(state, topic, body);
}

}  // namespace

int run_watch(const CliArgs& args) {
  const std::string endpoint =
      connectable(args.value("output") ? *args.value("output") : config_from_args(args).output.endpoint);
  const bool limit_seconds = args.has("seconds");
  const double seconds = args.number("seconds", 0.0);
  // 0: no limit (a plain number: GCC 12 at -O3 misreads an optional here as uninitialised).
  const long long count = args.has("count") ? args.integer("count", 0) : 0;
  const std::optional<long long> rows =
      args.has("rows") ? std::optional<long long>(args.integer("rows", 0)) : std::nullopt;
  const double refresh_s = args.number("refresh", 0.25);
  if (limit_seconds && !(seconds > 0 && seconds <= 1e7)) throw UsageError("--seconds must be in (0, 1e7]");
  if (args.has("count") && count < 1) throw UsageError("--count must be at least 1");
  if (rows && !(*rows >= 1 && *rows <= 10000)) throw UsageError("--rows must be in [1, 10000]");
  if (!(refresh_s >= 0.01 && refresh_s <= 60)) throw UsageError("--refresh must be in [0.01, 60] seconds");
  const bool screen = !args.has("plain") && isatty(STDOUT_FILENO) == 1;

  zmq::context_t context(1);
  zmq::socket_t sub(context, zmq::socket_type::sub);
  sub.set(zmq::sockopt::linger, 0);
  for (const std::string_view topic : {protocol::kTopicEstimate, protocol::kTopicEstimateMap,
                                       protocol::kTopicError, protocol::kTopicMetrics}) {
    sub.set(zmq::sockopt::subscribe, topic);
  }
  client_curve(args).apply(sub, false);
  try {
    sub.connect(endpoint);
  } catch (const zmq::error_t& e) {
    throw UsageError("cannot connect to the output endpoint '" + endpoint + "': " + e.what());
  }

  install_interrupt_handler();
  WatchState state(rows ? static_cast<std::size_t>(*rows) : kKeepRows);
  const auto start = Clock::now();
  const auto refresh = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(refresh_s));
  const auto deadline = limit_seconds ? start + std::chrono::duration_cast<Clock::duration>(
                                                    std::chrono::duration<double>(seconds))
                                      : Clock::time_point::max();
  const auto stop_after = static_cast<std::uint64_t>(count);
  const auto done = [&] {
    return interrupted() || Clock::now() >= deadline ||
           (stop_after > 0 && state.estimates() + state.maps() >= stop_after);
  };

  std::optional<ScreenGuard> guard;
  if (screen) {
    install_resize_handler();
    guard.emplace();
  }
  Clock::time_point last_draw = start;
  bool drawn = false, changed = true, clear_next = false;
  const auto redraw = [&] {
    const TerminalSize size = terminal_size();
    WatchState::ScreenInfo info;
    info.endpoint = endpoint;
    info.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
    info.now_s = wall_seconds();
    if (rows) info.rows_limit = static_cast<std::size_t>(*rows);
    // One column spare: writing the last column leaves some terminals waiting to wrap.
    draw(state.render(info, size.columns > 1 ? size.columns - 1 : 1, size.rows), clear_next);
    clear_next = false;
    changed = false;
    drawn = true;
    last_draw = Clock::now();
  };

  while (!done()) {
    if (screen) {
      if (g_resized) {
        g_resized = 0;
        clear_next = changed = true;
      }
      // Redraw on news, and at least once a second for the clocks in the header.
      const auto since = Clock::now() - last_draw;
      if (!drawn || (since >= refresh && (changed || since >= std::chrono::seconds(1)))) redraw();
    }
    if (!wait_readable(sub, kPollPeriod)) continue;  // nothing yet, or a signal: Ctrl-C, SIGTERM, a resize
    for (int i = 0; i < kBatch && !done(); ++i) {
      const std::optional<std::string> line = receive_one(sub, state);
      if (!line) break;
      changed = true;
      if (!screen) std::cout << *line << std::endl;
    }
  }

  std::cout.clear();
  if (screen) {
    redraw();
    guard.reset();
    std::cout << "\n";
  }
  std::cout << state.summary() << std::endl;
  return 0;
}

}  // namespace xasmap::service
