// xasmap map: the seed poster's figures as SVG (and PNG when rsvg-convert is installed).
//   map.svg           Fig. 1: the library's 2-D embedding, coloured by a categorical parameter
//                     (charge) and labelled with a continuous one (10Dq x 10), with measured
//                     spectra overlaid.
//   compare_ID.svg    Fig. 2: a measured spectrum over its best-matching library spectrum.
//   stack_ID.svg      per-pixel parameter maps of an STXM stack (live mode),
//   stack_ID.h5       and the same maps as NeXus (docs/files.md).
// Offline (--model or --config) it estimates the given spectrum files itself; live (--control and
// --live) it takes the map from a running daemon and collects its results.

#include <msgpack.hpp>
#include <zmq.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <tuple>
#include <set>

#include "client.hpp"
#include "commands.hpp"
#include "latency_histogram.hpp"
#include "model_builder.hpp"
#include "nexus.hpp"
#include "svg.hpp"
#include "xasmap/core/error.hpp"
#include "xasmap/core/library.hpp"
#include "xasmap/core/model.hpp"
#include "xasmap/core/spectrum.hpp"
#include "xasmap/core/version.hpp"
#include "xasmap/protocol/control.hpp"
#include "xasmap/protocol/messages.hpp"
#include "xasmap/protocol/results.hpp"

