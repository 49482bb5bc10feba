"""A real headless Chromium for tests: a DevTools session over a pipe, and a screenshot once a page is ready.

The DevTools session uses ``--remote-debugging-pipe`` (NUL-terminated JSON on file descriptors 3
and 4), so no WebSocket library is needed and no port is opened.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from conftest import need, needs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Marks a test that drives the real browser: skipped without Chromium (a failure under .ci/run).
needs_chromium = needs("Chromium", CHROMIUM is not None, "apt install chromium")


def need_chromium() -> None:
    """Skip the rest of a test without Chromium (a failure under .ci/run)."""
    need("Chromium", CHROMIUM is not None, "apt install chromium")


FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--force-device-scale-factor=1",
         "--hide-scrollbars")  # fmt: skip


class DevTools:
    """One page in a headless Chromium driven over the DevTools protocol."""

    def __init__(self, profile: Path, size: tuple[int, int] = (1000, 760)) -> None:
        assert CHROMIUM is not None
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire() -> None:  # in the child: fd 3 is what it reads, fd 4 what it writes
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.proc = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}",
             "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), preexec_fn=wire, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self._session = ""

    def call(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """Send one command (to the attached page, once there is one) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session:
            message["sessionId"] = self._session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                assert left > 0, f"no answer to {method}"
                ready, _, _ = select.select([self._from_chrome], [], [], left)
                if ready:
                    chunk = os.read(self._from_chrome, 1 << 20)
                    assert chunk, "chromium exited"
                    self._buffer += chunk
            raw, _, self._buffer = self._buffer.partition(b"\0")
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                assert "error" not in reply, reply["error"]
                result: dict[str, Any] = reply["result"]
                return result

    def open(self, url: str) -> None:
        """Open ``url`` in a new page and attach to it."""
        target = self.call("Target.createTarget", url=url)["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page and return its JSON value."""
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> None:
        """Poll until ``expression`` is truthy in the page."""
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            assert time.monotonic() < deadline, f"page never satisfied: {expression}"
            time.sleep(0.1)

    def screenshot(self) -> bytes:
        """Return a PNG of the page."""
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        """Quit the browser."""
        os.close(self._to_chrome)
        os.close(self._from_chrome)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def loaded_page(url: str, shot: Path, profile: Path, ready: str, size: tuple[int, int] = (1000, 760)) -> str:
    """Open ``url``, wait until the JavaScript ``ready`` holds, save a PNG screenshot to ``shot``, return the DOM.

    The page fills itself in from ``/events`` and the MJPEG stream: waiting for that (not a fixed time)
    keeps a busy machine from taking the picture too early.
    """
    browser = DevTools(profile, size)
    try:
        browser.open(url)
        # The viewport itself at ``size`` (a headless window of that size has a smaller one).
        browser.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1,
                     mobile=False)  # fmt: skip
        browser.wait_for(ready, timeout=60)
        dom: str = browser.evaluate("document.documentElement.outerHTML")
        shot.write_bytes(browser.screenshot())
    finally:
        browser.close()
    return dom
