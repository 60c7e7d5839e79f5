// xasmap dashboard: a live web page of a running xasmapd (docs/dashboard.md). One subscriber on the
// daemon's output (and, optionally, one on the acquisition's input for the spectra themselves)
// feeds an aggregate; an HTTP server of its own serves the page (embedded in the binary: nothing is
// fetched from elsewhere) and pushes the aggregate to every browser tab as Server-Sent Events,
// four times a second at most, sampled: the daemon sees one subscriber whatever the tabs, and a
// tab sees at most kMaxPointsPerEvent new points and kRecentRows new rows per event whatever the rate.
// Estimates are counted as they come and decoded only when a tab asks, the last kKeptRaw of them.

#include <msgpack.hpp>
#include <zmq.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "client.hpp"
#include "commands.hpp"
#include "latency_histogram.hpp"
#include "logging.hpp"
#include "xasmap/config/config.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/version.hpp"
#include "xasmap/protocol/control.hpp"
#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/results.hpp"

// After Eigen: httplib brings in <resolv.h>, whose _res macro breaks Eigen's headers.
#include <httplib.h>

namespace xasmap::service {

extern const char* const kDashboardPage;  // tools/dashboard/index.html, embedded at build time

const std::vector<OptionSpec> kDashboardOptions = with_client_curve_options({
    {"output", true, "EP", "the daemon's output endpoint (default: output.endpoint of the config)"},
    {"control", true, "EP", "the daemon's control endpoint (default: control.endpoint of the config)"},
    {"config", true, "FILE", "configuration whose endpoints to use (default config)"},
    {"listen", true, "HOST:PORT",
     "where the page is served (default 127.0.0.1:8765; port 0: any free port, printed)"},
    {"input", true, "EP",
     "also subscribe to the acquisition's feed here, to draw the latest spectrum (optional)"},
    {"library", true, "DIR", "library spectra (manifest.csv) to draw the best match under it (optional)"},
    {"seconds", true, "S", "stop after S seconds (default: until Ctrl-C or SIGTERM)"},
    {"nice", true, "N",
     "scheduling niceness to run at (default 10: on a busy host the daemon, not the dashboard, gets the CPU)"},
});

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kRecentRows = 40;           // table rows a tab keeps
constexpr std::size_t kMaxPoints = 20000;         // points kept for new tabs
constexpr std::size_t kMaxPointsPerEvent = 400;   // points sent to a tab per event (sampled above)
constexpr std::size_t kKeptStacks = 4;            // stack maps kept
constexpr std::size_t kStackSide = 128;           // stack maps are sent at most this many pixels a side
constexpr std::size_t kKeptSpectra = 256;         // raw input messages kept to match estimates by id
constexpr std::size_t kKeptRaw = 1024;            // undecoded estimates kept until a tab asks
constexpr auto kEventPeriod = std::chrono::milliseconds(250);

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  return b;
}

std::string str(std::string_view s) { return "\"" + json_escape(s) + "\""; }

double param_number(const protocol::ParamMap& m, std::string_view name) {
  for (const auto& [k, v] : m) {
    if (k == name) return v.number;
  }
  return std::nan("");
}
double number_of(const protocol::NumberMap& m, std::string_view name) {
  for (const auto& [k, v] : m) {
    if (k == name) return v;
  }
  return std::nan("");
}

struct Point {
  std::uint64_t index;
  double x, y, charge, valence;
};

// A table row, kept as numbers: its JSON is written only when a tab is sent it.
struct Row {
  std::uint64_t index;
  std::string id, match;
  double charge, p, tendq, tendq_u, novelty, valence, shift, service_us;
  bool in_library;
  std::string json() const {
    return "{\"id\":" + str(id) + ",\"charge\":" + num(charge) + ",\"p\":" + num(p) + ",\"tendq\":" + num(tendq) +
           ",\"tendq_u\":" + num(tendq_u) + ",\"novelty\":" + num(novelty) + ",\"in_library\":" +
           (in_library ? "true" : "false") + ",\"valence\":" + num(valence) + ",\"shift\":" + num(shift) +
           ",\"match\":" + str(match) + ",\"service_us\":" + num(service_us) + "}";
  }
};

struct StackEntry {
  std::uint64_t index;
  std::string json;  // the maps, at most kStackSide a side
};

