#!/usr/bin/python3
"""Checks a map figure written by `xasmap map` (map.svg): inside the plot, no two labels (the
library's 10Dq labels and the measured spectra's names) come within 1 px of each other, no label
covers a measured spectrum's star, and every star has its name. Boxes are estimated from the font
size as xasmap places them (DejaVu Sans: 0.6 em a character, 0.62 em in bold).

Usage: figure_check.py MAP_SVG [--min-stars N]. Prints what it checked; exits 1 on any finding."""

import argparse
import re
import sys

PLOT_RIGHT = 760  # the legend starts at x = 770


def boxes(svg):
    labels, stars = [], []
    for m in re.finditer(r'<text x="([-\d.]+)" y="([-\d.]+)" font-size="([\d.]+)" text-anchor="(\w+)"'
                         r' fill="[^"]*"( font-weight="bold")?[^>]*>([^<]*)</text>', svg):
        x, y, size = float(m.group(1)), float(m.group(2)), float(m.group(3))
        bold, text = m.group(5) is not None, m.group(6)
        if m.group(4) != "start" or x >= PLOT_RIGHT:
            continue  # axis numbers (middle), title, legend
        if not ((size == 10 and not bold) or (size == 12 and bold)):
            continue
        width = len(text) * size * (0.62 if bold else 0.6)
        labels.append((text, (x, y - 0.9 * size, x + width, y + 0.2 * size)))
    for m in re.finditer(r'<polygon points="([^"]+)"', svg):
        pts = [tuple(float(v) for v in p.split(",")) for p in m.group(1).split()]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        if len(pts) == 10 and max(xs) < PLOT_RIGHT:  # a star (5 points, 5 inner corners)
            stars.append((min(xs), min(ys), max(xs), max(ys)))
    return labels, stars


def near(a, b, gap):
    return a[0] < b[2] + gap and b[0] < a[2] + gap and a[1] < b[3] + gap and b[1] < a[3] + gap


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("svg")
    parser.add_argument("--min-stars", type=int, default=1)
    args = parser.parse_args()
    with open(args.svg, encoding="utf-8") as f:
        svg = f.read()
    labels, stars = boxes(svg)
    findings = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            if near(labels[i][1], labels[j][1], 1.0):
                findings.append("labels '%s' and '%s' overlap or touch" % (labels[i][0], labels[j][0]))
        for s in stars:
            if near(labels[i][1], s, 0.0):
                findings.append("label '%s' covers a star at (%.0f, %.0f)" % (labels[i][0], (s[0] + s[2]) / 2, (s[1] + s[3]) / 2))
    names = [t for t, b in labels if not t.isdigit()]
    if len(stars) < args.min_stars:
        findings.append("%d stars, expected at least %d" % (len(stars), args.min_stars))
    if len(names) != len(stars):
        findings.append("%d stars but %d names" % (len(stars), len(names)))
    print("%s: %d labels (%d library, %d measured), %d stars" %
          (args.svg, len(labels), len(labels) - len(names), len(names), len(stars)))
    for f in findings:
        print("FAIL: " + f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
