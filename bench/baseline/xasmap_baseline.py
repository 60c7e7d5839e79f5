#!/usr/bin/python3
"""xasmap_baseline.py - xasmapd's job done the plain Python way, as a baseline for its throughput.

A per-message service written as a competent Python user would write it, with Debian's
python3-zmq, python3-msgpack, python3-numpy and python3-sklearn only. It speaks xasmapd's wire
protocol (docs/protocol.md) for single spectra, so `xasmap bench` and any dashboard can drive it
unchanged, and it estimates the same parameters from the same library by the same neighbour rule.
bench/run_baseline.py compares the two; the ctest `baseline_agrees` checks that they agree.

    xasmap_baseline.py --library build/tests/daemon/library \
        --input tcp://127.0.0.1:5555 --output tcp://127.0.0.1:5556

What it does as xasmapd does (with xasmapd's default configuration):

* Wire protocol. Input: `spectrum` messages (two frames: topic, msgpack map) on a SUB socket that
  connects to `--input` (or PULL with `--pattern pull`; `--bind-input` binds instead), with
  `energy`/`intensity` as msgpack arrays or as bin of little-endian f4/f8 (`dtype`), `id`, `time`
  and `meta`. Output on a PUB socket bound to `--output`: one `estimate` per judged spectrum (id,
  seq, params, uncertainty, confidence, neighbors, novelty, in_library, energy_shift_ev, coverage,
  edge_step, latency_us, time_published, meta), one `error` (id, code, field, message, time; xasmapd's codes
  and fields) per message it cannot judge, and `metrics` every `--metrics-interval` seconds (the
  bench waits for them to know the service is up).
* Library: a folder with manifest.csv (`file,<parameter>,...`) and one CSV per spectrum, as
  `xasmap library --out DIR` writes it; `charge`, `symmetry`, `*:cat` and non-numeric columns are
  categorical.
* Preprocessing (docs/estimation.md, core/src/preprocess.cpp): linear interpolation onto the grid
  points the spectrum covers (its window; 635-660 eV in 0.1 eV steps), the coverage check (at least
  8 points and 60 % of the grid), the line through the means of the first and last 1.5 eV of the
  window subtracted, unit area over the window, and the noise estimate from the measured samples
  under the window: 1.4826 * median |second difference| (each scaled to unit variance under white
  noise), times the root mean share (1-t)^2 + t^2 of a sample's variance the interpolated grid
  points hold, over the normalising area (below 5 samples: the grid values' own, / sqrt(6)).
* Distance: the correlation distance, Euclidean between features (p - mean) / |p - mean| on the
  window, i.e. 2 (1 - Pearson r).
* Energy calibration as a nuisance parameter: the library holds copies of every spectrum shifted by
  every multiple of 0.05 eV within +-0.5 eV (21 rows a spectrum), and neighbours are ranked by
  d^2 + (0.5 * m * shift / 0.05)^2, m the library's median nearest-neighbour distance.
* Partial windows: the library rows are processed again on the query's own window (background,
  normalisation and features), so both sides are compared on the same points.
* Estimate: the 4 nearest library spectra (one row each, its best-ranked shifted copy) from
  sklearn.neighbors.NearestNeighbors over the correlation features; weights
  1 / (sqrt(max(0, d^2 - noise)) + 0.01 m), noise the squared distance the spectrum's noise adds;
  charge by weighted vote (confidence = the winner's share, a tie to the smaller value); tendq by
  weighted mean with the weighted spread as its uncertainty; energy_shift_ev the weighted mean
  shift; novelty = sqrt(max(0, d1^2 - noise)) / m, in_library = novelty <= 4; the 3 nearest listed.
* The edge-step continuum (xasmapd's estimation.edge_step_fit): two arctangents (2:1, half width
  0.5 eV) at the spectrum's L3 maximum (smoothed over +-0.3 eV) and its L2 maximum one 2p
  spin-orbit splitting above, passed through the same background line, fitted by least squares
  with each of the 24 best-ranked candidate rows (means removed); the best-fitting gives its
  height j, removed when j exceeds 3 standard errors (the residual's variance, or the noise's
  where larger, times (1 + rho) / (1 - rho) for its lag-one correlation rho); then the spectrum
  is estimated again, at most 4 fits while the best-fitting candidate changes. When the first fit
  finds none and the spectrum's novelty exceeds 2, it is fitted once more over the candidates of
  the spectrum less a continuum of 0.2 of its highest point. `edge_step` = j / the highest point
  left.

What it simplifies, which a report comparing the two must say:

* No embedding. xasmapd places every spectrum on a Landmark MDS map and takes its candidates from a
  kd-tree over the map's 4 leading coordinates (approximate), then re-ranks them exactly; the
  baseline computes the exact distance to every library row (brute force, in sklearn). The
  estimate has no `embedding` key, and there is no control socket (`library`, `status`, `reload`).
* tendq always by inverse-distance weighted mean. xasmapd's default (`weighting: local_linear`)
  fits a local linear model along the map for spectra that cover the whole grid; for partial
  windows, which is every spectrum `xasmap bench` and `xasmap feed` send, it too uses the weighted
  mean, so there the two compute the same thing.
* No session energy offset (xasmapd's `calibration` section): compare with `track: off` and no
  configured offset. And no per-charge probabilities: the charge's confidence is the vote share,
  where xasmapd's is a probability from the per-charge best distances.
* One thread, one message at a time, no queue of its own: no overflow policy and no `overloaded`
  drops. NumPy's and sklearn's thread pools are limited to `--threads` (default 1): measured on 2
  busy cores, sklearn's OpenMP threads made the search ten times slower. ZeroMQ buffers what arrives faster than it is judged (receive high-water mark 0, as
  xasmapd's), so under overload latency grows instead. latency_us.queue is 0 (time spent in
  ZeroMQ's buffers is not visible to it); service = receipt to publication.
* Single spectra only: a stack (`kind: stack`) is answered with an `out_of_range` error on `kind`.
  No size limits (max_points, max_message_bytes) and no decoder bounds; otherwise the input checks
  are xasmapd's, in its order, with its codes.
* Partial windows rebuild the window's library features and a NearestNeighbors index for every
  message (about 1600 rows x 250 points, vectorised in NumPy); xasmapd instead works the window
  sums of each candidate row in one pass.
* Float64 throughout (xasmapd keeps library rows and features in float32); the median neighbour
  distance m is exact (xasmapd's takes candidates from its kd-tree).
* Shifted copies hold the end values beyond the library files' energy range, as xasmapd does for a
  `library.source: files` library (a simulated library has real data there); this matters only for
  windows that reach within 0.5 eV of the grid's ends.
"""

