// xasmap feed: an acquisition emulator. Publishes protocol v1 `spectrum` messages (single spectra
// or STXM stacks) at a given rate, stamped with their send time so that xasmapd can report
// end-to-end latency.

#include <msgpack.hpp>
#include <zmq.hpp>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include "client.hpp"
#include "commands.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/spectrum.hpp"
#include "xasmap/protocol/messages.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kFeedOptions = {
    {"endpoint", true, "EP", "where to publish (default: input.endpoint of the config)"},
    {"config", true, "FILE", "configuration whose input endpoint, pattern and topic to use (default config)"},
    {"connect", false, "", "connect to the endpoint instead of binding it (binding is the default)"},
    {"pattern", true, "pub|push", "socket pattern (default: pub, or push when the config's input is pull)"},
    {"topic", true, "TOPIC", "frame-0 topic (default: input.topic of the config)"},
    {"library", true, "DIR", "send noisy copies of the spectra of a library folder (manifest.csv)"},
    {"stack", true, "RxC", "send one synthetic STXM stack of R x C pixels built from --library"},
    {"stack-image", true, "PGM", "the stack's phase map: a PGM image whose grey levels pick --phases"},
    {"phases", true, "LABELS", "library labels of the stack's phases, dark to bright (default Mn2_tendq0.9,Mn4_tendq2)"},
    {"count", true, "N", "messages to send (default: 100 from --library, each file once, 1 stack)"},
    {"rate", true, "HZ", "messages per second; 0 = as fast as possible (default 100)"},
    {"seconds", true, "S", "stop after S seconds even if --count is not reached"},
    {"snr", true, "X", "noise: L3 maximum over the noise's standard deviation; 0 = none (default 30)"},
    {"offset-ev", true, "EV", "largest random energy calibration offset, +- (default 0.3)"},
    {"clean", false, "", "library spectra as they are: no noise, offset, random grid or background"},
    {"raw", true, "f4|f8", "send energy and intensity as bin of little-endian floats"},
    {"id-prefix", true, "TEXT", "prefix of every message id"},
    {"seed", true, "N", "random seed (default 1)"},
    {"wait-subscriber", true, "S", "pub + bind: wait up to S s for a subscriber before sending (default 10)"},
};

namespace {

struct Source {
  std::string id;
  std::vector<double> energy, intensity;
  std::vector<std::int64_t> shape;  // stacks only
  std::string meta_label;           // library label, or file name
  double offset_ev = 0;
};

std::vector<double> to_std(const Eigen::VectorXd& v) { return {v.data(), v.data() + v.size()}; }

double interp(const Eigen::VectorXd& x, const Eigen::VectorXd& y, double at) {
  if (at <= x[0]) return y[0];
  const Eigen::Index n = x.size();
  if (at >= x[n - 1]) return y[n - 1];
  const auto it = std::upper_bound(x.data(), x.data() + n, at);
  const auto i = static_cast<Eigen::Index>(it - x.data());
  const double t = (at - x[i - 1]) / (x[i] - x[i - 1]);
  return y[i - 1] + t * (y[i] - y[i - 1]);
}

// What a beamline measures of a library spectrum: a random grid, a calibration offset, a linear
// background and Gaussian noise at the given SNR (relative to the L3 maximum).
struct Perturbation {
  bool clean = false;
  double snr = 30, max_offset_ev = 0.3;
};

Source measured_like(const Spectrum& s, const Perturbation& p, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Source out;
  const double lo = s.energy_ev[0], hi = s.energy_ev[s.energy_ev.size() - 1];
  if (p.clean) {
    out.energy = to_std(s.energy_ev);
    out.intensity = to_std(s.intensity);
    return out;
  }
  const double step = 0.05 + 0.15 * u(rng);
  const double start = lo + 0.5 + 1.5 * u(rng), stop = hi - 0.5 - 2.5 * u(rng);
  out.offset_ev = p.max_offset_ev * (2 * u(rng) - 1);
  const double peak = s.intensity.maxCoeff();
  const double a = 0.3 * u(rng), b = 0.02 * (u(rng) - 0.5);
  std::normal_distribution<double> noise(0.0, p.snr > 0 ? peak / p.snr : 0.0);
  for (double e = start; e <= stop; e += step) {
    out.energy.push_back(e);
    double y = interp(s.energy_ev, s.intensity, e - out.offset_ev) + peak * (a + b * (e - start));
    if (p.snr > 0) y += noise(rng);
    out.intensity.push_back(y);
  }
  return out;
}

// A PGM image (P2 or P5, 8-bit) as rows x cols grey levels.
std::vector<std::vector<int>> read_pgm(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot open " + file.string());
  std::string magic;
  in >> magic;
  const auto next_int = [&]() {
    int v = 0;
    while (in >> std::ws && in.peek() == '#') {
      std::string comment;
      std::getline(in, comment);
    }
    if (!(in >> v)) throw Error(file.string() + ": not a valid PGM header");
    return v;
  };
  if (magic != "P2" && magic != "P5") throw Error(file.string() + ": not a PGM image (P2 or P5)");
  const int cols = next_int(), rows = next_int(), maxval = next_int();
  if (cols <= 0 || rows <= 0 || maxval <= 0 || maxval > 255 || cols * rows > (1 << 22)) {
    throw Error(file.string() + ": unsupported PGM size or depth (8-bit, at most 4M pixels)");
  }
  std::vector<std::vector<int>> img(static_cast<std::size_t>(rows), std::vector<int>(static_cast<std::size_t>(cols)));
  if (magic == "P5") in.get();
  for (auto& row : img) {
    for (int& v : row) {
      if (magic == "P2") {
        v = next_int();
      } else {
        const int c = in.get();
        if (c == EOF) throw Error(file.string() + ": truncated PGM data");
        v = c;
      }
      v = v * 255 / maxval;
    }
  }
  return img;
}

// The built-in phase map: phase 0 everywhere, phase 1 in a disc left of centre and a band on the
// right, so both shapes and both edges show in the parameter map.
std::vector<std::vector<int>> default_image(int rows, int cols) {
  std::vector<std::vector<int>> img(static_cast<std::size_t>(rows), std::vector<int>(static_cast<std::size_t>(cols), 0));
  const double cr = rows * 0.5, cc = cols * 0.35, radius = std::min(rows, cols) * 0.25;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const bool disc = std::hypot(r + 0.5 - cr, c + 0.5 - cc) < radius;
      const bool band = c >= static_cast<int>(cols * 0.75) && c < static_cast<int>(cols * 0.9);
      img[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)] = (disc || band) ? 255 : 0;
    }
  }
  return img;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, sep);) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

