#include "svg.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "xasmap/core/error.hpp"

namespace xasmap::service {

namespace {

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", v);
  return b;
}

std::string dash_attr(const std::string& dash) {
  return dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"";
}

bool have_rsvg_convert() {
  return std::system("command -v rsvg-convert >/dev/null 2>&1") == 0;
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

Svg::Svg(double width, double height) : width_(width), height_(height) {
  rect(0, 0, width, height, "#ffffff");
}

void Svg::rect(double x, double y, double w, double h, const std::string& fill, const std::string& stroke,
               double stroke_width) {
  body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(w) + "\" height=\"" + num(h) +
           "\" fill=\"" + fill + "\" stroke=\"" + stroke + "\" stroke-width=\"" + num(stroke_width) + "\"/>\n";
}

void Svg::line(double x1, double y1, double x2, double y2, const std::string& stroke, double width,
               const std::string& dash) {
  body_ += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) +
           "\" stroke=\"" + stroke + "\" stroke-width=\"" + num(width) + "\"" + dash_attr(dash) + "/>\n";
}

void Svg::polyline(const std::vector<double>& x, const std::vector<double>& y, const std::string& stroke,
                   double width, const std::string& dash) {
  std::string points;
  for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    points += num(x[i]) + "," + num(y[i]) + " ";
  }
  body_ += "<polyline fill=\"none\" stroke=\"" + stroke + "\" stroke-width=\"" + num(width) +
           "\" stroke-linejoin=\"round\"" + dash_attr(dash) + " points=\"" + points + "\"/>\n";
}

void Svg::circle(double cx, double cy, double r, const std::string& fill, const std::string& stroke,
                 double stroke_width) {
  body_ += "<circle cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"" + num(r) + "\" fill=\"" + fill +
           "\" stroke=\"" + stroke + "\" stroke-width=\"" + num(stroke_width) + "\"/>\n";
}

void Svg::marker(const std::string& shape, double cx, double cy, double size, const std::string& fill,
                 const std::string& stroke, double stroke_width) {
  const double r = size / 2;
  std::vector<std::pair<double, double>> pts;
  if (shape == "circle") {
    circle(cx, cy, r, fill, stroke, stroke_width);
    return;
  }
  if (shape == "square") {
    rect(cx - r, cy - r, size, size, fill, stroke, stroke_width);
    return;
  }
  if (shape == "diamond") {
    pts = {{cx, cy - r * 1.3}, {cx + r, cy}, {cx, cy + r * 1.3}, {cx - r, cy}};
  } else if (shape == "triangle") {
    pts = {{cx, cy - r * 1.2}, {cx + r * 1.1, cy + r * 0.8}, {cx - r * 1.1, cy + r * 0.8}};
  } else {  // star
    for (int i = 0; i < 10; ++i) {
      const double a = -M_PI / 2 + i * M_PI / 5;
      const double rr = (i % 2 == 0) ? r * 1.4 : r * 0.6;
      pts.emplace_back(cx + rr * std::cos(a), cy + rr * std::sin(a));
    }
  }
  std::string points;
  for (const auto& [x, y] : pts) points += num(x) + "," + num(y) + " ";
  body_ += "<polygon points=\"" + points + "\" fill=\"" + fill + "\" stroke=\"" + stroke +
           "\" stroke-width=\"" + num(stroke_width) + "\"/>\n";
}

void Svg::text(double x, double y, const std::string& content, double size, const std::string& anchor,
               const std::string& fill, bool bold, double rotate) {
  body_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" + num(size) +
           "\" text-anchor=\"" + anchor + "\" fill=\"" + fill + "\"" + (bold ? " font-weight=\"bold\"" : "") +
           (rotate != 0 ? " transform=\"rotate(" + num(rotate) + " " + num(x) + " " + num(y) + ")\"" : "") + ">" +
           xml_escape(content) + "</text>\n";
}

std::string Svg::str() const {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
         num(width_) + "\" height=\"" + num(height_) + "\" viewBox=\"0 0 " + num(width_) + " " + num(height_) +
         "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n" + body_ + "</svg>\n";
}