import argparse
import csv
import math
import os
import signal
import sys
import time

import msgpack
import numpy as np
import zmq
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits  # a dependency of python3-sklearn

PROTOCOL = 1


class Rejected(Exception):
    """A message the service cannot judge: answered with an `error` of this code and field."""

    def __init__(self, code, field, message):
        super().__init__(message)
        self.code = code
        self.field = field
        self.id = None  # the message's id, once it has been read


# =================================================================================================
# Library
# =================================================================================================

class Parameter:
    def __init__(self, name, categorical, categories):
        self.name = name
        self.categorical = categorical
        self.categories = categories  # names of a categorical parameter with text values, else []


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def load_library(folder):
    """Reads manifest.csv and its spectrum CSVs (energy_eV,intensity with a header line).
    Returns (parameters, labels, values [spectra x parameters], spectra [(energy, intensity)])."""
    with open(os.path.join(folder, "manifest.csv"), newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    header, rows = [c.strip() for c in rows[0]], [[c.strip() for c in r] for r in rows[1:]]
    if len(header) < 2 or header[0] != "file" or not rows:
        raise SystemExit("%s: expected a header 'file,<parameter>,...' and at least one row" % folder)
    parameters = []
    for c, name in enumerate(header[1:], start=1):
        categorical = name.endswith(":cat") and len(name) > 4
        if categorical:
            name = name[:-4]
        categorical = categorical or name in ("charge", "symmetry")
        categories = []
        if not all(_is_number(r[c]) for r in rows):
            categorical = True
            for r in rows:
                if r[c] not in categories:
                    categories.append(r[c])
        parameters.append(Parameter(name, categorical, categories))
    labels, values, spectra = [], [], []
    for r in rows:
        data = np.loadtxt(os.path.join(folder, r[0]), delimiter=",", skiprows=1, ndmin=2)
        order = np.argsort(data[:, 0], kind="stable")
        spectra.append((data[order, 0], data[order, 1]))
        labels.append(os.path.splitext(r[0])[0])
        values.append([float(p.categories.index(r[c])) if p.categories else float(r[c])
                       for c, p in enumerate(parameters, start=1)])
    return parameters, labels, np.array(values, dtype=float), spectra


# =================================================================================================
# Preprocessing and features (core/src/preprocess.cpp, core/src/distance.cpp)
# =================================================================================================

class Options:
    """xasmapd's defaults (deploy/xasmapd.yaml), the ones this baseline implements."""

    def __init__(self, args):
        self.emin_ev = args.emin_ev
        self.step_ev = args.step_ev
        self.size = int(math.floor((args.emax_ev - args.emin_ev) / args.step_ev + 1e-9)) + 1
        self.grid = self.emin_ev + self.step_ev * np.arange(self.size)
        self.edge_window_ev = args.edge_window_ev
        self.min_coverage = args.min_coverage
        self.max_shift_ev = args.max_shift_ev
        self.shift_step_ev = args.shift_step_ev
        self.shift_penalty = args.shift_penalty
        self.neighbors = args.neighbors
        self.report_neighbors = args.report_neighbors
        self.novelty_threshold = args.novelty_threshold
        self.edge_step_fit = not args.no_edge_step_fit
        self.edge_step_width_ev = args.edge_step_width_ev


# The 3d metals' L3 and L2 binding energies (eV; J. A. Bearden and A. F. Burr, Rev. Mod. Phys. 39,
# 125 (1967)), for the 2p spin-orbit splitting.
L3_L2_EV = {"Ti": (453.8, 460.2), "V": (512.1, 519.8), "Cr": (574.1, 583.8), "Mn": (638.7, 649.9),
            "Fe": (706.8, 719.9), "Co": (778.1, 793.2), "Ni": (852.7, 870.0), "Cu": (932.7, 952.3)}


# The continuum is profiled over this many of the best-ranked candidate rows, as xasmapd does.
EDGE_STEP_CANDIDATES = 24


def l3_l2_splitting(energy_ev):
    """L2 - L3 of the metal whose L3 edge lies nearest (within 10 eV), else 0."""
    l3, l2 = min(L3_L2_EV.values(), key=lambda edges: abs(edges[0] - energy_ev))
    return l2 - l3 if abs(l3 - energy_ev) <= 10.0 else 0.0


def window_of(energy, o):
    """The grid points [first, last] inside the spectrum's energy range."""
    first = int(min(max(math.ceil((energy[0] - o.emin_ev) / o.step_ev - 1e-9), 0), o.size))
    last = int(min(max(math.floor((energy[-1] - o.emin_ev) / o.step_ev + 1e-9), -1), o.size - 1))
    return first, last


def remove_line(y, first, o):
    """`y` (rows, n) on the grid points first..first+n-1 less the line through the means of the
    window's end regions."""
    n = y.shape[1]
    edge = min(max(int(math.floor(o.edge_window_ev / o.step_ev + 0.5)), 1), max(1, n // 4))
    e = o.grid[first:first + n]
    pre_e, post_e = e[:edge].mean(), e[n - edge:].mean()
    pre, post = y[:, :edge].mean(axis=1), y[:, n - edge:].mean(axis=1)
    slope = (post - pre) / (post_e - pre_e)
    return y - (pre[:, None] + slope[:, None] * (e[None, :] - pre_e))


def apply_window(y, first, o):
    """Line background through the means of the window's end regions, then unit area. `y` is
    (rows, n) on the grid points first..first+n-1; returns the processed rows and their areas (a
    row whose area is 0 is flat: it cannot be normalised)."""
    y = remove_line(y, first, o)
    area = y.sum(axis=1) * o.step_ev
    ok = np.abs(area) > 1e-30
    return y / np.where(ok, area, 1.0)[:, None], np.where(ok, area, 0.0)


def correlation_features(p):
    """(p - mean) / |p - mean| along the last axis; a flat row has zero features."""
    c = p - p.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(c, axis=-1, keepdims=True)
    return c / np.where(norm > 0, norm, np.inf)


def preprocess(energy, intensity, o):
    """Returns (processed values on the window, first grid index, coverage, noise sigma), or raises
    Rejected with xasmapd's code for a spectrum it would refuse."""
    if energy.size < 8:
        raise Rejected("too_few_points", "energy", "only %d points; at least 8 are needed" % energy.size)
    first, last = window_of(energy, o)
    n = last - first + 1
    coverage = (n - 1) * o.step_ev / (o.grid[-1] - o.grid[0]) if n > 1 else 0.0
    if n < 8 or coverage < o.min_coverage:
        raise Rejected("insufficient_overlap", "energy",
                       "the spectrum (%f-%f eV) covers %d%% of the grid %f-%f eV; at least %d%% is needed"
                       % (energy[0], energy[-1], round(100 * coverage), o.grid[0], o.grid[-1],
                          round(100 * o.min_coverage)))
    y = np.interp(o.grid[first:last + 1], energy, intensity)
    p, area = apply_window(y[None, :], first, o)
    if area[0] == 0.0 or not np.isfinite(area[0]):
        raise Rejected("flat_spectrum", "intensity", "nothing to normalise on the window %f-%f eV (flat spectrum)"
                       % (o.grid[first], o.grid[last]))
    p = p[0]
    grid = o.grid[first:last + 1]
    inside = np.nonzero((energy[1:-1] >= grid[0]) & (energy[1:-1] <= grid[-1]))[0] + 1
    if inside.size >= 5:
        a = 1.0 / (energy[inside] - energy[inside - 1])
        c = 1.0 / (energy[inside + 1] - energy[inside])
        b = a + c
        second = np.abs(a * intensity[inside - 1] - b * intensity[inside] + c * intensity[inside + 1]) / np.sqrt(
            a * a + b * b + c * c)
        sample_sigma = 1.4826 * np.partition(second, second.size // 2)[second.size // 2]
        j = np.clip(np.searchsorted(energy, grid, side="left") - 1, 0, energy.size - 2)
        t = np.clip((grid - energy[j]) / (energy[j + 1] - energy[j]), 0.0, 1.0)
        share = np.mean((1.0 - t) ** 2 + t ** 2)
        sigma = sample_sigma * math.sqrt(share) / abs(area[0])
    else:
        second = np.abs(p[:-2] - 2.0 * p[1:-1] + p[2:])
        sigma = 1.4826 * np.partition(second, second.size // 2)[second.size // 2] / math.sqrt(6.0)
    return p, first, coverage, sigma


# =================================================================================================
# The estimator
# =================================================================================================

# xasmapd's estimation.exact_partial_novelty (the novelty beyond which the edge-step fit seeks
# candidates once more) and its kEdgeStepSeed (core/src/model.cpp).
EXACT_PARTIAL_NOVELTY = 2.0
EDGE_STEP_SEED = 0.2


class Estimator:
    def __init__(self, folder, o):
        self.o = o
        self.parameters, self.labels, self.values, spectra = load_library(folder)
        # Every spectrum and its shifted copies on the grid, in xasmapd's order (0, +s, -s, +2s ...);
        # np.interp holds the end values beyond a spectrum's range, as xasmapd does.
        shifts = [0.0]
        if o.max_shift_ev > 0:
            for k in range(1, int(math.floor(o.max_shift_ev / o.shift_step_ev + 1e-9)) + 1):
                shifts += [k * o.shift_step_ev, -k * o.shift_step_ev]
        self.copies = len(shifts)
        self.rows = np.array([np.interp(o.grid - s, e, i) for e, i in spectra for s in shifts])
        self.row_spectrum = np.repeat(np.arange(len(spectra)), len(shifts))
        self.row_shift = np.tile(np.array(shifts), len(spectra))
        full, area = apply_window(self.rows, 0, o)
        if np.any(area == 0.0):
            raise SystemExit("library: spectrum '%s' is flat" % self.labels[self.row_spectrum[np.argmin(np.abs(area))]])
        self.full_features = correlation_features(full)
        self.full_index = NearestNeighbors(algorithm="brute").fit(self.full_features)
        # The library's median nearest-neighbour distance (unshifted copies, other spectra).
        plain = self.full_features[self.row_shift == 0.0]
        d, _ = NearestNeighbors(n_neighbors=2, algorithm="brute").fit(plain).kneighbors(plain)
        self.median_nn = max(float(np.partition(d[:, 1], d.shape[0] // 2)[d.shape[0] // 2]), 1e-12)

    def estimate(self, energy, intensity):
        o = self.o
        p, first, coverage, sigma = preprocess(energy, intensity, o)
        n = p.size
        full = first == 0 and n == o.size
        if full:
            features, index = self.full_features, self.full_index
        else:
            lib, _ = apply_window(self.rows[:, first:first + n], first, o)
            features = correlation_features(lib)
            index = NearestNeighbors(algorithm="brute").fit(features)
        plain, rows = self.judge(p, first, coverage, sigma, full, index)
        plain["edge_step"] = 0.0
        if not o.edge_step_fit:
            return plain
        # The edge-step continuum, fitted with the candidates, removed, and the spectrum judged again.
        result, previous = plain, None
        for fit in range(4):
            j, step, matched = self.fit_edge_step(p, first, sigma, features[rows])
            if j <= 0.0 and fit == 0 and plain["novelty"] > EXACT_PARTIAL_NOVELTY and step is not None:
                # None found where the candidates fit poorly: once more over the candidates of the
                # spectrum less a typical continuum (EDGE_STEP_SEED of its highest point).
                q = p - EDGE_STEP_SEED * p.max() * step
                area = q.sum() * o.step_ev
                if area > 0:
                    _, rows = self.judge(q / area, first, coverage, sigma / area, full, index)
                    j, step, matched = self.fit_edge_step(p, first, sigma, features[rows])
            if j <= 0.0:
                return plain
            matched = int(rows[matched])
            if matched == previous:
                return result
            previous = matched
            q = p - j * step
            area, top = q.sum() * o.step_ev, q.max()
            if not (area > 0 and top > 0):
                return result
            result, rows = self.judge(q / area, first, coverage, sigma / area, full, index)
            result["edge_step"] = float(j / top)
        return result

    def fit_edge_step(self, p, first, sigma, candidates):
        """The continuum's height j in p's units (0: none significant), its shape after the window's
        line, and the index of the candidate it fits best with."""
        o = self.o
        n = p.size
        if n < 16 or candidates.shape[0] == 0:
            return 0.0, None, -1
        grid = o.grid[first:first + n]
        half = max(1, int(math.floor(0.3 / o.step_ev + 0.5)))
        cum = np.concatenate([[0.0], np.cumsum(p)])
        i = np.arange(n)
        lo, hi = np.maximum(0, i - half), np.minimum(n - 1, i + half)
        smooth = (cum[hi + 1] - cum[lo]) / (hi - lo + 1)
        e3 = grid[int(np.argmax(smooth))]
        split = l3_l2_splitting(e3)
        if not split > 0:
            return 0.0, None, -1
        e2 = e3 + split
        near = np.nonzero((grid >= e3 + 0.7 * split) & (grid <= e3 + 1.3 * split))[0]
        if near.size:
            e2 = grid[near[int(np.argmax(smooth[near]))]]
        w = o.edge_step_width_ev
        continuum = (2.0 / 3.0) * (0.5 + np.arctan((grid - e3) / w) / np.pi) + \
                    (1.0 / 3.0) * (0.5 + np.arctan((grid - e2) / w) / np.pi)
        step = remove_line(continuum[None, :], first, o)[0]
        pc, sc = p - p.mean(), step - step.mean()
        rc = candidates - candidates.mean(axis=1, keepdims=True)
        sss, sps, spp = sc @ sc, pc @ sc, pc @ pc
        srr, srs, spr = (rc * rc).sum(axis=1), rc @ sc, rc @ pc
        det = srr * sss - srs * srs
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (spr * sss - sps * srs) / det
            j = (sps * srr - spr * srs) / det
        rss = np.maximum(0.0, spp - a * spr - j * sps)
        ok = (det > 1e-9 * srr * sss) & (a > 0)
        if not ok.any():
            return 0.0, None, -1
        best = int(np.argmin(np.where(ok, rss, np.inf)))
        if not j[best] > 0:
            return 0.0, step, best
        r = pc - a[best] * rc[best] - j[best] * sc
        rho = min(max(float(r[1:] @ r[:-1] / (r @ r)), 0.0), 0.98) if r @ r > 0 else 0.0
        var = max(sigma * sigma, rss[best] / (n - 3)) * srr[best] / det[best]
        se = math.sqrt(var * (1 + rho) / (1 - rho))
        return (float(j[best]) if j[best] > 3.0 * se else 0.0), step, best

    def judge(self, p, first, coverage, sigma, full, index):
        """The estimate of processed values p (on the window at `first`), and its best-ranked
        candidate rows, best first."""
        o = self.o
        n = p.size
        z = correlation_features(p)
        wanted = max(o.neighbors, o.report_neighbors)
        spectra = wanted + 2 if full else 4 * wanted  # as many candidate spectra as xasmapd takes
        search = min(self.rows.shape[0], spectra * self.copies)
        dist, rows = index.kneighbors(z[None, :], n_neighbors=search)
        dist, rows = dist[0], rows[0]

        # Rank with the prior against large shifts; keep the best copy of each library spectrum.
        penalty = o.shift_penalty * self.median_nn / o.shift_step_ev * self.row_shift[rows]
        order = np.argsort(dist * dist + penalty * penalty, kind="stable")
        chosen, seen = [], set()
        for i in order:
            s = self.row_spectrum[rows[i]]
            if s not in seen:
                seen.add(s)
                chosen.append(i)
                if len(chosen) == wanted:
                    break
        used = chosen[:o.neighbors]
        d = dist[used]
        spectrum = self.row_spectrum[rows[used]]
        # What the spectrum's own noise adds to a squared distance; weights count what lies beyond it.
        noise = sigma * sigma * n / float(np.sum((p - p.mean()) ** 2))
        w = 1.0 / (np.sqrt(np.maximum(0.0, d * d - noise)) + 0.01 * self.median_nn)
        total = w.sum()

        params, uncertainty, confidence = {}, {}, {}
        for k, par in enumerate(self.parameters):
            v = self.values[spectrum, k]
            if par.categorical:
                votes = {}
                for value, weight in zip(v, w):
                    votes[value] = votes.get(value, 0.0) + weight
                best = min(votes, key=lambda value: (-votes[value], value))
                params[par.name] = encode_value(par, best)
                confidence[par.name] = votes[best] / total
            else:
                mean = float(np.dot(w, v) / total)
                params[par.name] = mean
                uncertainty[par.name] = math.sqrt(float(np.dot(w, (v - mean) ** 2)) / total)

        novelty = math.sqrt(max(0.0, dist[chosen[0]] ** 2 - noise)) / self.median_nn
        neighbors = []
        for i in chosen[:o.report_neighbors]:
            s = self.row_spectrum[rows[i]]
            neighbors.append({"label": self.labels[s],
                              "params": {par.name: encode_value(par, self.values[s, k])
                                         for k, par in enumerate(self.parameters)},
                              "distance": float(dist[i]), "shift_ev": float(self.row_shift[rows[i]])})
        return {"params": params, "uncertainty": uncertainty, "confidence": confidence,
                "neighbors": neighbors, "novelty": novelty, "in_library": novelty <= o.novelty_threshold,
                "energy_shift_ev": float(np.dot(w, self.row_shift[rows[used]]) / total),
                "coverage": coverage}, rows[order[:EDGE_STEP_CANDIDATES]]


def encode_value(parameter, value):
    """A categorical value as its name, or as an integer when integral; anything else a float."""
    if parameter.categories:
        return parameter.categories[int(value)]
    if parameter.categorical and float(value).is_integer():
        return int(value)
    return float(value)


# =================================================================================================
# Decoding a `spectrum` message (docs/protocol.md section 3, in xasmapd's order of checks)
# =================================================================================================

def _array(m, key, dtype):
    v = m[key]
    if isinstance(v, (bytes, bytearray)):
        if dtype is None:
            raise Rejected("missing_field", "dtype", "field '%s' is bin, so field 'dtype' is required" % key)
        width = 4 if dtype == "f4" else 8
        if len(v) % width:
            raise Rejected("length_mismatch", key, "field '%s' holds %d bytes, not a multiple of %d" % (key, len(v), width))
        return np.frombuffer(v, "<" + dtype).astype(np.float64)
    if not isinstance(v, (list, tuple)):
        raise Rejected("bad_type", key, "field '%s' is %s, expected an array or bin" % (key, type(v).__name__))
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise Rejected("bad_type", key, "field '%s' holds an element that is not a number" % key)
    return np.array(v, dtype=np.float64)


def decode(frames, topic):
    """Returns (id, energy, intensity, time or None, meta or None), or raises Rejected (whose `id`
    is set once the message's id has been read)."""
    if len(frames) != 2:
        raise Rejected("bad_frames", "", "the message has %d frames; 2 are expected" % len(frames))
    if frames[0] != topic:
        raise Rejected("bad_frames", "topic", "the topic is not '%s'" % topic.decode())
    try:
        m = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several types for bad input
        raise Rejected("bad_msgpack", "", "frame 1 is not one msgpack object: %s" % e) from None
    if not isinstance(m, dict):
        raise Rejected("not_a_map", "", "frame 1 is not a msgpack map")
    if not all(isinstance(k, str) for k in m):
        raise Rejected("bad_type", "(key)", "a key is not a string")
    if "id" not in m:
        raise Rejected("missing_field", "id", "required field 'id' is missing")
    ident = m["id"]
    if not isinstance(ident, str):
        raise Rejected("bad_type", "id", "field 'id' is not a string")
    try:
        kind = m.get("kind", "spectrum")
        if not isinstance(kind, str):
            raise Rejected("bad_type", "kind", "field 'kind' is not a string")
        if kind == "stack":
            raise Rejected("out_of_range", "kind", "the baseline judges single spectra only, not stacks")
        if kind != "spectrum":
            raise Rejected("out_of_range", "kind", "field 'kind' must be 'spectrum' or 'stack'")
        dtype = m.get("dtype")
        if dtype is not None and not isinstance(dtype, str):
            raise Rejected("bad_type", "dtype", "field 'dtype' is not a string")
        if dtype is not None and dtype not in ("f4", "f8"):
            raise Rejected("out_of_range", "dtype", "field 'dtype' must be 'f4' or 'f8'")
        for key in ("energy", "intensity"):
            if key not in m:
                raise Rejected("missing_field", key, "required field '%s' is missing" % key)
        energy = _array(m, "energy", dtype)
        intensity = _array(m, "intensity", dtype)
        if intensity.size != energy.size:
            raise Rejected("length_mismatch", "intensity",
                           "intensity has %d values; energy has %d" % (intensity.size, energy.size))
        if energy.size < 2:
            raise Rejected("too_few_points", "energy", "only %d points; at least 2 are needed" % energy.size)
        # The first offending energy decides: not finite, or not above the one before it.
        bad = ~np.isfinite(energy)
        first_bad = int(np.argmax(bad)) if bad.any() else energy.size
        up = np.concatenate(([True], energy[1:] > energy[:-1]))
        first_down = int(np.argmin(up)) if not up.all() else energy.size
        if first_bad < energy.size and first_bad <= first_down:
            raise Rejected("non_finite", "energy", "energy[%d] is not finite" % first_bad)
        if first_down < energy.size:
            raise Rejected("non_monotonic_energy", "energy", "energy is not strictly increasing at index %d" % first_down)
        if not np.all(np.isfinite(intensity)):
            raise Rejected("non_finite", "intensity", "intensity[%d] is not finite" % np.argmin(np.isfinite(intensity)))
        stamp = m.get("time")
        if stamp is not None:
            if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
                raise Rejected("bad_type", "time", "field 'time' is not a number")
            if not math.isfinite(stamp):
                raise Rejected("non_finite", "time", "field 'time' is not finite")
            if stamp < 0:
                raise Rejected("out_of_range", "time", "field 'time' is negative")
        meta = m.get("meta")
        if meta is not None and not isinstance(meta, dict):
            raise Rejected("bad_type", "meta", "field 'meta' is not a map")
    except Rejected as e:
        e.id = ident
        raise
    return ident, energy, intensity, stamp, meta


# =================================================================================================
# The service loop
# =================================================================================================

class Metrics:
    def __init__(self):
        self.start = time.monotonic()
        self.last = self.start
        self.received = self.published = self.rejected = 0
        self.latencies = []  # service latencies (us) of the estimates published this interval

    def message(self, library_size):
        now = time.monotonic()
        interval = now - self.last
        lat = np.array(self.latencies) if self.latencies else np.zeros(1)
        m = {"time": time.time(), "uptime_s": now - self.start, "interval_s": interval,
             "received": self.received, "published": self.published, "rejected": self.rejected,
             "dropped": 0, "queue_depth": 0, "rate_hz": len(self.latencies) / interval if interval > 0 else 0.0,
             "latency_us": {"p50": float(np.percentile(lat, 50)), "p90": float(np.percentile(lat, 90)),
                            "p99": float(np.percentile(lat, 99)), "max": float(lat.max()),
                            "count": len(self.latencies)},
             "library": {"size": library_size, "landmarks": 0, "dims": 0, "method": "baseline"},
             "model_generation": 1, "protocol": PROTOCOL}
        self.last = now
        self.latencies = []
        return m


def publish(sock, topic, body):
    sock.send_multipart([topic, msgpack.packb(body, use_bin_type=True)])


def serve(args):
    # One message is too little work to share between threads: sklearn's OpenMP search threads,
    # spinning for 2 cores against the sender, made each estimate ten times slower (50 ms, not 5).
    threadpool_limits(limits=args.threads)
    o = Options(args)
    t0 = time.monotonic()
    est = Estimator(args.library, o)
    print("xasmap_baseline: library %s: %d spectra, %d rows with shifted copies, grid %d points, "
          "median neighbour distance %.4g; ready in %.2f s" % (args.library, len(est.labels), est.rows.shape[0],
                                                              o.size, est.median_nn, time.monotonic() - t0),
          file=sys.stderr, flush=True)

    ctx = zmq.Context()
    out = ctx.socket(zmq.PUB)
    out.setsockopt(zmq.SNDHWM, 100000)
    out.setsockopt(zmq.LINGER, 1000)
    out.bind(args.output)
    inp = ctx.socket(zmq.PULL if args.pattern == "pull" else zmq.SUB)
    inp.setsockopt(zmq.RCVHWM, 0)
    inp.setsockopt(zmq.LINGER, 0)
    topic = args.topic.encode()
    if args.pattern == "sub":
        inp.setsockopt(zmq.SUBSCRIBE, topic)
    (inp.bind if args.bind_input else inp.connect)(args.input)
    print("xasmap_baseline: input %s (%s, %s), output %s" % (args.input, args.pattern,
                                                              "bound" if args.bind_input else "connected",
                                                              args.output), file=sys.stderr, flush=True)

    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))
    metrics = Metrics()
    next_metrics = time.monotonic() + args.metrics_interval
    seq = 0
    while not stop:
        now = time.monotonic()
        if now >= next_metrics:
            publish(out, b"metrics", metrics.message(len(est.labels)))
            next_metrics = now + args.metrics_interval
        if not inp.poll(max(1, int((next_metrics - now) * 1000))):
            continue
        frames = inp.recv_multipart()
        received = time.monotonic()
        metrics.received += 1
        ident = None
        try:
            ident, energy, intensity, stamp, meta = decode(frames, topic)
            decoded = time.monotonic()
            result = est.estimate(energy, intensity)
        except Rejected as e:
            metrics.rejected += 1
            publish(out, b"error", {"id": e.id if e.id is not None else ident, "code": e.code, "field": e.field,
                                    "message": str(e), "time": time.time()})
            continue
        except Exception as e:  # a bug here: still answered, as xasmapd answers `internal`
            metrics.rejected += 1
            publish(out, b"error", {"id": ident, "code": "internal", "field": "", "message": repr(e), "time": time.time()})
            continue
        computed = time.monotonic()
        seq += 1
        body = {"id": ident, "seq": seq}
        body.update(result)
        published_wall = time.time()
        service = (time.monotonic() - received) * 1e6
        body["latency_us"] = {"queue": 0.0, "decode": (decoded - received) * 1e6,
                              "compute": (computed - decoded) * 1e6, "service": service}
        if stamp is not None:
            body["latency_us"]["end_to_end"] = (published_wall - stamp) * 1e6
        body["time_published"] = published_wall
        body["meta"] = meta
        publish(out, b"estimate", body)
        metrics.published += 1
        metrics.latencies.append(service)
    publish(out, b"metrics", metrics.message(len(est.labels)))
    inp.close()
    out.close()  # linger: the last messages still go out
    ctx.term()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--library", required=True, help="library folder with manifest.csv")
    parser.add_argument("--input", default="tcp://127.0.0.1:5555", help="input endpoint (spectrum messages)")
    parser.add_argument("--output", default="tcp://127.0.0.1:5556", help="output endpoint, bound (PUB)")
    parser.add_argument("--pattern", choices=("sub", "pull"), default="sub", help="input socket")
    parser.add_argument("--bind-input", action="store_true", help="bind the input endpoint instead of connecting")
    parser.add_argument("--topic", default="spectrum", help="input topic")
    parser.add_argument("--metrics-interval", type=float, default=1.0, help="seconds between metrics messages")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP/BLAS threads for NumPy and sklearn")
    parser.add_argument("--emin-ev", type=float, default=635.0)
    parser.add_argument("--emax-ev", type=float, default=660.0)
    parser.add_argument("--step-ev", type=float, default=0.1)
    parser.add_argument("--edge-window-ev", type=float, default=1.5)
    parser.add_argument("--min-coverage", type=float, default=0.6)
    parser.add_argument("--max-shift-ev", type=float, default=0.5, help="0: no shifted copies")
    parser.add_argument("--shift-step-ev", type=float, default=0.05)
    parser.add_argument("--shift-penalty", type=float, default=0.5)
    parser.add_argument("--neighbors", type=int, default=4)
    parser.add_argument("--report-neighbors", type=int, default=3)
    parser.add_argument("--novelty-threshold", type=float, default=4.0)
    parser.add_argument("--no-edge-step-fit", action="store_true", help="do not fit the edge-step continuum")
    parser.add_argument("--edge-step-width-ev", type=float, default=0.5)
    args = parser.parse_args(argv)
    if not (args.metrics_interval > 0 and args.threads >= 1 and args.step_ev > 0 and args.neighbors >= 1 and args.report_neighbors >= 0
            and args.max_shift_ev >= 0 and args.shift_step_ev > 0 and 0 < args.min_coverage <= 1):
        parser.error("intervals and steps must be > 0, --neighbors >= 1, --min-coverage in (0, 1]")
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
