#!/usr/bin/python3
"""xasmap_client.py - an example client of xasmapd, the X-ray absorption spectrum estimator.

It shows, in small functions meant to be copied, the three ways a program talks to xasmapd:

  publish    an acquisition system sends spectra to the daemon's input socket
  subscribe  a dashboard receives the daemon's estimates, errors and metrics
  library    ask the control socket for the library map (as CSV)
  status     ask the control socket how the daemon is doing (as JSON)

Run `xasmap_client.py SUBCOMMAND --help` for the options of each. It needs only the Python
standard library plus Debian's python3-zmq and python3-msgpack (no NumPy).

The protocol in brief (version 1; docs/protocol.md is the full specification, with examples):

* Input and output messages are ZeroMQ multipart messages of exactly two frames: the topic as
  UTF-8 bytes, then one msgpack map with string keys.
* Input (default tcp://127.0.0.1:5555): the daemon's SUB socket connects to the acquisition
  system's PUB socket (or, with `input.pattern: pull`, its PULL socket takes from a PUSH). The
  topic is `spectrum`; the map holds `id` (string, echoed in the answer), `energy` (eV, strictly
  increasing) and `intensity`, each an array of numbers or a msgpack bin of little-endian floats
  with `dtype` "f4" or "f8", and optionally `time` (acquisition time, s since the epoch) and
  `meta` (any map, echoed back).
* Output (default tcp://127.0.0.1:5556, the daemon's PUB; clients connect a SUB): every spectrum
  the daemon receives is answered exactly once, by an `estimate` (a single spectrum), an
  `estimate_map` (a stack) or an `error`; `metrics` come every `metrics.interval_s` seconds.
  Answers are not in input order: match them to requests by `id`.
* Control (default tcp://127.0.0.1:5557, the daemon's REP; clients use REQ): one frame holding
  a msgpack map {"cmd": "status" | "library" | "config" | "reload" | "shutdown"}; the reply is
  one frame holding a map that always has `ok`.
* Any number the daemon sends may arrive as an integer or a float (1.0 is sent as 1), and new
  keys may appear within version 1: read numbers with float() and ignore keys you do not know.

Examples (a daemon on the default endpoints):

  xasmap_client.py status
  xasmap_client.py subscribe --count 3                      # in one terminal
  xasmap_client.py publish tests/data/experimental/xinhuolin_MnEdgeNet/Data2_MnO.csv
  xasmap_client.py library > library_map.csv
"""

import argparse
import array
import csv
import json
import math
import os
import sys
import time

import msgpack
import zmq

DEFAULT_INPUT = "tcp://127.0.0.1:5555"
DEFAULT_OUTPUT = "tcp://127.0.0.1:5556"
DEFAULT_CONTROL = "tcp://127.0.0.1:5557"
OUTPUT_TOPICS = ("estimate", "estimate_map", "error", "metrics")
ANSWER_TOPICS = ("estimate", "estimate_map", "error")  # one of these answers every spectrum sent


class ClientError(Exception):
    """A problem worth one clear line on stderr (bad file, no daemon, a refused request)."""


# =================================================================================================
# Reading spectrum files
# =================================================================================================

def _split(line):
    """CSV when the line has a comma, otherwise whitespace-separated columns (.xy, .dat)."""
    if "," in line:
        return [field.strip() for field in line.split(",")]
    return line.split()


def _find_column(names, wanted):
    """The 0-based index of a column given by name (case-insensitive) or 1-based number."""
    if wanted.isdigit():
        return int(wanted) - 1
    for i, name in enumerate(names):
        if name.lower() == wanted.lower():
            return i
    return -1