// A stack's maps for the page: charge, tendq, novelty (valence with mixtures), nearest-pixel
// downsampled to at most kStackSide a side.
std::string stack_json(const protocol::EstimateMapMessage& m, std::uint64_t index) {
  const std::size_t pixels = m.novelty.size();
  const std::size_t ny = m.shape.size() == 3 ? static_cast<std::size_t>(m.shape[0]) : 1;
  const std::size_t nx = m.shape.size() == 3 ? static_cast<std::size_t>(m.shape[1]) : pixels;
  const std::size_t step = std::max<std::size_t>(1, (std::max(ny, nx) + kStackSide - 1) / kStackSide);
  const std::size_t oy = (ny + step - 1) / step, ox = (nx + step - 1) / step;
  std::string s = "{\"index\":" + std::to_string(index) + ",\"id\":" + str(m.id) + ",\"ny\":" + std::to_string(ny) +
                  ",\"nx\":" + std::to_string(nx) + ",\"rows\":" + std::to_string(oy) + ",\"cols\":" +
                  std::to_string(ox) + ",\"rejected\":" + std::to_string(m.rejected_pixels) + ",\"maps\":{";
  bool first = true;
  const auto add = [&](const std::string& name, const std::vector<float>& v) {
    if (v.size() != ny * nx) return;
    s += std::string(first ? "" : ",") + str(name) + ":[";
    first = false;
    for (std::size_t y = 0; y < oy; ++y) {
      for (std::size_t x = 0; x < ox; ++x) {
        s += (y || x ? "," : "") + num(v[y * step * nx + x * step]);
      }
    }
    s += "]";
  };
  for (const auto& [name, values] : m.params) {
    if (name == "charge" || name == "tendq" || name == "valence") add(name, values);
  }
  add("novelty", m.novelty);
  return s + "}}";
}

class Dashboard {
 public:
  Dashboard(std::string output, std::string control, std::string input, ClientCurve curve, std::optional<Library> lib)
      : output_(std::move(output)), control_(std::move(control)), input_(std::move(input)), curve_(std::move(curve)),
        library_(std::move(lib)) {}

