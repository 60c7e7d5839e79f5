#pragma once
// A minimal SVG writer for xasmap's figures (the embedding map, spectrum comparisons, parameter
// maps): shapes, text, and plot axes with readable ticks. No plotting dependency.

#include <filesystem>
#include <string>
#include <vector>

namespace xasmap::service {

class Svg {
 public:
  Svg(double width, double height);

  void rect(double x, double y, double w, double h, const std::string& fill,
            const std::string& stroke = "none", double stroke_width = 1.0);
  void line(double x1, double y1, double x2, double y2, const std::string& stroke, double width = 1.0,
            const std::string& dash = "");
  void polyline(const std::vector<double>& x, const std::vector<double>& y, const std::string& stroke,
                double width = 1.5, const std::string& dash = "");
  void circle(double cx, double cy, double r, const std::string& fill, const std::string& stroke = "none",
              double stroke_width = 1.0);
  // A marker of `shape` "circle", "diamond", "star", "square" or "triangle", centred on (cx, cy).
  void marker(const std::string& shape, double cx, double cy, double size, const std::string& fill,
              const std::string& stroke = "#000", double stroke_width = 1.0);
  // anchor: start, middle or end. rotate: degrees about (x, y).
  void text(double x, double y, const std::string& content, double size = 12,
            const std::string& anchor = "start", const std::string& fill = "#000", bool bold = false,
            double rotate = 0);

  std::string str() const;
  // Writes the file; when rsvg-convert is on PATH also FILE.png next to it. Returns the PNG's
  // path, or an empty path.
  std::filesystem::path save(const std::filesystem::path& file, bool png = true) const;

  double width() const { return width_; }
  double height() const { return height_; }

 private:
  double width_, height_;
  std::string body_;
};

// Tick values at 1-2-5 steps covering [lo, hi] with about `count` ticks.
std::vector<double> nice_ticks(double lo, double hi, int count = 6);
std::string tick_label(double v, double step);

// A plot area on an Svg: data coordinates to pixels, with a frame, ticks, grid and labels.
class Axes {
 public:
  Axes(Svg& svg, double left, double top, double width, double height, double x0, double x1, double y0,
       double y1);
  double px(double x) const;
  double py(double y) const;
  // Frame, grid lines, tick labels and axis labels.
  void draw(const std::string& xlabel, const std::string& ylabel, int xticks = 7, int yticks = 6);
  double left() const { return left_; }
  double top() const { return top_; }
  double width() const { return width_; }
  double height() const { return height_; }

 private:
  Svg& svg_;
  double left_, top_, width_, height_, x0_, x1_, y0_, y1_;
};

// Colours: a qualitative palette for categories, and a perceptually ordered scale (viridis-like)
// for t in [0, 1].
std::string category_colour(std::size_t i);
std::string scale_colour(double t);

// Escapes &, <, > and quotes for SVG text and attributes.
std::string xml_escape(const std::string& s);

}  // namespace xasmap::service