def read_spectrum(path, energy_column=None, intensity_column=None):
    """Reads a two-column (or wider) text spectrum and returns (energies, intensities), two lists
    of floats with the energies strictly increasing, as the daemon requires.

    Lines starting with '#' are comments; a first non-numeric line is a header naming the
    columns; a UTF-8 byte-order mark is skipped. Unless told otherwise, the energy is the first
    column whose name contains "energy" (else column 1) and the intensity the first other column
    whose name contains "intensity", "mu", "xas", "absorption" or "norm" (else the column after
    the energy) - the same rule as `xasmap estimate`. Digitised curves often have a few
    backwards or repeated energies: the rows are sorted by energy and the intensities of a
    repeated energy are averaged.
    """
    names, rows = [], []
    with open(path, encoding="utf-8-sig") as f:  # utf-8-sig drops a byte-order mark
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            fields = _split(line)
            try:
                values = [float(x) for x in fields]
            except ValueError:
                if not rows and not names:
                    names = fields  # the header
                    continue
                raise ClientError("%s:%d: expected numbers, found %r" % (path, number, line))
            if len(values) < 2 or (rows and len(values) != len(rows[0])):
                raise ClientError("%s:%d: unexpected number of columns" % (path, number))
            rows.append(values)
    if not rows:
        raise ClientError("%s: no data rows" % path)
    width = len(rows[0])
    names = (names + [""] * width)[:width]

    if energy_column:
        e_col = _find_column(names, energy_column)
    else:
        e_col = next((i for i, n in enumerate(names) if "energy" in n.lower()), 0)
    if intensity_column:
        i_col = _find_column(names, intensity_column)
    else:
        i_col = next((i for key in ("intensity", "mu", "xas", "absorption", "norm")
                      for i, n in enumerate(names) if i != e_col and key in n.lower()), e_col + 1)
    for col, what in ((e_col, "energy"), (i_col, "intensity")):
        if not 0 <= col < width:
            raise ClientError("%s: no %s column among its %d columns %s" % (path, what, width, names))

    # Sort by energy (a stable sort keeps file order among equal energies), average repeats.
    rows.sort(key=lambda r: r[e_col])
    energy, intensity, count = [], [], []
    for r in rows:
        if energy and r[e_col] == energy[-1]:
            intensity[-1] += r[i_col]
            count[-1] += 1
        else:
            energy.append(r[e_col])
            intensity.append(r[i_col])
            count.append(1)
    intensity = [y / n for y, n in zip(intensity, count)]
    return energy, intensity


# =================================================================================================
# publish: the acquisition side
# =================================================================================================

def pack_floats(values, dtype):
    """Packs floats as a msgpack bin payload: little-endian float32 ("f4") or float64 ("f8")."""
    packed = array.array("f" if dtype == "f4" else "d", values)
    if sys.byteorder == "big":
        packed.byteswap()  # the protocol's bins are little-endian
    return packed.tobytes()


def spectrum_message(ident, energy, intensity, raw=None, meta=None):
    """The msgpack body of one `spectrum` message (frame 1).

    Without `raw`, energy and intensity go as msgpack arrays of floats (simple, 9 bytes a
    value). With raw="f4" or "f8" they go as bin (4 or 8 bytes a value, much faster to decode)
    and `dtype` says which. float32 keeps about 7 digits: 0.00006 eV at 640 eV.
    """
    body = {"id": ident, "time": time.time()}  # `time` lets the daemon report end-to-end latency
    if raw:
        body["energy"] = pack_floats(energy, raw)
        body["intensity"] = pack_floats(intensity, raw)
        body["dtype"] = raw
        if raw == "f4":
            rounded = array.array("f", energy)
            if any(b <= a for a, b in zip(rounded, rounded[1:])):
                raise ClientError("%s: two energies become equal as float32; use --raw f8" % ident)
    else:
        body["energy"] = [float(x) for x in energy]
        body["intensity"] = [float(y) for y in intensity]
    if meta is not None:
        body["meta"] = meta
    # use_bin_type=True: Python bytes become msgpack bin, str become str (the msgpack 1.0 default).
    return msgpack.packb(body, use_bin_type=True)


def open_feed(ctx, endpoint, pattern="pub", bind=True):
    """The acquisition system's socket: XPUB (a PUB that also reports subscriptions) for a daemon
    whose input is SUB (the default), or PUSH for a daemon configured with `input.pattern: pull`.
    """
    if pattern == "pub":
        sock = ctx.socket(zmq.XPUB)
        # Report every subscriber's subscription, not only the first one for a topic, so that
        # wait_for_subscribers() can count several daemons.
        sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        # A PUB silently drops messages beyond its send high-water mark (1000 by default) when a
        # subscriber is slower than the sender; 0 queues them in memory instead. A sender that
        # must never lose a message should rather use PUSH and a daemon with `overflow: block`.
        sock.setsockopt(zmq.SNDHWM, 0)
    else:
        sock = ctx.socket(zmq.PUSH)
    if bind:
        sock.bind(endpoint)
    else:
        sock.connect(endpoint)
    return sock