namespace xasmap::service {

const std::vector<OptionSpec> kMapOptions = with_client_curve_options({
    {"model", true, "FILE", "offline: a model written by 'xasmap embed'"},
    {"config", true, "FILE", "offline: fit the model this config describes (also the default endpoints)"},
    {"control", true, "EP", "live: take the library map from the daemon at this control endpoint"},
    {"output", true, "EP", "live: the daemon's output endpoint (default: output.endpoint of the config)"},
    {"live", true, "SECONDS", "live: collect estimates and stack maps for SECONDS (Ctrl-C ends early)"},
    {"library", true, "DIR", "library spectra (manifest.csv) for the comparison figures"},
    {"out-dir", true, "DIR", "where the figures go (default out)"},
    {"summary", false, "", "print a summary of the measured spectra, latency and errors"},
    {"title", true, "TEXT", "title of the map figure"},
});

namespace {

// A point to overlay on the map: a measured spectrum's estimate.
struct Placed {
  std::string id;
  std::vector<double> map;
  protocol::ParamMap params;
  protocol::NumberMap uncertainty, confidence;
  std::string best_label;  // nearest library spectrum
  double shift_ev = 0;
  double novelty = 0;
  bool in_library = true;
  bool measured = false;  // from a file (labelled on the map), not a noisy library copy
  std::optional<double> end_to_end_us;
  std::optional<protocol::MixtureEntry> mixture;  // estimation.mixture: auto
};

// One library spectrum: its label, parameters and map coordinates.
using LibraryPoint = protocol::LibraryReply::Spectrum;

struct LibraryView {
  std::vector<LibraryPoint> points;
  std::vector<ParameterInfo> parameters;
  std::string method;
};

// How a parameter is named on a figure: the physics' name with its unit ("10Dq (eV)" for tendq).
std::string display_name(const std::string& name) {
  static const std::map<std::string, std::string> kNames = {
      {"tendq", "10Dq (eV)"},          {"charge", "charge"},
      {"slater_scale", "Slater scale"}, {"temperature_k", "temperature (K)"},
      {"gauss_fwhm_ev", "Gaussian FWHM (eV)"}, {"lorentz_scale", "lifetime width scale"},
      {"ds", "Ds (eV)"},               {"dt", "Dt (eV)"}};
  const auto it = kNames.find(name);
  return it == kNames.end() ? name : it->second;
}

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string fixed(double v, int decimals) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

const protocol::ParamValue* param(const protocol::ParamMap& m, const std::string& name) {
  for (const auto& [n, v] : m) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::string value_text(const protocol::ParamValue& v) {
  if (!v.text.empty()) return v.text;
  if (v.integer) return std::to_string(std::llround(v.number));
  return fmt("%.2f", v.number);
}

double number_of(const protocol::NumberMap& m, const std::string& name) {
  for (const auto& [n, v] : m) {
    if (n == name) return v;
  }
  return std::nan("");
}

// The categorical parameter that colours the map and the continuous one that labels it.
std::pair<std::string, std::string> roles(const std::vector<ParameterInfo>& params) {
  std::string cat, cont;
  for (const auto& p : params) {
    if (p.categorical && cat.empty()) cat = p.name;
    if (!p.categorical && cont.empty()) cont = p.name;
  }
  return {cat, cont};
}

LibraryView view_of(const Model& model) {
  LibraryView v;
  const Eigen::MatrixXd map = model.library_map();
  v.parameters = model.parameters();
  v.method = to_string(model.options().method);
  for (std::size_t i = 0; i < model.library_size(); ++i) {
    LibraryPoint p;
    p.label = model.labels()[i];
    p.params = protocol::to_param_map(model.parameters(), model.values()[i]);
    for (Eigen::Index d = 0; d < map.cols(); ++d) p.map.push_back(map(static_cast<Eigen::Index>(i), d));
    v.points.push_back(std::move(p));
  }
  return v;
}

LibraryView view_of(protocol::LibraryReply reply) {
  LibraryView v;
  v.points = std::move(reply.spectra);
  v.parameters = std::move(reply.parameters);
  v.method = std::move(reply.method);
  return v;
}

Placed placed_of(const protocol::EstimateMessage& m) {
  Placed p;
  p.id = m.id;
  p.map = m.embedding;
  p.params = m.params;
  p.uncertainty = m.uncertainty;
  p.confidence = m.confidence;
  if (!m.neighbors.empty()) {
    p.best_label = m.neighbors.front().label;
    p.shift_ev = m.neighbors.front().shift_ev;
  }
  p.novelty = m.novelty;
  p.in_library = m.in_library;
  p.end_to_end_us = m.latency.end_to_end;
  p.mixture = m.mixture;
  return p;
}

// "charge 2 (100%), tendq 0.85 +- 0.11, temperature_k 160 +- 140": a value with an interval is
// written to the interval's two significant digits (at least none, at most two decimals), whether
// the wire carried it as an integer or not.
std::string estimate_text(const Placed& p) {
  std::string s;
  for (const auto& [name, v] : p.params) {
    const double c = number_of(p.confidence, name);
    const double u = number_of(p.uncertainty, name);
    s += (s.empty() ? "" : ", ") + name + " ";
    if (std::isfinite(u) && v.text.empty()) {
      const int decimals = u > 0 ? std::clamp(1 - static_cast<int>(std::floor(std::log10(u))), 0, 2) : 2;
      s += fixed(v.number, decimals) + " \u00b1 " + fixed(u, decimals);
    } else {
      s += value_text(v);
    }
    if (std::isfinite(c)) s += " (" + fmt("%.0f", 100 * c) + "%)";
  }
  // A spectrum read as two phases: its mean valence and the charges' atom fractions.
  if (p.mixture && !p.mixture->single_phase) {
    s += ", valence " + fixed(p.mixture->mean_valence, 2) + " \u00b1 " + fixed(p.mixture->mean_valence_sd, 2) + " (";
    for (std::size_t i = 0; i < p.mixture->components.size(); ++i) {
      const auto& c = p.mixture->components[i];
      s += (i ? ", " : "") + fmt("%g", c.charge) + "+ " + fmt("%.0f", 100 * c.fraction) + "%";
    }
    s += ")";
  }
  return s;
}

// Fig. 1.
// Each draw_* writes its SVG and, with rsvg-convert at hand, a PNG beside it, whose path it returns
// (empty without one).
std::filesystem::path draw_map(const LibraryView& lib, const std::vector<Placed>& placed, const std::string& title,
              const std::filesystem::path& file) {
  const auto [cat, cont] = roles(lib.parameters);
  Svg svg(980, 760);
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  const auto extend = [&](const std::vector<double>& m) {
    if (m.size() < 2 || !std::isfinite(m[0]) || !std::isfinite(m[1])) return;
    x0 = std::min(x0, m[0]);
    x1 = std::max(x1, m[0]);
    y0 = std::min(y0, m[1]);
    y1 = std::max(y1, m[1]);
  };
  for (const auto& p : lib.points) extend(p.map);
  for (const auto& p : placed) extend(p.map);
  const double padx = 0.08 * (x1 - x0 + 1e-9), pady = 0.08 * (y1 - y0 + 1e-9);
  Axes ax(svg, 90, 70, 660, 600, x0 - padx, x1 + padx, y0 - pady, y1 + pady);
  ax.draw(lib.method == "isomap" ? "Isomap coordinate 1" : "MDS coordinate 1",
          lib.method == "isomap" ? "Isomap coordinate 2" : "MDS coordinate 2");
  svg.text(490, 36, title, 20, "middle", "#000", true);

  // Colours by category value, in order of first appearance sorted by value.
  std::map<std::string, std::size_t> colour_of;
  {
    std::vector<std::pair<double, std::string>> values;
    std::set<std::string> seen;
    for (const auto& p : lib.points) {
      if (const auto* v = cat.empty() ? nullptr : param(p.params, cat); v && seen.insert(value_text(*v)).second) {
        values.emplace_back(v->text.empty() ? v->number : 0.0, value_text(*v));
      }
    }
    std::sort(values.begin(), values.end());
    for (const auto& [num, text] : values) colour_of.emplace(text, colour_of.size());
  }
  const auto colour = [&](const protocol::ParamMap& params) {
    const auto* v = cat.empty() ? nullptr : param(params, cat);
    if (!v) return std::string("#555555");
    const auto it = colour_of.find(value_text(*v));
    return it == colour_of.end() ? std::string("#555555") : category_colour(it->second);
  };
  // Live estimates of noisy library spectra: small and pale, under everything else.
  for (const auto& p : placed) {
    if (p.measured || p.map.size() < 2) continue;
    svg.circle(ax.px(p.map[0]), ax.py(p.map[1]), 2.2, colour(p.params), "none");
  }
  // Label and star boxes; two never come closer than 2 px, so that neighbouring labels ("1" and "0")
  // do not read as one ("10"). tests/service/figure_check.py checks the drawn map for it.
  struct Box {
    double x0, y0, x1, y1;
    bool hits(const Box& o) const {
      constexpr double gap = 2.0;
      return x0 < o.x1 + gap && o.x0 < x1 + gap && y0 < o.y1 + gap && o.y0 < y1 + gap;
    }
  };
  std::vector<Box> taken;
  // The measured spectra's stars are placed first: no label may hide one.
  for (const auto& p : placed) {
    if (!p.measured || p.map.size() < 2) continue;
    const double x = ax.px(p.map[0]), y = ax.py(p.map[1]);
    taken.push_back({x - 11, y - 11, x + 11, y + 11});  // a size-15 star reaches 10.5 px out (Svg::marker)
  }
  // Library points, and one label per (category, labelled value): on a nuisance library, which
  // holds each spectrum at several settings (Slater reduction, temperature, resolution: the other
  // continuous parameters), on the variant nearest the library's median settings, so that the
  // labels follow one strand. A label goes where it overlaps no label placed before it, or is left
  // out.
  std::vector<std::pair<std::string, std::pair<double, double>>> settings;  // name, (median, span)
  for (const auto& info : lib.parameters) {
    if (info.categorical || info.name == cont) continue;
    std::vector<double> v;
    for (const auto& p : lib.points) {
      if (const auto* x = param(p.params, info.name); x && x->text.empty()) v.push_back(x->number);
    }
    if (v.empty()) continue;
    std::sort(v.begin(), v.end());
    settings.push_back({info.name, {v[v.size() / 2], std::max(v.back() - v.front(), 1e-12)}});
  }
  std::map<std::pair<std::string, long long>, std::pair<double, const LibraryPoint*>> label_point;
  for (const auto& p : lib.points) {
    if (p.map.size() < 2) continue;
    svg.circle(ax.px(p.map[0]), ax.py(p.map[1]), lib.points.size() > 200 ? 3.5 : 5, colour(p.params), "#222", 0.6);
    const auto* v = cont.empty() ? nullptr : param(p.params, cont);
    if (v == nullptr) continue;
    double off = 0;
    for (const auto& [name, ms] : settings) {
      if (const auto* x = param(p.params, name)) off += std::abs(x->number - ms.first) / ms.second;
    }
    const auto* c = cat.empty() ? nullptr : param(p.params, cat);
    auto [it, fresh] = label_point.try_emplace({c ? value_text(*c) : "", std::llround(v->number * 10)}, off, &p);
    if (!fresh && off < it->second.first) it->second = {off, &p};
  }
  for (const auto& [key, chosen] : label_point) {
    const double x = ax.px(chosen.second->map[0]), y = ax.py(chosen.second->map[1]);
    const std::string label = std::to_string(key.second);
    const double w = 6.0 * static_cast<double>(label.size()), h = 10;
    for (const auto& [dx, dy] : {std::pair{6.0, -5.0}, std::pair{-6.0 - w, -5.0}, std::pair{6.0, 12.0},
                                 std::pair{-6.0 - w, 12.0}}) {
      const Box b{x + dx, y + dy - h + 1, x + dx + w, y + dy + 2};
      if (std::any_of(taken.begin(), taken.end(), [&](const Box& t) { return t.hits(b); })) continue;
      svg.text(x + dx, y + dy, label, 10, "start", "#333");
      taken.push_back(b);
      break;
    }
  }
  // Measured spectra: stars (gold inside the library, white with a red rim outside it), and labels
  // placed greedily where they overlap no other label or star (with a leader line when they had to
  // move away from their star).
  int inside = 0, outside = 0;
  for (const auto& p : placed) {
    if (!p.measured || p.map.size() < 2) continue;
    const double x = ax.px(p.map[0]), y = ax.py(p.map[1]);
    if (p.in_library) {
      svg.marker("star", x, y, 15, "#ffd700", "#000", 1.2);
      ++inside;
    } else {
      svg.marker("star", x, y, 15, "#ffffff", "#d62728", 1.8);
      ++outside;
    }
  }
  for (const auto& p : placed) {
    if (!p.measured || p.map.size() < 2) continue;
    const double x = ax.px(p.map[0]), y = ax.py(p.map[1]);
    const double w = 7.4 * static_cast<double>(p.id.size()), h = 14;
    // Candidates: right, left, above, below, then further out in steps.
    Box chosen{};
    double tx = 0, ty = 0;
    bool found = false;
    for (int ring = 0; ring < 12 && !found; ++ring) {
      const double d = 13 + 16 * ring;
      for (const auto& [dx, dy] : {std::pair{d, 5.0}, std::pair{-d - w, 5.0}, std::pair{-w / 2, -d},
                                   std::pair{-w / 2, d + h}}) {
        const Box b{x + dx, y + dy - h + 2, x + dx + w, y + dy + 3};
        if (b.x0 < 2 || b.x1 > svg.width() - 2 || b.y0 < 50 || b.y1 > svg.height() - 60) continue;
        if (std::any_of(taken.begin(), taken.end(), [&](const Box& t) { return t.hits(b); })) continue;
        chosen = b;
        tx = x + dx;
        ty = y + dy;
        found = true;
        break;
      }
    }
    if (!found) {
      tx = x + 10;
      ty = y + 5;
      chosen = {tx, ty - h + 2, tx + w, ty + 3};
    }
    if (std::hypot((chosen.x0 + chosen.x1) / 2 - x, (chosen.y0 + chosen.y1) / 2 - y) > 40) {
      const double lx = std::clamp(x, chosen.x0, chosen.x1), ly = std::clamp(y, chosen.y0, chosen.y1);
      svg.line(x, y, lx, ly, "#444", 0.8);
    }
    taken.push_back(chosen);
    svg.text(tx, ty, p.id, 12, "start", "#000", true);
  }
  // Legend.
  double ly = 90;
  svg.text(770, ly, cat.empty() ? "library" : "library, by " + cat, 14, "start", "#000", true);
  for (const auto& [text, i] : colour_of) {
    ly += 24;
    svg.circle(782, ly - 5, 6, category_colour(i), "#222", 0.6);
    svg.text(796, ly, cat + " " + text, 14);
  }
  if (!cont.empty()) {
    ly += 28;
    svg.text(770, ly, "labels: " + display_name(cont) + " \u00d7 10", 13, "start", "#333");
  }
  if (inside > 0) {
    ly += 30;
    svg.marker("star", 782, ly - 5, 15, "#ffd700", "#000", 1.2);
    svg.text(796, ly, "measured spectrum", 14);
  }
  if (outside > 0) {
    ly += 24;
    svg.marker("star", 782, ly - 5, 15, "#ffffff", "#d62728", 1.8);
    svg.text(796, ly, "measured, outside", 14);
    ly += 18;
    svg.text(796, ly, "the library", 14);
  }
  if (std::any_of(placed.begin(), placed.end(), [](const Placed& p) { return !p.measured; })) {
    ly += 24;
    svg.circle(782, ly - 5, 2.5, "#777", "none");
    svg.text(796, ly, "live estimates", 14);
  }
  ly += 30;
  svg.text(770, ly, std::to_string(lib.points.size()) + " library spectra", 13, "start", "#333");
  return svg.save(file);
}

std::pair<std::vector<double>, std::vector<double>> normalised(const Spectrum& s, double shift, double lo, double hi) {
  std::vector<double> x, y;
  double mn = 1e300, mx = -1e300;
  for (Eigen::Index i = 0; i < s.energy_ev.size(); ++i) {
    const double e = s.energy_ev[i] + shift;
    if (e < lo || e > hi) continue;
    x.push_back(e);
    y.push_back(s.intensity[i]);
    mn = std::min(mn, s.intensity[i]);
    mx = std::max(mx, s.intensity[i]);
  }
  for (double& v : y) v = mx > mn ? (v - mn) / (mx - mn) : 0.0;
  return {x, y};
}

// Fig. 2.
std::filesystem::path draw_compare(const Spectrum& measured, const Spectrum& library, const Placed& p, const std::string& file_name,
                  const std::filesystem::path& file) {
  const double lo = measured.energy_ev[0], hi = measured.energy_ev[measured.energy_ev.size() - 1];
  const auto [mx, my] = normalised(measured, 0.0, lo, hi);
  const auto [lx, ly] = normalised(library, p.shift_ev, lo, hi);
  // The estimate under the legend, wrapped between its parameters (a nuisance library reports
  // several), then the novelty.
  std::vector<std::string> estimate_lines{"estimate:"};
  {
    const std::string text = estimate_text(p);
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t end = text.find(", ", start);
      const std::string item = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
      std::string& line = estimate_lines.back();
      if (line.size() + item.size() > 90) {
        estimate_lines.push_back(item);
      } else {
        line += (line == "estimate:" ? " " : ", ") + item;
      }
      start = end == std::string::npos ? text.size() : end + 2;
    }
  }
  const double estimate_y = 608;
  Svg svg(900, estimate_y + 22.0 * static_cast<double>(estimate_lines.size()) + 18);
  Axes ax(svg, 90, 70, 760, 420, lo, hi, -0.05, 1.12);
  ax.draw("Photon energy (eV)", "Normalised intensity");
  svg.text(470, 36, "Measured spectrum and its best-matching library spectrum", 19, "middle", "#000", true);
  std::vector<double> px, py, qx, qy;
  for (std::size_t i = 0; i < mx.size(); ++i) {
    px.push_back(ax.px(mx[i]));
    py.push_back(ax.py(my[i]));
  }
  for (std::size_t i = 0; i < lx.size(); ++i) {
    qx.push_back(ax.px(lx[i]));
    qy.push_back(ax.py(ly[i]));
  }
  svg.polyline(qx, qy, "#d62728", 2.2);
  svg.polyline(px, py, "#000000", 1.6);
  // Legend under the plot.
  double y = 552;
  svg.line(100, y - 5, 130, y - 5, "#000", 2);
  svg.text(138, y, "measured: " + file_name, 14);
  y += 22;
  svg.line(100, y - 5, 130, y - 5, "#d62728", 2.5);
  svg.text(138, y,
           "library: " + p.best_label + (p.shift_ev != 0 ? " (shifted " + fmt("%+.2f", p.shift_ev) + " eV)" : ""), 14);
  y = estimate_y;
  for (const std::string& line : estimate_lines) {
    svg.text(100, y, line, 14, "start", "#000", true);
    y += 22;
  }
  svg.text(100, y, "novelty " + fmt("%.2f", p.novelty) + (p.in_library ? " (in library)" : " (outside the library)"),
           13, "start", "#333");
  return svg.save(file);
}

// Per-pixel parameter maps of a stack.
std::filesystem::path draw_stack(const protocol::EstimateMapMessage& m, const LibraryView& lib, const std::filesystem::path& file) {
  const std::vector<ParameterInfo>& info = lib.parameters;
  std::int64_t pixels = 1;
  for (std::size_t i = 0; i + 1 < m.shape.size(); ++i) pixels *= m.shape[i];
  const std::int64_t cols = m.shape.size() == 3 ? m.shape[1] : static_cast<std::int64_t>(std::ceil(std::sqrt(pixels)));
  const std::int64_t rows = (pixels + cols - 1) / cols;
  const double panel = 340, gap = 120;
  const auto n = static_cast<double>(m.params.size());
  Svg svg(60 + n * (panel + gap), panel + 170);
  svg.text(svg.width() / 2, 34, "Parameter maps of stack " + m.id + " (" + std::to_string(rows) + " \u00d7 " +
                                    std::to_string(cols) + " pixels)", 19, "middle", "#000", true);
  const double cell = panel / static_cast<double>(std::max(rows, cols));
  for (std::size_t k = 0; k < m.params.size(); ++k) {
    const auto& [name, values] = m.params[k];
    const bool categorical = std::any_of(info.begin(), info.end(), [&](const ParameterInfo& p) {
                               return p.name == name && p.categorical;
                             }) ||
                             std::any_of(m.confidence.begin(), m.confidence.end(),
                                         [&](const auto& c) { return c.first == name; });
    const double left = 40 + static_cast<double>(k) * (panel + gap), top = 70;
    svg.text(left + panel / 2, top - 10, display_name(name), 16, "middle", "#000", true);
    std::vector<float> sorted;
    for (float v : values) {
      if (std::isfinite(v)) sorted.push_back(v);
    }
    std::sort(sorted.begin(), sorted.end());
    const double lo = sorted.empty() ? 0.0 : sorted.front(), hi = sorted.empty() ? 1.0 : sorted.back();
    std::vector<float> levels(sorted.begin(), std::unique(sorted.begin(), sorted.end()));
    // Category colours as on the map: by the value's rank among the library's values.
    std::vector<float> library_levels;
    for (const auto& p : lib.points) {
      if (const auto* v = param(p.params, name)) library_levels.push_back(static_cast<float>(v->number));
    }
    std::sort(library_levels.begin(), library_levels.end());
    library_levels.erase(std::unique(library_levels.begin(), library_levels.end()), library_levels.end());
    const auto colour_index = [&](float v) {
      const auto& ref = library_levels.empty() ? levels : library_levels;
      return static_cast<std::size_t>(std::lower_bound(ref.begin(), ref.end(), v) - ref.begin());
    };
    for (std::int64_t i = 0; i < pixels && i < static_cast<std::int64_t>(values.size()); ++i) {
      const float v = values[static_cast<std::size_t>(i)];
      std::string c = "#bbbbbb";
      if (std::isfinite(v)) {
        c = categorical ? category_colour(colour_index(v)) : scale_colour(hi > lo ? (v - lo) / (hi - lo) : 0.5);
      }
      svg.rect(left + static_cast<double>(i % cols) * cell, top + static_cast<double>(i / cols) * cell, cell + 0.3,
               cell + 0.3, c);
    }
    svg.rect(left, top, static_cast<double>(cols) * cell, static_cast<double>(rows) * cell, "none", "#333", 1);
    const double lx = left + panel + 12;
    if (categorical) {
      for (std::size_t j = 0; j < levels.size() && j < 8; ++j) {
        const auto count = std::count(values.begin(), values.end(), levels[j]);
        svg.rect(lx, top + 8 + 24 * static_cast<double>(j), 14, 14, category_colour(colour_index(levels[j])), "#333", 0.6);
        svg.text(lx + 20, top + 20 + 24 * static_cast<double>(j),
                 fmt("%g", levels[j]) + " (" + fmt("%.0f", 100.0 * static_cast<double>(count) / static_cast<double>(pixels)) + "%)",
                 13);
      }
    } else {
      for (int j = 0; j < 100; ++j) {
        svg.rect(lx, top + panel - (j + 1) * panel / 100, 16, panel / 100 + 0.5, scale_colour(j / 99.0));
      }
      svg.rect(lx, top, 16, panel, "none", "#333", 0.8);
      svg.text(lx + 22, top + 10, fmt("%.2f", hi), 13);
      svg.text(lx + 22, top + panel, fmt("%.2f", lo), 13);
    }
  }
  svg.text(40, panel + 140, "grey: pixels that could not be judged (" + std::to_string(m.rejected_pixels) + ")", 13,
           "start", "#333");
  return svg.save(file);
}

std::string safe_name(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return s;
}

}  // namespace

namespace {

// The daemon's effective configuration and its model's checksum (the control command `config`),
// or why there are none.
struct DaemonProvenance {
  std::string config_yaml;
  std::string model_checksum;
};

DaemonProvenance daemon_provenance(zmq::context_t& context, const std::string& control, const ClientCurve& curve) {
  DaemonProvenance p{"(the daemon's 'config' reply had no yaml)",
                     "not reported by the daemon (an older xasmapd: see its start-up log for the model file)"};
  try {
    const auto handle = control_request(context, control, "config", std::chrono::milliseconds(10000), curve);
    if (!handle) return {"(the daemon did not answer 'config')", "(the daemon did not answer 'config')"};
    const auto text = [&](const char* key, std::string& into) {
      if (const msgpack::object* v = find_key(handle->get(), key); v && v->type == msgpack::type::STR) {
        into.assign(v->via.str.ptr, v->via.str.size);
      }
    };
    text("yaml", p.config_yaml);
    text("model_checksum", p.model_checksum);
  } catch (const std::exception& e) {
    const std::string why = std::string("(the daemon's 'config' reply could not be read: ") + e.what() + ")";
    return {why, why};
  }
  return p;
}

}  // namespace

int run_map(const CliArgs& args) {
  const std::filesystem::path out_dir = args.value("out-dir").value_or("out");
  const bool live = args.value("control").has_value() || args.value("live").has_value();
  if (live && args.value("model")) throw UsageError("--model is for offline maps; live maps come from --control");
  const config::Config cfg = config_from_args(args);

  LibraryView lib;
  std::optional<Model> model;
  std::vector<Placed> placed;
  std::vector<protocol::EstimateMapMessage> stacks;
  DaemonProvenance daemon;  // live: the daemon's effective config and model, for the NeXus files' provenance
  std::map<std::string, std::uint64_t> errors;
  LatencyHistogram latency, stack_latency;
  std::uint64_t estimates = 0;

  std::set<std::string> file_ids;
  for (const auto& f : args.positionals()) file_ids.insert(std::filesystem::path(f).stem().string());

  if (live) {
    const std::string control = args.value("control").value_or(cfg.control.endpoint);
    const std::string output = args.value("output").value_or(cfg.output.endpoint);
    const double seconds = args.number("live", 10.0);
    const ClientCurve curve = client_curve(args);
    zmq::context_t context(1);
    const auto reply = control_request_frame(context, control, "library", std::chrono::milliseconds(10000), curve);
    if (!reply) throw Error("no reply from the daemon's control socket " + control);
    lib = view_of(protocol::decode_library_reply(reply->data(), reply->size()));
    daemon = daemon_provenance(context, control, curve);
    zmq::socket_t sub(context, zmq::socket_type::sub);
    sub.set(zmq::sockopt::rcvhwm, 0);
    for (const char* t : {"estimate", "error"}) sub.set(zmq::sockopt::subscribe, t);  // estimate also matches estimate_map
    curve.apply(sub, false);
    sub.connect(output);
    install_interrupt_handler();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    zmq::message_t topic, body;
    while (!interrupted() && std::chrono::steady_clock::now() < deadline) {
      if (!receive_frames(sub, std::chrono::milliseconds(100), topic, body)) continue;
      const auto* data = static_cast<const std::uint8_t*>(body.data());
      try {
        if (topic.to_string_view() == protocol::kTopicEstimate) {
          Placed p = placed_of(protocol::decode_estimate(data, body.size()));
          p.measured = file_ids.count(p.id) > 0;
          if (p.end_to_end_us) latency.record(*p.end_to_end_us);
          ++estimates;
          placed.push_back(std::move(p));
        } else if (topic.to_string_view() == protocol::kTopicEstimateMap) {
          stacks.push_back(protocol::decode_estimate_map(data, body.size()));
          if (stacks.back().latency.end_to_end) stack_latency.record(*stacks.back().latency.end_to_end);
        } else if (topic.to_string_view() == protocol::kTopicError) {
          ++errors[std::string(protocol::to_string(protocol::decode_error_message(data, body.size()).code))];
        }
      } catch (const protocol::ProtocolError& e) {
        ++errors["undecodable result"];
        std::cerr << "xasmap map: a result could not be decoded: " << e.what() << "\n";
      }
    }
  } else {
    if (args.value("model")) {
      model = Model::load(*args.value("model"));
      model->set_estimation_options(model_options(cfg));
    } else {
      model = build_model(cfg);
    }
    lib = view_of(*model);
    for (const auto& f : args.positionals()) {
      const Spectrum s = read_spectrum(f);
      try {
        protocol::EstimateMessage m;
        m.id = std::filesystem::path(f).stem().string();
        protocol::to_estimate_message(model->parameters(), model->estimate(s), m);
        placed.push_back(placed_of(m));
        placed.back().measured = true;
        ++estimates;
      } catch (const PreprocessError& e) {
        ++errors["rejected"];
        std::cerr << "xasmap map: " << f << ": " << e.what() << "\n";
      }
    }
  }

  std::filesystem::create_directories(out_dir);
  const std::string title = args.value("title").value_or(
      "Library map (" + std::string(lib.method == "isomap" ? "landmark Isomap" : lib.method == "mds" ? "MDS" : "Landmark MDS") +
      ")" + (placed.empty() ? "" : " with measured spectra"));
  std::vector<std::filesystem::path> written{out_dir / "map.svg"};
  if (auto png = draw_map(lib, placed, title, out_dir / "map.svg"); !png.empty()) written.push_back(png);

  // Fig. 2 for every measured file that was placed, when the library spectra are at hand.
  if (!args.positionals().empty()) {
    if (!args.value("library")) {
      std::cerr << "xasmap map: no --library DIR, so no comparison figures\n";
    } else {
      const Library library = load_library(*args.value("library"));
      for (const auto& f : args.positionals()) {
        const std::string id = std::filesystem::path(f).stem().string();
        const auto it = std::find_if(placed.begin(), placed.end(), [&](const Placed& p) { return p.id == id; });
        if (it == placed.end()) {
          std::cerr << "xasmap map: no estimate of " << id << " arrived, so no comparison figure\n";
          continue;
        }
        const auto li = std::find(library.labels.begin(), library.labels.end(), it->best_label);
        if (li == library.labels.end()) {
          std::cerr << "xasmap map: the library folder has no spectrum '" << it->best_label << "'\n";
          continue;
        }
        const auto file = out_dir / ("compare_" + safe_name(id) + ".svg");
        const auto png = draw_compare(read_spectrum(f), library.spectra[static_cast<std::size_t>(li - library.labels.begin())],
                                      *it, std::filesystem::path(f).filename().string(), file);
        written.push_back(file);
        if (!png.empty()) written.push_back(png);
      }
    }
  }
  for (const auto& m : stacks) {
    const auto file = out_dir / ("stack_" + safe_name(m.id) + ".svg");
    const auto png = draw_stack(m, lib, file);
    written.push_back(file);
    if (!png.empty()) written.push_back(png);
    const auto nexus = out_dir / ("stack_" + safe_name(m.id) + ".h5");
    const std::string control = args.value("control").value_or(cfg.control.endpoint);
    NexusResult r = nexus_result_of(m);
    r.version = kVersion;
    r.model_checksum = daemon.model_checksum;  // the model in service when the map connected
    r.library = "the model in service at " + control;
    r.config_yaml = daemon.config_yaml;
    r.source = "xasmapd at " + control + ": estimate_map '" + m.id + "', seq " + std::to_string(m.seq);
    write_nexus_result(nexus, r);
    written.push_back(nexus);
  }

  for (const auto& f : written) std::cerr << "xasmap map: wrote " << f.string() << "\n";
  if (args.has("summary")) {
    std::cout << "measured spectra:\n";
    for (const auto& p : placed) {
      if (p.measured) {
        std::string name = p.id;
        name.resize(std::max<std::size_t>(name.size(), 28), ' ');
        std::cout << "  " << name << "  " << estimate_text(p) << (p.in_library ? "" : "  [outside the library]")
                  << "\n";
      }
    }
    std::cout << "estimates: " << estimates;
    if (latency.count() > 0) {
      std::cout << " (end-to-end latency median " << fmt("%.2f", latency.quantile(0.5) / 1000) << " ms, p99 "
                << fmt("%.2f", latency.quantile(0.99) / 1000) << " ms)";
    }
    std::cout << ", stack maps: " << stacks.size();
    if (stack_latency.count() > 0) {
      std::cout << " (end-to-end " << fmt("%.0f", stack_latency.quantile(0.5) / 1000) << " ms for "
                << (stacks.empty() ? 0 : stacks.front().novelty.size()) << " pixels)";
    }
    std::uint64_t total_errors = 0;
    std::string detail;
    for (const auto& [code, n] : errors) {
      total_errors += n;
      detail += (detail.empty() ? "" : ", ") + code + " " + std::to_string(n);
    }
    std::cout << ", errors: " << total_errors << (detail.empty() ? "" : " (" + detail + ")") << "\n";
  }
  return 0;
}

}  // namespace xasmap::service