  void start() {
    threads_.emplace_back([this] { subscribe_output(); });
    threads_.emplace_back([this] { poll_control(); });
    if (!input_.empty()) threads_.emplace_back([this] { subscribe_input(); });
  }
  void stop() {
    stop_ = true;
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  bool stopping() const { return stop_.load(); }

  // ---- what the page asks for ----

  std::string library_json() {
    std::lock_guard lock(m_);
    return library_map_json_.empty() ? "{\"spectra\":[]}" : library_map_json_;
  }

  std::string stack(std::uint64_t index) {
    std::lock_guard lock(m_);
    for (const StackEntry& s : stacks_) {
      if (s.index == index) return s.json;
    }
    return {};
  }

  // The latest estimate whose spectrum came on the input, over its best library match.
  std::string spectrum_json() {
    std::lock_guard lock(m_);
    digest();
    if (input_.empty()) return "{\"note\":\"start xasmap dashboard with --input EP to see the spectra\"}";
    return latest_spectrum_json_.empty() ? "{\"note\":\"no estimate of a spectrum seen on the input yet\"}"
                                         : latest_spectrum_json_;
  }

  // One event for a tab: what changed since its cursors, or nothing (empty) when nothing did.
  struct Cursor {
    std::uint64_t version = 0, row = 0, point = 0, error = 0;
  };
  std::string event(Cursor& c) {
    std::lock_guard lock(m_);
    if (version_ == c.version) return {};
    c.version = version_;
    digest();
    std::string s = "{\"estimates\":" + std::to_string(estimates_) + ",\"maps\":" + std::to_string(maps_) +
                    ",\"errors\":" + std::to_string(errors_) + ",\"errors_by_code\":{";
    bool first = true;
    for (const auto& [code, n] : errors_by_code_) {
      s += std::string(first ? "" : ",") + str(code) + ":" + std::to_string(n);
      first = false;
    }
    s += "},\"connected\":" + std::string(connected_ ? "true" : "false");
    s += ",\"status\":" + (status_json_.empty() ? std::string("null") : status_json_);
    s += ",\"metrics\":" + (metrics_json_.empty() ? std::string("null") : metrics_json_);
    s += ",\"library_generation\":" + std::to_string(library_generation_);
    // New table rows (the last kRecentRows at most).
    s += ",\"rows\":[";
    first = true;
    for (const Row& r : recent_) {
      if (r.index <= c.row) continue;
      s += std::string(first ? "" : ",") + r.json();
      first = false;
    }
    if (!recent_.empty()) c.row = recent_.back().index;
    // New points, evenly sampled down to kMaxPointsPerEvent.
    s += "],\"points\":[";
    const auto from = std::upper_bound(points_.begin(), points_.end(), c.point,
                                       [](std::uint64_t v, const Point& p) { return v < p.index; });
    const auto fresh = static_cast<std::size_t>(points_.end() - from);
    const std::size_t stride = std::max<std::size_t>(1, (fresh + kMaxPointsPerEvent - 1) / kMaxPointsPerEvent);
    first = true;
    for (std::size_t i = 0; i < fresh; i += stride) {
      const Point& p = *(from + static_cast<std::ptrdiff_t>(i));
      s += std::string(first ? "" : ",") + "[" + num(p.x) + "," + num(p.y) + "," + num(p.charge) + "," +
           num(p.valence) + "]";
      first = false;
    }
    if (!points_.empty()) c.point = points_.back().index;
    s += "],\"stacks\":[";
    first = true;
    for (const StackEntry& st : stacks_) {
      s += std::string(first ? "" : ",") + std::to_string(st.index);
      first = false;
    }
    s += "],\"new_errors\":[";
    first = true;
    for (const auto& [index, json] : recent_errors_) {
      if (index <= c.error) continue;
      s += std::string(first ? "" : ",") + json;
      first = false;
    }
    if (!recent_errors_.empty()) c.error = recent_errors_.back().first;
    // Throughput over the last 60 s (estimates and maps per second) and the service latency.
    s += "],\"rate\":[";
    for (std::size_t i = 0; i < rate_.size(); ++i) s += (i ? "," : "") + std::to_string(rate_[i]);
    s += "],\"latency_us\":{\"p50\":" + num(latency_.quantile(0.5)) + ",\"p90\":" + num(latency_.quantile(0.9)) +
         ",\"p99\":" + num(latency_.quantile(0.99)) + ",\"max\":" + num(latency_.max()) + ",\"bins\":[";
    // 16 bins a decade wide in quarters: 10 us to 10 s, as fractions of the results.
    double previous = 0;
    for (int b = 0; b <= 24; ++b) {
      const double edge = std::pow(10.0, 1.0 + 0.25 * b);
      const double below = latency_.fraction_below(edge);
      s += (b ? "," : "") + std::string("[") + num(edge) + "," + num(below - previous) + "]";
      previous = below;
    }
    s += "]},\"spectrum_version\":" + std::to_string(spectrum_version_);
    return s + "}";
  }

  // Waits until the aggregate changes (or `period` passes, or the dashboard stops).
  void wait_change(std::uint64_t seen, std::chrono::milliseconds period) {
    std::unique_lock lock(m_);
    cv_.wait_for(lock, period, [&] { return stop_.load() || version_ != seen; });
  }

 private:
  void changed() {
    ++version_;
    cv_.notify_all();
  }

  void count_second(Clock::time_point now) {
    const auto second = std::chrono::duration_cast<std::chrono::seconds>(now - started_).count();
    while (rate_second_ < second) {
      rate_.push_back(0);
      if (rate_.size() > 60) rate_.pop_front();
      ++rate_second_;
    }
    if (rate_.empty()) rate_.push_back(0);
    ++rate_.back();
  }

  // An estimate as it arrives: counted, and its bytes kept (the last kKeptRaw) for digest(), which
  // decodes them only when a tab asks: at 25,000 estimates/s this is all the dashboard does per
  // estimate, and with no tab open nothing more.
  void on_estimate_bytes(const std::uint8_t* data, std::size_t size) {
    std::lock_guard lock(m_);
    ++estimates_;
    count_second(Clock::now());
    const std::uint64_t index = ++next_index_;
    if (raw_.size() == kKeptRaw) {
      std::pair<std::uint64_t, std::vector<std::uint8_t>> reuse = std::move(raw_.front());
      raw_.pop_front();
      reuse.first = index;
      reuse.second.assign(data, data + size);
      raw_.push_back(std::move(reuse));
    } else {
      raw_.emplace_back(index, std::vector<std::uint8_t>(data, data + size));
    }
    changed();
  }

  // Under m_: decodes the estimates kept since the last digest (at most kKeptRaw: at high rates a
  // sample, the latest) into rows, points and the latency histogram.
  void digest() {
    for (auto& [index, bytes] : raw_) {
      if (index <= digested_) continue;
      digested_ = index;
      try {
        protocol::EstimateMessage e = protocol::decode_estimate(bytes.data(), bytes.size());
        on_estimate(e, index, &bytes == &raw_.back().second);
      } catch (const std::exception& ex) {
        std::cerr << "xasmap dashboard: an estimate could not be decoded: " << ex.what() << "\n";
      }
    }
  }

  void on_estimate(protocol::EstimateMessage& e, std::uint64_t index, bool latest) {
    const double charge = param_number(e.params, "charge");
    const double valence = e.mixture ? e.mixture->mean_valence : std::nan("");
    recent_.push_back({index, std::move(e.id), e.neighbors.empty() ? std::string() : std::move(e.neighbors.front().label),
                       charge, number_of(e.confidence, "charge"), param_number(e.params, "tendq"),
                       number_of(e.uncertainty, "tendq"), e.novelty, valence, e.energy_shift_ev, e.latency.service,
                       e.in_library});
    if (recent_.size() > kRecentRows) recent_.pop_front();
    if (e.embedding.size() >= 2) {
      points_.push_back({index, e.embedding[0], e.embedding[1], charge, valence});
      if (points_.size() > kMaxPoints) points_.pop_front();
    }
    latency_.record(e.latency.service);
    if (latest && !input_.empty()) match_spectrum(e, recent_.back());
  }

  // Under m_: the estimate's spectrum, if it came on the input, with its best library match.
  void match_spectrum(const protocol::EstimateMessage& e, const Row& row) {
    const auto it = std::find_if(spectra_.rbegin(), spectra_.rend(), [&](const auto& p) { return p.first == row.id; });
    if (it == spectra_.rend()) return;
    protocol::SpectrumMessage m;
    try {
      m = protocol::decode_spectrum(it->second.data(), it->second.size(), protocol::DecodeLimits{});
    } catch (const protocol::ProtocolError&) {
      return;
    }
    if (m.stack) return;
    if (m.intensity.empty()) m.intensity.assign(m.intensity_f4.begin(), m.intensity_f4.end());
    std::string s = "{\"id\":" + str(row.id) + ",\"charge\":" + num(param_number(e.params, "charge")) +
                    ",\"tendq\":" + num(param_number(e.params, "tendq")) + ",\"shift\":" + num(e.energy_shift_ev) +
                    ",\"energy\":[";
    for (std::size_t i = 0; i < m.energy.size(); ++i) s += (i ? "," : "") + num(m.energy[i]);
    s += "],\"intensity\":[";
    for (std::size_t i = 0; i < m.intensity.size(); ++i) s += (i ? "," : "") + num(m.intensity[i]);
    s += "]";
    if (!row.match.empty()) {
      s += ",\"match\":" + str(row.match) + ",\"match_shift\":" + num(e.neighbors.front().shift_ev);
      if (library_) {
        const auto li = std::find(library_->labels.begin(), library_->labels.end(), row.match);
        if (li != library_->labels.end()) {
          const Spectrum& ls = library_->spectra[static_cast<std::size_t>(li - library_->labels.begin())];
          s += ",\"match_energy\":[";
          for (Eigen::Index i = 0; i < ls.energy_ev.size(); ++i) s += (i ? "," : "") + num(ls.energy_ev[i]);
          s += "],\"match_intensity\":[";
          for (Eigen::Index i = 0; i < ls.intensity.size(); ++i) s += (i ? "," : "") + num(ls.intensity[i]);
          s += "]";
        }
      }
    }
    latest_spectrum_json_ = s + "}";
    ++spectrum_version_;
  }

  void on_map(const protocol::EstimateMapMessage& m) {
    std::lock_guard lock(m_);
    ++maps_;
    const std::uint64_t index = ++next_index_;
    stacks_.push_back({index, stack_json(m, index)});
    if (stacks_.size() > kKeptStacks) stacks_.pop_front();
    latency_.record(m.latency.service);
    count_second(Clock::now());
    changed();
  }

  void on_error(const protocol::ErrorMessage& e) {
    const std::string code(protocol::to_string(e.code));
    std::lock_guard lock(m_);
    ++errors_;
    ++errors_by_code_[code];
    recent_errors_.emplace_back(++next_index_, "{\"id\":" + str(e.id.value_or("")) + ",\"code\":" + str(code) +
                                                   ",\"field\":" + str(e.field) + ",\"message\":" + str(e.message) + "}");
    if (recent_errors_.size() > 20) recent_errors_.pop_front();
    changed();
  }

  void subscribe_output() {
    zmq::socket_t sub(context_, zmq::socket_type::sub);
    sub.set(zmq::sockopt::rcvhwm, 0);
    sub.set(zmq::sockopt::subscribe, "");
    curve_.apply(sub, false);
    sub.connect(output_);
    zmq::message_t topic, body;
    while (!stop_) {
      if (!receive_frames(sub, std::chrono::milliseconds(100), topic, body)) continue;
      const auto* data = static_cast<const std::uint8_t*>(body.data());
      const std::string_view t = topic.to_string_view();
      try {
        if (t == protocol::kTopicEstimate) {
          on_estimate_bytes(data, body.size());
        } else if (t == protocol::kTopicEstimateMap) {
          on_map(protocol::decode_estimate_map(data, body.size()));
        } else if (t == protocol::kTopicError) {
          on_error(protocol::decode_error_message(data, body.size()));
        } else if (t == protocol::kTopicMetrics) {
          const auto handle = msgpack::unpack(static_cast<const char*>(body.data()), body.size());
          std::lock_guard lock(m_);
          metrics_json_ = to_json(handle.get());
          changed();
        }
      } catch (const std::exception& e) {
        std::cerr << "xasmap dashboard: a result could not be decoded: " << e.what() << "\n";
      }
    }
  }

  void subscribe_input() {
    zmq::socket_t sub(context_, zmq::socket_type::sub);
    sub.set(zmq::sockopt::rcvhwm, 10000);
    sub.set(zmq::sockopt::subscribe, "");
    sub.connect(input_);
    zmq::message_t topic, body;
    while (!stop_) {
      if (!receive_frames(sub, std::chrono::milliseconds(100), topic, body)) continue;
      const auto* data = static_cast<const std::uint8_t*>(body.data());
      const auto id = protocol::peek_id(data, body.size());
      if (!id || body.size() > (8u << 20)) continue;  // stacks are not drawn as spectra
      std::lock_guard lock(m_);
      spectra_.emplace_back(*id, std::vector<std::uint8_t>(data, data + body.size()));
      if (spectra_.size() > kKeptSpectra) spectra_.pop_front();
    }
  }

  // The daemon's status every second, and its library map whenever the model generation changes.
  void poll_control() {
    std::uint64_t generation = 0;
    while (!stop_) {
      const auto status = control_request(context_, control_, "status", std::chrono::milliseconds(2000), curve_);
      std::uint64_t now_generation = 0;
      {
        std::lock_guard lock(m_);
        connected_ = status.has_value();
        if (status) {
          status_json_ = to_json(status->get());
          if (const auto* g = find_key(status->get(), "model_generation"); g && g->type == msgpack::type::POSITIVE_INTEGER) {
            now_generation = g->via.u64;
          }
        }
        changed();
      }
      if (status && now_generation != generation) {
        if (const auto reply = control_request_frame(context_, control_, "library", std::chrono::milliseconds(10000), curve_)) {
          try {
            const protocol::LibraryReply lib = protocol::decode_library_reply(reply->data(), reply->size());
            std::string s = "{\"method\":" + str(lib.method) + ",\"spectra\":[";
            for (std::size_t i = 0; i < lib.spectra.size(); ++i) {
              const auto& sp = lib.spectra[i];
              s += std::string(i ? "," : "") + "[" + (sp.map.size() > 0 ? num(sp.map[0]) : "null") + "," +
                   (sp.map.size() > 1 ? num(sp.map[1]) : "null") + "," + num(param_number(sp.params, "charge")) + "," +
                   num(param_number(sp.params, "tendq")) + "," + str(sp.label) + "]";
            }
            std::lock_guard lock(m_);
            library_map_json_ = s + "]}";
            ++library_generation_;
            generation = now_generation;
            changed();
          } catch (const std::exception& e) {
            std::cerr << "xasmap dashboard: the daemon's library reply could not be read: " << e.what() << "\n";
          }
        }
      }
      for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  const std::string output_, control_, input_;
  const ClientCurve curve_;
  const std::optional<Library> library_;
  zmq::context_t context_{1};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  const Clock::time_point started_ = Clock::now();

  std::mutex m_;
  std::condition_variable cv_;
  std::uint64_t version_ = 1, next_index_ = 0;
  std::uint64_t estimates_ = 0, maps_ = 0, errors_ = 0;
  std::map<std::string, std::uint64_t> errors_by_code_;
  std::deque<std::pair<std::uint64_t, std::vector<std::uint8_t>>> raw_;  // undecoded estimates
  std::uint64_t digested_ = 0;
  std::deque<Row> recent_;
  std::deque<Point> points_;
  std::deque<StackEntry> stacks_;
  std::deque<std::pair<std::uint64_t, std::string>> recent_errors_;
  std::deque<std::uint64_t> rate_;
  long long rate_second_ = 0;
  LatencyHistogram latency_;
  bool connected_ = false;
  std::string status_json_, metrics_json_, library_map_json_, latest_spectrum_json_;
  std::uint64_t library_generation_ = 0, spectrum_version_ = 0;
  std::deque<std::pair<std::string, std::vector<std::uint8_t>>> spectra_;
};

}  // namespace

int run_dashboard(const CliArgs& args) {
  const config::Config cfg = config_from_args(args);
  const std::string output = args.value("output").value_or(cfg.output.endpoint);
  const std::string control = args.value("control").value_or(cfg.control.endpoint);
  const std::string listen = args.value("listen").value_or("127.0.0.1:8765");
  std::string expected;
  const auto at = config::parse_host_port(listen, &expected);
  if (!at) throw UsageError("--listen '" + listen + "': expected " + expected);
  std::optional<Library> lib;
  if (const auto dir = args.value("library")) lib = load_library(*dir);
  const double seconds = args.number("seconds", 0.0);
  if (seconds < 0) throw UsageError("--seconds must be >= 0");

  const long long niceness = args.integer("nice", 10);
  if (niceness < 0 || niceness > 19) throw UsageError("--nice must be within 0-19");
  errno = 0;
  if (::nice(static_cast<int>(niceness)) == -1 && errno != 0) {
    std::cerr << "xasmap dashboard: could not lower its priority: " << std::strerror(errno) << "\n";
  }
  Dashboard dash(output, control, args.value("input").value_or(""), client_curve(args), std::move(lib));
  httplib::Server server;
  // Each open tab holds one thread for its event stream: 64 threads serve 60 tabs and leave room
  // for the page's other requests.
  server.new_task_queue = [] { return new httplib::ThreadPool(64); };
  server.set_keep_alive_timeout(5);
  const std::string page = kDashboardPage;
  server.Get("/", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(page, "text/html; charset=utf-8");
  });
  server.Get("/library", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(dash.library_json(), "application/json");
  });
  server.Get("/spectrum", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(dash.spectrum_json(), "application/json");
  });
  server.Get("/state", [&](const httplib::Request&, httplib::Response& res) {
    Dashboard::Cursor c;
    res.set_content(dash.event(c), "application/json");
  });
  server.Get(R"(/stack/(\d+))", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string json = dash.stack(std::stoull(req.matches[1]));
    if (json.empty()) {
      res.status = 404;
      res.set_content("{\"error\":\"no such stack (only the last 4 are kept)\"}", "application/json");
    } else {
      res.set_content(json, "application/json");
    }
  });
  server.Get("/events", [&](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    auto cursor = std::make_shared<Dashboard::Cursor>();
    res.set_chunked_content_provider("text/event-stream", [&dash, cursor](std::size_t, httplib::DataSink& sink) {
      if (dash.stopping()) return false;
      const auto t0 = Clock::now();
      std::string json = dash.event(*cursor);
      if (json.empty()) {
        dash.wait_change(cursor->version, std::chrono::milliseconds(15000));
        json = dash.event(*cursor);
      }
      // An event, or a comment that keeps the connection alive (and finds a closed tab).
      const std::string message = json.empty() ? std::string(": idle\n\n") : "data: " + json + "\n\n";
      if (!sink.write(message.data(), message.size())) return false;
      std::this_thread::sleep_until(t0 + kEventPeriod);
      return true;
    });
  });
  const int port = at->port == 0 ? server.bind_to_any_port(at->host) : (server.bind_to_port(at->host, at->port) ? at->port : -1);
  if (port <= 0) throw Error("cannot listen on " + listen + " (the port is taken, or the address is not this machine's)");
  if (!at->loopback()) {
    std::cerr << "xasmap dashboard: warning: " << listen
              << " is not a loopback address; the page has no authentication and shows every estimate\n";
  }
  dash.start();
  std::thread http([&] { server.listen_after_bind(); });
  const std::string host = at->host.find(':') != std::string::npos ? "[" + at->host + "]" : at->host;
  std::cout << "xasmap dashboard: serving http://" << host << ":" << port << "/ (daemon output " << output
            << ", control " << control << ")" << std::endl;
  install_interrupt_handler();
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (!interrupted() && (seconds == 0 || Clock::now() < deadline)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  dash.stop();
  server.stop();
  http.join();
  return 0;
}

}  // namespace xasmap::service