def wait_for_subscribers(sock, topic, count=1, timeout_s=10.0):
    """Blocks until `count` subscriptions covering `topic` have reached this XPUB socket.

    Why: ZeroMQ's PUB sends a message only to the subscribers whose subscription it has already
    received. Connecting and subscribing take a moment (the "slow joiner" effect), and whatever
    a PUB publishes before then is silently discarded - so the first spectra of a freshly
    started publisher would simply vanish. An XPUB receives each subscription as a message
    (b"\\x01" + prefix), so the sender can wait for the daemon's b"\\x01spectrum" before it
    publishes anything. Subscriptions match by prefix: an empty one covers every topic.
    """
    deadline = time.monotonic() + timeout_s
    seen = 0
    while seen < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not sock.poll(int(remaining * 1000), zmq.POLLIN):
            raise ClientError("no subscriber for '%s' within %g s (%d of %d); is xasmapd running "
                              "with its input connected to this endpoint?"
                              % (topic.decode(), timeout_s, seen, count))
        frame = sock.recv()
        if frame[:1] == b"\x01" and topic.startswith(frame[1:]):  # b"\x00..." = unsubscribe
            seen += 1


def publish(endpoint, files, pattern="pub", bind=True, raw=None, id_prefix="", rate_hz=0.0,
            repeat=1, wait_subscriber_s=10.0, subscribers=1, topic="spectrum", meta=True,
            energy_column=None, intensity_column=None, out=sys.stdout):
    """Reads every file and publishes it as one `spectrum` message; returns the number sent."""
    spectra = []
    for path in files:  # read everything first, so that a bad file stops us before sending
        energy, intensity = read_spectrum(path, energy_column, intensity_column)
        stem = os.path.splitext(os.path.basename(path))[0]
        spectra.append((stem, os.path.basename(path), energy, intensity))

    ctx = zmq.Context.instance()
    sock = open_feed(ctx, endpoint, pattern, bind)
    topic_bytes = topic.encode()
    try:
        if pattern == "pub" and wait_subscriber_s > 0:
            wait_for_subscribers(sock, topic_bytes, subscribers, wait_subscriber_s)
        elif pattern == "push":
            # A bound PUSH with no PULL connected blocks on send; bound the wait.
            sock.setsockopt(zmq.SNDTIMEO, int(max(wait_subscriber_s, 0.001) * 1000))
        sent = 0
        start = time.monotonic()
        for round_ in range(1, repeat + 1):
            for stem, name, energy, intensity in spectra:
                if rate_hz > 0:  # pace on an absolute schedule, so that delays do not add up
                    delay = start + sent / rate_hz - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                ident = id_prefix + stem + ("-r%d" % round_ if repeat > 1 else "")
                body = spectrum_message(ident, energy, intensity, raw,
                                        {"file": name} if meta else None)
                try:
                    sock.send_multipart([topic_bytes, body])
                except zmq.Again:
                    raise ClientError("no PULL socket took the message within %g s"
                                      % wait_subscriber_s)
                sent += 1
                print("sent %s: %d points as %s, %d bytes" % (
                    ident, len(energy), "bin " + raw if raw else "arrays", len(body)), file=out)
        return sent
    finally:
        # close() waits up to LINGER ms for queued messages to leave: without it the last
        # messages could die with the process. (A connected PUSH whose daemon never shows up
        # keeps its messages queued; they are lost when the linger expires.)
        sock.close(linger=10000)


# =================================================================================================
# subscribe: the dashboard side
# =================================================================================================

