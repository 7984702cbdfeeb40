"""Open a page in Debian's headless Chromium, offline, and ask it questions: for report's tests and its bench.

Chromium is driven over --remote-debugging-pipe (the DevTools protocol as NUL-separated JSON on fds 3 and 4,
no port, no package): the page loads with the network emulated offline, every request it makes is recorded
(a self-contained page makes none but file:, data: and blob:), and console errors and uncaught exceptions
are collected. `Page.ready()` waits for report's page to set #ready's data-ms (performance.now() when every
plot in view is drawn and the table built), so the timing is Chromium's own; `Page.draw_all()` scrolls to
every other plot and waits until it is drawn.
"""
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time


class Browser:
    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="runkit-chromium-")
        to_chrome, self._send = os.pipe()
        self._receive, from_chrome = os.pipe()
        to_chrome, from_chrome = (_above(fd, 10) for fd in (to_chrome, from_chrome))  # never 3 or 4 already

        def fds():  # Chromium reads commands on fd 3 and writes answers on fd 4
            for fd, target in ((to_chrome, 3), (from_chrome, 4)):
                os.dup2(fd, target)  # inheritable, unlike the pipe's own ends
        self.proc = subprocess.Popen(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer, self._next = b"", 0
        self.events = []

    def call(self, method, session=None, **params):
        """Send one command and return its result (events that arrive meanwhile are kept in self.events)."""
        self._next += 1
        message = {"id": self._next, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._send, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def _read(self):
        while b"\0" not in self._buffer:
            chunk = os.read(self._receive, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed its pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def open(self, path):
        """A new tab, offline, on the file at path."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.call(f"{domain}.enable", session)
        self.call("Network.emulateNetworkConditions", session, offline=True, latency=0, downloadThroughput=-1,
                  uploadThroughput=-1)
        self.call("Page.navigate", session, url="file://" + os.path.abspath(path))
        return Page(self, session)

    def close(self):
        self.proc.kill()
        self.proc.wait()
        os.close(self._send)
        os.close(self._receive)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _above(fd, low):
    """fd moved to a number >= low (the old one closed)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    os.close(fd)
    return moved


class Page:
    def __init__(self, browser, session):
        self.browser, self.session = browser, session

    def eval(self, expression):
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.browser.call("Runtime.evaluate", self.session, expression=expression, returnByValue=True,
                                   awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def ready(self, timeout=120, selector="#ready"):
        """performance.now() in ms when the page said it was ready (data-ms on selector); raises after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ms = self.eval(f"document.querySelector({json.dumps(selector)})?.dataset.ms ?? null")
            if ms is not None:
                return float(ms)
            time.sleep(0.05)
        raise TimeoutError(f"the page did not set {selector}'s data-ms in {timeout} s; errors: {self.errors()}")

    def draw_all(self, timeout=120):
        """Scroll each plot report's page draws lazily ([data-draw]) into view in turn and wait until it is
        drawn (its data-ms); the milliseconds that took, by Chromium's clock."""
        return self.eval(f"""(async () => {{
            const start = performance.now(), deadline = start + {timeout * 1000};
            for (const div of document.querySelectorAll("[data-draw]")) {{
                div.scrollIntoView();
                while (!div.dataset.ms) {{
                    if (performance.now() > deadline) throw new Error("a plot was not drawn in {timeout} s");
                    await new Promise((wake) => setTimeout(wake, 10));
                }}
            }}
            return performance.now() - start;
        }})()""")

    def _mine(self):
        return [e for e in self.browser.events if e.get("sessionId") == self.session]

    def errors(self):
        """Console errors, uncaught exceptions and error log entries, as text."""
        out = []
        for event in self._mine():
            params = event.get("params", {})
            if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif event["method"] == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                out.append(details.get("exception", {}).get("description") or details.get("text"))
            elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(params["entry"].get("text"))
        return out

    def requests(self):
        """The URLs of every request the page made."""
        return [e["params"]["request"]["url"] for e in self._mine() if e["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path, width=1280, height=900):
        """A PNG of the page's first screen, at this window size."""
        import base64
        self.browser.call("Emulation.setDeviceMetricsOverride", self.session, width=width, height=height,
                          deviceScaleFactor=1, mobile=False)
        time.sleep(1)  # the responsive plots redraw at the new size
        shot = self.browser.call("Page.captureScreenshot", self.session, format="png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
