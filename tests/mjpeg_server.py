"""A real local HTTP server streaming ``multipart/x-mixed-replace`` MJPEG, like a network camera.

The stream is live: one sequence of parts paced at ``fps`` from the first connection on, shared by
every connection (a client that reconnects misses what was sent meanwhile, as with a real camera). A
part the script marks ``None`` is garbage of the same length instead of a JPEG picture.
"""

from __future__ import annotations

import base64
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import cv2
import numpy as np

BOUNDARY = "edgeposeframe"


def jpeg(image: np.ndarray, quality: int = 90) -> bytes:
    """Encode a BGR image as JPEG."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def garbage(size: int, seed: int) -> bytes:
    """Bytes that start like a JPEG and are noise after that: what a flaky camera's broken frame looks like."""
    noise = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    return b"\xff\xd8\xff\xe0" + noise[4:]


class MjpegServer:
    """Serves ``/stream`` on 127.0.0.1 (any other path: 404).

    Args:
        part: The JPEG bytes of part ``n`` (from 0), or ``None`` for a garbage part; called once per part.
        count: Parts in the stream; after the last, connections stay open and silent (0: no end).
        fps: Parts per second.
        content_length: Send a ``Content-Length`` header with each part (cameras differ); without one, a part
            ends at the boundary line sent right after it.
        auth: ``user:password`` the client must send (HTTP basic authentication), or ``None``.
        port: The port to listen on (0: a free one); a camera that comes back comes back on its own port.
    """

    def __init__(
        self,
        part: Callable[[int], bytes | None],
        count: int = 0,
        fps: float = 20.0,
        content_length: bool = True,
        auth: str | None = None,
        port: int = 0,
    ) -> None:
        self._part = part
        self._auth = None if auth is None else "Basic " + base64.b64encode(auth.encode()).decode()
        self.count = count
        self.fps = fps
        self.content_length = content_length
        self._cond = threading.Condition()
        self._parts: list[bytes] = []
        #: Parts sent as pictures and as garbage so far (made once, whoever is connected).
        self.good = 0
        self.bad = 0
        self.connections = 0
        self._stop = threading.Event()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/stream"

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != "/stream":
                    self.send_error(404)
                    return
                if server._auth is not None and self.headers.get("Authorization") != server._auth:
                    self.send_error(401)
                    return
                with server._cond:
                    server.connections += 1
                    if server.connections == 1:  # the camera "starts" when its first viewer comes
                        threading.Thread(target=server._produce, daemon=True).start()
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                delimiter = f"--{BOUNDARY}\r\n".encode()
                try:
                    if not server.content_length:  # each part ends with the next one's boundary, sent at once
                        self.wfile.write(delimiter)
                    for data in server._follow():
                        if server.content_length:
                            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                            self.wfile.write(head.encode() + data + b"\r\n")
                        else:
                            self.wfile.write(b"Content-Type: image/jpeg\r\n\r\n" + data + b"\r\n" + delimiter)
                        self.wfile.flush()
                except OSError:
                    pass  # the client went away

        return Handler

    def _produce(self) -> None:
        start = time.monotonic()
        n = 0
        while not self._stop.is_set() and (not self.count or n < self.count):
            self._stop.wait(max(0.0, start + n / self.fps - time.monotonic()))
            data = self._part(n)
            if data is None:
                previous = self._parts[-1] if self._parts else b"\0" * 20000
                data = garbage(len(previous), n)
                self.bad += 1
            else:
                self.good += 1
            with self._cond:
                self._parts.append(data)
                self._cond.notify_all()
            n += 1

    def _follow(self) -> Iterator[bytes]:
        """The parts made from now on, as they are made (a new connection starts at the newest one)."""
        with self._cond:
            sent = max(0, len(self._parts) - 1)
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda n=sent: len(self._parts) > n or self._stop.is_set(), 0.5)
                fresh = self._parts[sent:]
            yield from fresh
            sent += len(fresh)

    def start(self) -> MjpegServer:
        """Start serving; parts are made from the first connection on."""
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def finished(self) -> bool:
        """Whether every part of a finite stream was made."""
        return bool(self.count) and self.good + self.bad >= self.count

    def close(self) -> None:
        """Stop producing and serving."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def serving(part: Callable[[int], bytes | None], **kwargs: object) -> Iterator[MjpegServer]:
    """Run an :class:`MjpegServer` for the duration of a ``with`` block."""
    server = MjpegServer(part, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.close()