def f4_values(blob):
    """Decodes an output bin (always little-endian float32) into a list of Python floats."""
    values = array.array("f")
    values.frombytes(blob)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def _num(x, digits=3):
    """A number for people: integers as they are, floats with `digits` decimals, NaN as nan."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, int) or (math.isfinite(x) and x == int(x) and abs(x) < 1e6):
        return str(int(x))
    return "%.*f" % (digits, x)


def _ms(us):
    return "%.2f ms" % (float(us) / 1000.0)


def format_estimate(m):
    """One line for an `estimate`: each parameter with its confidence (categorical) or
    uncertainty (continuous), novelty, energy shift and latencies."""
    parts = []
    for name, value in m["params"].items():
        if name in m.get("confidence", {}):
            parts.append("%s=%s (conf %.2f)" % (name, _num(value), float(m["confidence"][name])))
        elif name in m.get("uncertainty", {}):
            parts.append("%s=%s +- %s" % (name, _num(value), _num(float(m["uncertainty"][name]))))
        else:
            parts.append("%s=%s" % (name, _num(value)))
    lat = m.get("latency_us", {})
    latency = "service " + _ms(lat.get("service", 0))
    if "end_to_end" in lat:
        latency += ", end-to-end " + _ms(lat["end_to_end"])
    return "estimate id=%s seq=%s %s novelty=%s%s shift=%+.2f eV latency %s" % (
        m["id"], m.get("seq"), " ".join(parts), _num(float(m["novelty"]), 2),
        "" if m.get("in_library", True) else " (OUTSIDE the library)",
        float(m.get("energy_shift_ev", 0.0)), latency)


def _summary(values, categorical, names=()):
    """Per-pixel summary: counts per value for a categorical map, else min/median/max."""
    finite = sorted(v for v in values if not math.isnan(v))
    if not finite:
        return "all NaN"
    if categorical:
        counts = {}
        for v in finite:
            label = names[int(v)] if names and 0 <= int(v) < len(names) else _num(v)
            counts[label] = counts.get(label, 0) + 1
        return " ".join("%s:%d" % kv for kv in sorted(counts.items()))
    return "min %s median %s max %s" % (_num(finite[0]), _num(finite[len(finite) // 2]),
                                        _num(finite[-1]))


def format_estimate_map(m):
    """One line for an `estimate_map`: id, shape, and a summary of every per-pixel array (each a
    bin of little-endian float32, one value per pixel, NaN for pixels that were not judged)."""
    categorical = set(m.get("confidence", {}))
    parts = []
    for name, blob in m["params"].items():
        names = m.get("categories", {}).get(name, ())
        parts.append("%s[%s]" % (name, _summary(f4_values(blob), name in categorical, names)))
    parts.append("novelty[%s]" % _summary(f4_values(m["novelty"]), False))
    return "estimate_map id=%s seq=%s shape=%s rejected_pixels=%s %s latency compute %s" % (
        m["id"], m.get("seq"), "x".join(str(n) for n in m["shape"]), m.get("rejected_pixels"),
        " ".join(parts), _ms(m.get("latency_us", {}).get("compute", 0)))


def format_error(m):
    return "error id=%s code=%s field=%s: %s" % (m.get("id"), m.get("code"), m.get("field"),
                                                 m.get("message"))


def format_metrics(m):
    lat = m.get("latency_us", {})
    return ("metrics rate=%.1f Hz latency p50 %s p99 %s (n=%s) received=%s published=%s "
            "rejected=%s dropped=%s queue_depth=%s model_generation=%s" % (
                float(m.get("rate_hz", 0)), _ms(lat.get("p50", 0)), _ms(lat.get("p99", 0)),
                lat.get("count", 0), m.get("received"), m.get("published"), m.get("rejected"),
                m.get("dropped"), m.get("queue_depth"), m.get("model_generation")))


FORMATTERS = {"estimate": format_estimate, "estimate_map": format_estimate_map,
              "error": format_error, "metrics": format_metrics}


def to_json_ready(value, omit_bins=False):
    """Makes a decoded message JSON-serialisable: bins (always float32 on the output) become
    lists of floats, or a short note with --omit-bins; NaN and infinities become null."""
    if isinstance(value, dict):
        return {k: to_json_ready(v, omit_bins) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_ready(v, omit_bins) for v in value]
    if isinstance(value, bytes):
        if omit_bins:
            return "<omitted: %d float32>" % (len(value) // 4)
        return [v if math.isfinite(v) else None for v in f4_values(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def subscribe(endpoint, topics=OUTPUT_TOPICS, count=0, seconds=0.0, as_json=False,
              omit_bins=False, out=sys.stdout):
    """Prints the daemon's output messages, one line each. Stops after `count` answers
    (estimate, estimate_map, error; metrics only count when they are the only topic) or after
    `seconds`, whichever comes first (0 = no limit). Returns the number counted."""
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)  # never drop on our side; the daemon's PUB may still drop
    sock.connect(endpoint)
    for topic in topics:
        # Subscriptions match by prefix ("estimate" also brings "estimate_map"), so frame 0 is
        # compared exactly below.
        sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
    counted_topics = set(topics) & set(ANSWER_TOPICS) or set(topics)
    deadline = time.monotonic() + seconds if seconds > 0 else None
    counted = 0
    try:
        while not count or counted < count:
            wait_ms = 1000 if deadline is None else int((deadline - time.monotonic()) * 1000)
            if wait_ms <= 0:
                break
            if not sock.poll(wait_ms, zmq.POLLIN):
                continue
            frames = sock.recv_multipart()
            topic = frames[0].decode("utf-8", "replace")
            if topic not in topics or len(frames) != 2:
                continue
            message = msgpack.unpackb(frames[1], raw=False)
            if as_json:
                line = json.dumps({"topic": topic, "message": to_json_ready(message, omit_bins)},
                                  allow_nan=False)
            else:
                line = FORMATTERS.get(topic, lambda m: "%s %s" % (topic, m))(message)
            print(line, file=out, flush=True)  # flush: someone may be reading us through a pipe
            if topic in counted_topics:
                counted += 1
    finally:
        sock.close(linger=0)
    return counted


# =================================================================================================
# library and status: the control socket
# =================================================================================================

def control_request(endpoint, cmd, timeout_s=5.0):
    """Sends {"cmd": cmd} on a fresh REQ socket and returns the reply map.

    A REQ socket must strictly alternate send and receive. If a reply does not come in time,
    that socket still waits for it and refuses to send again, so it cannot be reused: close it
    (LINGER 0 throws the unsent request away) and make a new one for the next request - which is
    why this function opens a socket per request.
    """
    sock = zmq.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
    try:
        sock.connect(endpoint)
        sock.send(msgpack.packb({"cmd": cmd}, use_bin_type=True))
        try:
            reply = msgpack.unpackb(sock.recv(), raw=False)
        except zmq.Again:
            raise ClientError("no reply to '%s' from %s within %g s; is xasmapd running?"
                              % (cmd, endpoint, timeout_s))
    finally:
        sock.close()
    if not reply.get("ok"):
        raise ClientError("'%s' refused: %s" % (cmd, reply.get("error")))
    return reply


def library_rows(reply):
    """The library map as CSV rows: a header `label,<one column per parameter>,x,y[,z...]`,
    then one row per library spectrum. Generic over the parameters the library has."""
    params = [p["name"] for p in reply["parameters"]]
    dims = int(reply["map_dims"])
    axes = ["x", "y", "z"][:dims] if dims <= 3 else ["map%d" % (i + 1) for i in range(dims)]
    rows = [["label"] + params + axes]
    for s in reply["spectra"]:
        rows.append([s["label"]] + [s["params"].get(p, "") for p in params] +
                    [repr(float(c)) for c in s["map"]])
    return rows


# =================================================================================================
# Command line
# =================================================================================================

def _topics(text):
    topics = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in topics if t not in OUTPUT_TOPICS]
    if unknown or not topics:
        raise argparse.ArgumentTypeError("topics are a comma-separated subset of %s"
                                         % ",".join(OUTPUT_TOPICS))
    return topics


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError("must not be negative")
        return value
    return parse


def build_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] + " Subcommands: publish, subscribe, library, "
        "status. The protocol is specified in docs/protocol.md.",
        epilog="examples:" + __doc__.split("Examples (a daemon on the default endpoints):\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("publish", help="send spectrum files to the daemon's input",
                       description="Read spectrum files (CSV with a header line such as "
                       "energy_eV,intensity, or whitespace-separated .xy/.dat with '#' comments) "
                       "and send each as one protocol v1 'spectrum' message. The id is the file "
                       "name without extension, after --id-prefix.")
    p.add_argument("files", nargs="+", metavar="FILE", help="spectrum files to send")
    p.add_argument("--input", "--endpoint", dest="endpoint", default=DEFAULT_INPUT, metavar="EP",
                   help="the daemon's input endpoint, as xasmap feed --input (default %(default)s)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--bind", dest="bind", action="store_true", default=True,
                      help="bind the endpoint; the daemon connects (default, as xasmapd expects)")
    mode.add_argument("--connect", dest="bind", action="store_false",
                      help="connect to the endpoint (for a daemon with input.bind: true)")
    p.add_argument("--pattern", choices=("pub", "push"), default="pub",
                   help="pub for a daemon with input.pattern: sub (default), push for pull")
    p.add_argument("--raw", choices=("f4", "f8"),
                   help="send energy and intensity as msgpack bin of little-endian float32 (f4) "
                   "or float64 (f8) instead of arrays of numbers")
    p.add_argument("--id-prefix", default="", metavar="TEXT",
                   help="prepended to every id (default: none)")
    p.add_argument("--rate", type=_positive(float), default=0.0, metavar="HZ",
                   help="messages per second (default 0: as fast as possible)")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="send the files N times; with N > 1 the ids end in -r1, -r2, ...")
    p.add_argument("--wait-subscriber", type=_positive(float), default=10.0, metavar="SECONDS",
                   help="pub: wait up to this long for the daemon's subscription before sending "
                   "(0: do not wait, and risk losing the first messages); push: how long a send "
                   "may wait for a receiver (default %(default)s)")
    p.add_argument("--subscribers", type=int, default=1, metavar="N",
                   help="pub: wait for N subscriptions, e.g. N daemons (default 1)")
    p.add_argument("--topic", default="spectrum",
                   help="the input topic (the daemon's input.topic; default %(default)s)")
    p.add_argument("--no-meta", dest="meta", action="store_false",
                   help="do not send meta {\"file\": NAME}")
    p.add_argument("--energy-column", metavar="NAME|N",
                   help="energy column by header name or 1-based number (default: detect)")
    p.add_argument("--intensity-column", metavar="NAME|N",
                   help="intensity column by header name or 1-based number (default: detect)")

    s = sub.add_parser("subscribe", help="print the daemon's estimates, errors and metrics",
                       description="Subscribe to the daemon's output and print one line per "
                       "message (or one JSON object per line with --json).")
    s.add_argument("--output", "--endpoint", dest="endpoint", default=DEFAULT_OUTPUT, metavar="EP",
                   help="the daemon's output endpoint, as xasmap watch --output (default %(default)s)")
    s.add_argument("--topics", type=_topics, default=list(OUTPUT_TOPICS), metavar="LIST",
                   help="comma-separated topics (default %s)" % ",".join(OUTPUT_TOPICS))
    s.add_argument("--count", type=_positive(int), default=0, metavar="N",
                   help="stop after N answers (estimate, estimate_map, error messages; metrics "
                   "count only when they are the only topic); 0 = no limit (default)")
    s.add_argument("--seconds", type=_positive(float), default=0.0, metavar="S",
                   help="stop after S seconds; 0 = no limit (default). With --count, the exit "
                   "status is 1 if fewer than N arrived in time")
    s.add_argument("--json", action="store_true",
                   help='one JSON object per line: {"topic": T, "message": {...}}; bins become '
                   "lists of floats, NaN becomes null")
    s.add_argument("--omit-bins", action="store_true",
                   help="with --json, replace bin arrays by a note giving their length")

    for name, what in (("library", "print the library map as CSV: label, parameters, map "
                                   "coordinates (label,charge,tendq,x,y for the default library)"),
                       ("status", "print the daemon's status as JSON")):
        c = sub.add_parser(name, help=what, description=what[0].upper() + what[1:] + ", asked "
                           "on the control socket.")
        c.add_argument("--control", "--endpoint", dest="endpoint", default=DEFAULT_CONTROL, metavar="EP",
                       help="the daemon's control endpoint, as xasmap status --control (default "
                       "%(default)s)")
        c.add_argument("--timeout", type=_positive(float), default=5.0, metavar="SECONDS",
                       help="how long to wait for the reply (default %(default)s)")
        if name == "library":
            c.add_argument("--json", action="store_true", help="print the whole reply as JSON")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        if args.command == "publish":
            n = publish(args.endpoint, args.files, args.pattern, args.bind, args.raw,
                        args.id_prefix, args.rate, max(args.repeat, 1), args.wait_subscriber,
                        max(args.subscribers, 1), args.topic, args.meta, args.energy_column,
                        args.intensity_column)
            print("published %d message(s) to %s" % (n, args.endpoint), file=sys.stderr)
        elif args.command == "subscribe":
            n = subscribe(args.endpoint, args.topics, args.count, args.seconds, args.json,
                          args.omit_bins)
            if args.count and n < args.count:
                print("only %d of %d answers within %g s" % (n, args.count, args.seconds),
                      file=sys.stderr)
                return 1
        elif args.command == "library":
            reply = control_request(args.endpoint, "library", args.timeout)
            if args.json:
                print(json.dumps(to_json_ready(reply), indent=2))
            else:
                csv.writer(sys.stdout, lineterminator="\n").writerows(library_rows(reply))
        elif args.command == "status":
            print(json.dumps(to_json_ready(control_request(args.endpoint, "status", args.timeout)),
                             indent=2))
    except (ClientError, OSError, zmq.ZMQError) as e:
        print("xasmap_client %s: %s" % (args.command, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