Source make_stack(const Library& lib, const std::vector<std::vector<int>>& image,
                  const std::vector<std::string>& phases, const Perturbation& p, std::mt19937_64& rng) {
  std::vector<const Spectrum*> spectra;
  for (const auto& label : phases) {
    const auto it = std::find(lib.labels.begin(), lib.labels.end(), label);
    if (it == lib.labels.end()) throw UsageError("--phases: the library has no spectrum labelled '" + label + "'");
    spectra.push_back(&lib.spectra[static_cast<std::size_t>(it - lib.labels.begin())]);
  }
  const auto rows = static_cast<std::int64_t>(image.size());
  const auto cols = static_cast<std::int64_t>(image.front().size());
  // One energy axis for the whole stack, inside the library's range, and one calibration offset.
  const Spectrum& first = *spectra.front();
  const double lo = first.energy_ev[0] + 1.0, hi = first.energy_ev[first.energy_ev.size() - 1] - 2.0;
  Source out;
  for (double e = lo; e <= hi + 1e-9; e += 0.1) out.energy.push_back(e);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  out.offset_ev = p.clean ? 0.0 : p.max_offset_ev * u(rng);
  std::vector<std::vector<double>> curves;
  double peak = 0;
  for (const Spectrum* s : spectra) {
    std::vector<double> y;
    for (double e : out.energy) y.push_back(interp(s->energy_ev, s->intensity, e - out.offset_ev));
    peak = std::max(peak, *std::max_element(y.begin(), y.end()));
    curves.push_back(std::move(y));
  }
  std::normal_distribution<double> noise(0.0, (!p.clean && p.snr > 0) ? peak / p.snr : 0.0);
  const std::size_t n = out.energy.size();
  out.intensity.reserve(static_cast<std::size_t>(rows * cols) * n);
  for (const auto& row : image) {
    for (int grey : row) {
      const auto phase = std::min<std::size_t>(static_cast<std::size_t>(grey) * phases.size() / 256, phases.size() - 1);
      for (std::size_t i = 0; i < n; ++i) out.intensity.push_back(curves[phase][i] + noise(rng));
    }
  }
  out.shape = {rows, cols, static_cast<std::int64_t>(n)};
  out.meta_label = "stack " + std::to_string(rows) + "x" + std::to_string(cols) + " of " +
                   [&] {
                     std::string s;
                     for (const auto& ph : phases) s += (s.empty() ? "" : "+") + ph;
                     return s;
                   }();
  return out;
}

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

}  // namespace

