#!/usr/bin/python3
"""A screenshot of the xasmap web dashboard, taken with Debian's headless Chromium once the page
shows what it should (docs/dashboard.md):

    dashboard_screenshot.py URL OUT.png [--wait-maps N] [--timeout S]

waits until the page is connected, has drawn the library map, and (with --wait-maps) shows N
stack maps, then writes OUT.png. The Browser class drives Chromium through its DevTools protocol
(python3-websocket); ctest daemon_dashboard uses it too. Exits 1 when the page never got there
(the screenshot is written anyway).
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time


class Browser:
    """Debian's headless Chromium driven through the DevTools protocol (python3-websocket)."""

    def __init__(self, workdir=None, niceness=0):
        """`workdir`: where chromium.log goes (default: the throw-away profile folder); `niceness`:
        run Chromium at that scheduling niceness (a browser beside a busy daemon)."""
        import re
        import tempfile
        self.profile = tempfile.mkdtemp(prefix="xasmap-chromium-")
        self.log = open(os.path.join(workdir or self.profile, "chromium.log"), "w")
        self.proc = subprocess.Popen((["nice", "-n", str(niceness)] if niceness else []) + ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                      "--remote-debugging-port=0", "--user-data-dir=" + self.profile,
                                      "--window-size=1400,1700", "about:blank"],
                                     stderr=subprocess.PIPE, stdout=self.log, text=True)
        self.port = None
        deadline = time.time() + 60
        while time.time() < deadline and self.port is None:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            m = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
        if self.port is None:
            raise RuntimeError("chromium did not start its DevTools endpoint")
        self.reader = threading.Thread(target=self._copy_stderr, daemon=True)
        self.reader.start()
        self.tabs = []

    def _copy_stderr(self):
        for line in self.proc.stderr:
            self.log.write(line)

    def open(self, url):
        """A new tab at `url`: its DevTools connection."""
        import urllib.request
        import websocket
        req = urllib.request.Request("http://127.0.0.1:%d/json/new?%s" % (self.port, url), method="PUT")
        target = json.load(urllib.request.urlopen(req, timeout=10))
        tab = {"ws": websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30), "n": 0}
        self.tabs.append(tab)
        return tab

    def call(self, tab, method, **params):
        tab["n"] += 1
        tab["ws"].send(json.dumps({"id": tab["n"], "method": method, "params": params}))
        while True:
            reply = json.loads(tab["ws"].recv())
            if reply.get("id") == tab["n"]:
                if "error" in reply:
                    raise RuntimeError("%s: %s" % (method, reply["error"]))
                return reply["result"]

    def evaluate(self, tab, expression):
        result = self.call(tab, "Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError("%s: %s" % (expression, result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_for(self, tab, expression, expected, timeout=30.0):
        deadline = time.time() + timeout
        value = None
        while time.time() < deadline:
            try:
                value = self.evaluate(tab, expression)
            except RuntimeError as e:  # the page is still loading
                value = str(e)
            if value == expected:
                return value
            time.sleep(0.2)
        return value

    def screenshot(self, tab, path):
        import base64
        data = self.call(tab, "Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        for tab in self.tabs:
            tab["ws"].close()
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(10)
        self.log.close()
        import shutil
        shutil.rmtree(self.profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--wait-maps", type=int, default=0, help="wait until the page shows this many stack maps")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    browser = Browser()
    ok = True
    try:
        tab = browser.open(args.url)
        ready = ("document.getElementById('conn').className.includes('ok') && state.library.length > 0 && "
                 "document.querySelectorAll('#stacks .stack').length >= %d" % args.wait_maps)
        ok = browser.wait_for(tab, ready, True, args.timeout) is True
        time.sleep(0.5)  # the last event's drawing
        browser.screenshot(tab, args.out)
    finally:
        browser.close()
    if not ok:
        print("dashboard_screenshot.py: the page was not ready within %.0f s" % args.timeout, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
