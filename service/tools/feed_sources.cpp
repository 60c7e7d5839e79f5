#include "feed_sources.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cli_args.hpp"
#include "xasmap/core/error.hpp"

namespace xasmap::service {

namespace {

double interp(const Eigen::VectorXd& x, const Eigen::VectorXd& y, double at) {
  if (at <= x[0]) return y[0];
  const Eigen::Index n = x.size();
  if (at >= x[n - 1]) return y[n - 1];
  const auto it = std::upper_bound(x.data(), x.data() + n, at);
  const auto i = static_cast<Eigen::Index>(it - x.data());
  const double t = (at - x[i - 1]) / (x[i] - x[i - 1]);
  return y[i - 1] + t * (y[i] - y[i - 1]);
}

}  // namespace

StackSize parse_stack_size(const std::string& text) {
  const auto dims = split(text, 'x');
  StackSize s;
  const auto positive = [](const std::string& d, int& v) { return (v = std::atoi(d.c_str())) > 0; };
  if ((dims.size() != 2 && dims.size() != 3) || !positive(dims[0], s.rows) || !positive(dims[1], s.cols) ||
      (dims.size() == 3 && !positive(dims[2], s.energies))) {
    throw UsageError("--stack must look like 64x64 (rows x columns) or 256x256x200 (x energies), not '" + text + "'");
  }
  return s;
}

bool coverage_is_full(const CliArgs& args) {
  const std::string c = args.value("coverage").value_or("partial");
  if (c != "partial" && c != "full") throw UsageError("--coverage must be partial or full, not '" + c + "'");
  return c == "full";
}

std::vector<double> to_std(const Eigen::VectorXd& v) { return {v.data(), v.data() + v.size()}; }

Source measured_like(const Spectrum& s, const Perturbation& p, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Source out;
  const double lo = s.energy_ev[0], hi = s.energy_ev[s.energy_ev.size() - 1];
  if (p.clean) {
    out.energy = to_std(s.energy_ev);
    out.intensity = to_std(s.intensity);
    return out;
  }
  double step = 0.05 + 0.15 * u(rng);
  double start = lo + 0.5 + 1.5 * u(rng), stop = hi - 0.5 - 2.5 * u(rng);
  if (p.full_range) {  // both ends exactly, so the spectrum covers every grid point
    start = lo;
    stop = hi;
    step = (hi - lo) / std::max(1.0, std::round((hi - lo) / step));
  }
  out.offset_ev = p.max_offset_ev * (2 * u(rng) - 1);
  const double peak = s.intensity.maxCoeff();
  const double a = 0.3 * u(rng), b = 0.02 * (u(rng) - 0.5);
  std::normal_distribution<double> noise(0.0, p.snr > 0 ? peak / p.snr : 0.0);
  const auto points = static_cast<int>(std::floor((stop - start) / step + 1e-9)) + 1;
  for (int i = 0; i < points; ++i) {
    const double e = i + 1 == points && p.full_range ? stop : start + i * step;
    out.energy.push_back(e);
    double y = interp(s.energy_ev, s.intensity, e - out.offset_ev) + peak * (a + b * (e - start));
    if (p.snr > 0) y += noise(rng);
    out.intensity.push_back(y);
  }
  return out;
}

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

std::vector<std::vector<int>> default_image(int rows, int cols) {
  std::vector<std::vector<int>> img(static_cast<std::size_t>(rows), std::vector<int>(static_cast<std::size_t>(cols), 0));
  const double cr = rows * 0.5, cc = cols * 0.35, radius = std::min(rows, cols) * 0.25;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const bool disc = std::hypot(r + 0.5 - cr, c + 0.5 - cc) < radius;
      const bool band = c >= static_cast<int>(cols * 0.75) && c < static_cast<int>(cols * 0.9);
      const int first = static_cast<int>(cols * 0.1), last = static_cast<int>(cols * 0.65);
      const bool strip = r >= static_cast<int>(rows * 0.8) && r < static_cast<int>(rows * 0.92) && c >= first && c < last;
      int& grey = img[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)];
      grey = (disc || band) ? 255 : 0;
      if (strip) grey = static_cast<int>(std::lround(255.0 * (c - first) / std::max(1, last - 1 - first)));
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
  const double lo = first.energy_ev[0] + (p.full_range ? 0.0 : 1.0);
  const double hi = first.energy_ev[first.energy_ev.size() - 1] - (p.full_range ? 0.0 : 2.0);
  Source out;
  if (p.stack_energies > 1) {
    for (int i = 0; i < p.stack_energies; ++i) out.energy.push_back(lo + (hi - lo) * i / (p.stack_energies - 1));
  } else {
    for (double e = lo; e <= hi + 1e-9; e += 0.1) out.energy.push_back(e);
  }
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
      const double t = std::clamp(grey, 0, 255) / 255.0 * static_cast<double>(phases.size() - 1);
      const auto phase = std::min(static_cast<std::size_t>(t), phases.size() - 1);
      const std::size_t next = std::min(phase + 1, phases.size() - 1);
      const double f = t - static_cast<double>(phase);
      for (std::size_t i = 0; i < n; ++i) {
        out.intensity.push_back((1.0 - f) * curves[phase][i] + f * curves[next][i] + noise(rng));
      }
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

}  // namespace xasmap::service