std::filesystem::path Svg::save(const std::filesystem::path& file, bool png) const {
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path());
  {
    std::ofstream out(file);
    out << str();
    if (!out) throw Error("cannot write " + file.string());
  }
  if (!png || !have_rsvg_convert()) return {};
  std::filesystem::path png_file = file;
  png_file.replace_extension(".png");
  const std::string cmd = "rsvg-convert -f png -o '" + png_file.string() + "' '" + file.string() + "'";
  if (std::system(cmd.c_str()) != 0) return {};
  return png_file;
}

std::vector<double> nice_ticks(double lo, double hi, int count) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / std::max(1, count);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + 1e-9 * step; t += step) {
    ticks.push_back(std::abs(t) < 1e-12 * step ? 0.0 : t);
  }
  return ticks;
}

std::string tick_label(double v, double step) {
  const int decimals = std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 6);
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", decimals, v);
  return b;
}

Axes::Axes(Svg& svg, double left, double top, double width, double height, double x0, double x1, double y0,
           double y1)
    : svg_(svg), left_(left), top_(top), width_(width), height_(height), x0_(x0), x1_(x1), y0_(y0), y1_(y1) {}

double Axes::px(double x) const { return left_ + (x - x0_) / (x1_ - x0_) * width_; }
double Axes::py(double y) const { return top_ + height_ - (y - y0_) / (y1_ - y0_) * height_; }

void Axes::draw(const std::string& xlabel, const std::string& ylabel, int xticks, int yticks) {
  const auto xt = nice_ticks(x0_, x1_, xticks);
  const auto yt = nice_ticks(y0_, y1_, yticks);
  const double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1.0;
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1.0;
  for (double t : xt) {
    svg_.line(px(t), top_, px(t), top_ + height_, "#e4e4e4", 1);
    svg_.line(px(t), top_ + height_, px(t), top_ + height_ + 5, "#333", 1);
    svg_.text(px(t), top_ + height_ + 19, tick_label(t, xstep), 13, "middle", "#222");
  }
  for (double t : yt) {
    svg_.line(left_, py(t), left_ + width_, py(t), "#e4e4e4", 1);
    svg_.line(left_ - 5, py(t), left_, py(t), "#333", 1);
    svg_.text(left_ - 8, py(t) + 4.5, tick_label(t, ystep), 13, "end", "#222");
  }
  svg_.rect(left_, top_, width_, height_, "none", "#333", 1.2);
  svg_.text(left_ + width_ / 2, top_ + height_ + 42, xlabel, 15, "middle", "#000");
  svg_.text(left_ - 52, top_ + height_ / 2, ylabel, 15, "middle", "#000", false, -90);
}

std::string category_colour(std::size_t i) {
  static const std::array<const char*, 8> kPalette{"#1f5fbf", "#2e9e44", "#d62728", "#9467bd",
                                                   "#ff7f0e", "#17becf", "#8c564b", "#e377c2"};
  return kPalette[i % kPalette.size()];
}

std::string scale_colour(double t) {
  // Anchors of a viridis-like scale (dark blue - teal - green - yellow).
  static const std::array<std::array<double, 3>, 6> kStops{{{68, 1, 84},
                                                            {65, 68, 135},
                                                            {42, 120, 142},
                                                            {34, 168, 132},
                                                            {122, 209, 81},
                                                            {253, 231, 37}}};
  if (!std::isfinite(t)) return "#bbbbbb";
  t = std::clamp(t, 0.0, 1.0) * (kStops.size() - 1);
  const auto i = std::min<std::size_t>(static_cast<std::size_t>(t), kStops.size() - 2);
  const double f = t - static_cast<double>(i);
  char b[8];
  std::snprintf(b, sizeof b, "#%02x%02x%02x", static_cast<int>(kStops[i][0] + f * (kStops[i + 1][0] - kStops[i][0])),
                static_cast<int>(kStops[i][1] + f * (kStops[i + 1][1] - kStops[i][1])),
                static_cast<int>(kStops[i][2] + f * (kStops[i + 1][2] - kStops[i][2])));
  return b;
}

}  // namespace xasmap::service