int run_feed(const CliArgs& args) {
  const config::Config cfg = config_from_args(args);
  const std::string endpoint = args.value("endpoint").value_or(cfg.input.endpoint);
  const bool bind = !args.has("connect");
  const std::string pattern =
      args.value("pattern").value_or(cfg.input.pattern == config::InputPattern::kPull ? "push" : "pub");
  if (pattern != "pub" && pattern != "push") throw UsageError("--pattern must be pub or push");
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
  if (!(perturb.snr >= 0) || !(perturb.max_offset_ev >= 0)) throw UsageError("--snr and --offset-ev must be >= 0");
  const std::string prefix = args.value("id-prefix").value_or("");
  std::mt19937_64 rng(static_cast<std::uint64_t>(args.integer("seed", 1)));

  // The messages, built before the clock starts so that the rate is the sending rate.
  std::vector<Source> sources;
  std::string kind;
  if (args.value("stack")) {
    if (!args.value("library")) throw UsageError("--stack needs --library DIR for the phases' spectra");
    const auto dims = split(*args.value("stack"), 'x');
    int rows = 0, cols = 0;
    if (dims.size() != 2 || (rows = std::atoi(dims[0].c_str())) <= 0 || (cols = std::atoi(dims[1].c_str())) <= 0) {
      throw UsageError("--stack must look like 64x64");
    }
    const Library lib = load_library(*args.value("library"));
    auto image = args.value("stack-image") ? read_pgm(*args.value("stack-image")) : default_image(rows, cols);
    if (static_cast<int>(image.size()) != rows || static_cast<int>(image.front().size()) != cols) {
      throw UsageError("--stack-image is " + std::to_string(image.front().size()) + "x" +
                       std::to_string(image.size()) + " (cols x rows), not the --stack size");
    }
    const auto phases = split(args.value("phases").value_or("Mn2_tendq0.9,Mn4_tendq2"), ',');
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
    for (const auto& f : args.positionals()) {
      const Spectrum sp = read_spectrum(f);
      Source s;
      s.id = prefix + std::filesystem::path(f).stem().string();
      s.energy = to_std(sp.energy_ev);
      s.intensity = to_std(sp.intensity);
      s.meta_label = std::filesystem::path(f).filename().string();
      files.push_back(std::move(s));
    }
    const auto count = static_cast<std::size_t>(args.integer("count", static_cast<long long>(files.size())));
    for (std::size_t i = 0; i < count; ++i) {
      Source s = files[i % files.size()];
      if (i >= files.size()) s.id += "#" + std::to_string(i / files.size() + 1);
      sources.push_back(std::move(s));
    }
    kind = "file";
  }

  zmq::context_t context(1);
  zmq::socket_t sock(context, pattern == "push" ? zmq::socket_type::push
                              : bind             ? zmq::socket_type::xpub
                                                 : zmq::socket_type::pub);
  sock.set(zmq::sockopt::sndhwm, 0);
  sock.set(zmq::sockopt::linger, 5000);
  if (bind) {
    sock.bind(endpoint);
  } else {
    sock.connect(endpoint);
  }
  install_interrupt_handler();
  if (pattern == "pub" && bind) {
    // A PUB drops what it sends before a subscriber's subscription arrives; the XPUB sees the
    // subscription, so sending starts only once somebody listens.
    const double wait = args.number("wait-subscriber", 10.0);
    sock.set(zmq::sockopt::rcvtimeo, 100);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait);
    bool subscribed = false;
    while (!subscribed && !interrupted() && std::chrono::steady_clock::now() < deadline) {
      zmq::message_t sub;
      try {
        if (sock.recv(sub) && sub.size() > 0 && static_cast<const char*>(sub.data())[0] == 1) subscribed = true;
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;  // interrupted: the loop's condition ends it
      }
    }
    if (!subscribed) {
      std::cerr << "xasmap feed: no subscriber on " << endpoint << " within " << wait << " s\n";
      return 69;
    }
  } else if (!bind) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the connection settle
  }

  const auto t0 = std::chrono::steady_clock::now();
  std::size_t sent = 0;
  for (const Source& s : sources) {
    if (interrupted()) break;
    if (rate > 0) std::this_thread::sleep_until(t0 + std::chrono::duration<double>(static_cast<double>(sent) / rate));
    if (seconds > 0 && std::chrono::steady_clock::now() - t0 > std::chrono::duration<double>(seconds)) break;
    protocol::SpectrumMessage m;
    m.id = s.id;
    m.energy = s.energy;
    m.intensity = s.intensity;
    m.time = wall_seconds();
    m.meta = meta_bytes(s, kind);
    m.stack = !s.shape.empty();
    m.shape = s.shape;
    const auto body = protocol::encode(m, raw);
    try {
      sock.send(zmq::buffer(topic), zmq::send_flags::sndmore);
      sock.send(zmq::buffer(body), zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) break;  // a PUSH waiting for a peer, interrupted
      throw;
    }
    ++sent;
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "xasmap feed: sent " << sent << " " << kind << (sent == 1 ? " message" : " messages") << " to "
            << endpoint << " in " << elapsed << " s (" << (elapsed > 0 ? sent / elapsed : 0.0) << " /s)\n";
  return interrupted() ? 130 : 0;
}

}  // namespace xasmap::service
