"""The preview's HTTP server: routes, ``Host``/``Origin`` and bearer-token checks, MJPEG and Server-Sent Events.

Standard library only (``http.server``). :class:`~edgepose.sinks.preview.listener.Listener` reads each
request head against a deadline and runs at most ``max_connections`` requests at once, each in a
daemon thread with a socket timeout, so a client that connects and never reads only ever blocks its
own thread. Who may ask is checked before any work: the ``Host``/``Origin`` guard, then the token.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from edgepose.health import PipelineStats
from edgepose.pose import BackendInfo
from edgepose.sinks.preview.guard import host_is_loopback, origin_is_loopback
from edgepose.sinks.preview.hub import EncoderFailed, Overflow, PreviewHub
from edgepose.sinks.preview.listener import Limits, Listener, one_line
from edgepose.sinks.preview.page import PAGE
from edgepose.sinks.snapshot.sink import CONTENT_TYPE

if TYPE_CHECKING:
    from edgepose.sinks.snapshot.sink import Snapshot

log = logging.getLogger(__name__)

BOUNDARY = "edgeposeframe"
#: Seconds a socket read or write may take before the client is dropped.
SOCKET_TIMEOUT_S = 10.0
#: Kernel send buffer of a stream connection: bounds what a stalled client holds (and costs) before its
#: writes block and the encoder stops working for it.
STREAM_SNDBUF = 64 * 1024
#: Seconds between keep-alive comments on an idle event stream, and between ``stats`` events.
KEEPALIVE_S = 1.0


@dataclass
class PreviewContext:
    """Everything the request handler needs.

    Attributes:
        hub: Shared results and JPEGs.
        stats: Pipeline counters.
        info: Backend description at start (``stats`` has the current one once it has a backend).
        mode: Privacy mode, shown on the page.
        min_score: Keypoints below this score are not drawn (the page greys them out).
        token: Bearer token; empty when none is required.
        stale_after_s: ``/healthz`` fails when the last frame is older than this.
        metrics: Renders ``/metrics`` text and its content type, or ``None`` without prometheus_client.
        loopback_only: Serve only requests whose ``Host`` (and ``Origin``, if sent) name this machine: a
            loopback address without a token, where nothing else stops a DNS-rebinding page.
        snapshot: The last snapshot, for ``/snapshot.jpg``.
        snapshot_note: Why there is none, for a 404 from ``/snapshot.jpg``.
    """

    hub: PreviewHub
    stats: PipelineStats
    info: BackendInfo
    mode: str
    min_score: float
    token: str
    stale_after_s: float
    metrics: tuple[Callable[[], bytes], str] | None = None
    loopback_only: bool = False
    snapshot: Snapshot | None = None
    snapshot_note: str = "snapshots are off"
    active: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)


class PreviewServer(Listener):
    """The listener serving :class:`PreviewHandler` requests with the :class:`PreviewContext`."""

    def __init__(
        self, address: tuple[str, int], context: PreviewContext, family: socket.AddressFamily, limits: Limits
    ) -> None:
        self.context = context
        super().__init__(address, family, self._handle_request, limits)

    def _handle_request(self, conn: socket.socket, address: Any, head: bytes) -> None:
        PreviewHandler(conn, address, self, head)


def _redact(text: str) -> str:
    """Hide a ``token=`` query value in a request line before it is logged."""
    head, sep, rest = text.partition("token=")
    if not sep:
        return text
    end = min((i for i in (rest.find("&"), rest.find(" ")) if i >= 0), default=len(rest))
    return f"{head}token=***{rest[end:]}"


class PreviewHandler(BaseHTTPRequestHandler):
    """Serves one request; long-lived for ``/stream.mjpg`` and ``/events``."""

    server: PreviewServer
    timeout = SOCKET_TIMEOUT_S
    server_version = "edgepose"
    sys_version = ""

    def __init__(self, request: socket.socket, client_address: Any, server: PreviewServer, head: bytes) -> None:
        self._head = head
        self._answered = False
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        """Read the request from the head the listener already received (one request per connection)."""
        super().setup()
        self.rfile.close()
        self.rfile = io.BytesIO(self._head)

    def send_response(self, code: int, message: str | None = None) -> None:
        """Send the status line, remembering that an answer has begun."""
        self._answered = True
        super().send_response(code, message)

    def log_message(self, format: str, *args: Any) -> None:
        """Log requests at debug level, tokens redacted."""
        log.debug("preview %s: %s", self.address_string(), _redact(format % args))

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _authorized(self, query: dict[str, list[str]]) -> bool:
        token = self.server.context.token
        if not token:
            return True
        offered = ""
        header = self.headers.get("Authorization", "")
        if header[:7].lower() == "bearer ":
            offered = header[7:].strip()
        elif query.get("token"):
            offered = query["token"][0]
        return hmac.compare_digest(offered.encode(), token.encode())

    def _foreign(self) -> str:
        """Why the ``Host``/``Origin`` guard refuses this request, or ``""``."""
        if not self.server.context.loopback_only:
            return ""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1 or (hosts and not host_is_loopback(hosts[0])):
            return "Host"
        target = urlsplit(self.path).netloc  # an absolute-form target (GET http://name/...) names the site too
        if target and not host_is_loopback(target):
            return "Host"
        origin = self.headers.get("Origin")
        if origin is not None and not origin_is_loopback(origin):
            return "Origin"
        return ""

    def do_GET(self) -> None:
        """Check who asks (``Host``/``Origin``, then the token; not for ``/healthz``), then route."""
        parts = urlsplit(self.path)
        if parts.path != "/healthz":
            foreign = self._foreign()
            if foreign:
                log.debug("preview %s: refused a request for another %s", self.address_string(), foreign)
                status = HTTPStatus.MISDIRECTED_REQUEST if foreign == "Host" else HTTPStatus.FORBIDDEN
                self._send(status, f"this preview only answers requests for 127.0.0.1, localhost or [::1] (the "
                           f"{foreign} header names another site)\n".encode(), "text/plain; charset=utf-8")  # fmt: skip
                return
            if not self._authorized(parse_qs(parts.query)):
                self._send(HTTPStatus.UNAUTHORIZED, b"a bearer token is required (Authorization header or ?token=)\n",
                           "text/plain; charset=utf-8", {"WWW-Authenticate": 'Bearer realm="edgepose"'})  # fmt: skip
                return
        route = ROUTES.get(parts.path)
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8")
            return
        context = self.server.context
        with context.cond:
            context.active += 1
        try:
            route(self)
        except (OSError, ValueError) as exc:  # the client went away or timed out
            log.debug("preview %s: %s ended: %s", self.address_string(), parts.path, exc)
            self.close_connection = True
        except Exception as exc:  # one line in the journal, and a 500 if nothing was sent yet
            log.error("preview: %s failed for %s: %s", parts.path, self.address_string(), one_line(exc))
            self.close_connection = True
            if not self._answered:
                with contextlib.suppress(OSError):
                    self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error (see the log)\n",
                               "text/plain; charset=utf-8")  # fmt: skip
        finally:
            with context.cond:
                context.active -= 1
                context.cond.notify_all()

    def page(self) -> None:
        """``/``: the self-contained page."""
        self._send(HTTPStatus.OK, PAGE, "text/html; charset=utf-8")

    def pose(self) -> None:
        """``/pose``: the newest result as JSON (503 before the first frame)."""
        context = self.server.context
        _, result = context.hub.latest()
        if result is None:
            self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "no frame yet"})
            return
        self._json(HTTPStatus.OK, {**result.to_dict(), **self._status()})

    def healthz(self) -> None:
        """``/healthz``: 200 while the last frame is fresh, else 503 with the reason and where the source stands.

        It answers anyone, so it tells the source's state and times (``waiting for the camera for 45 s, next try
        in 8 s``), never its reason, which may name a stream's address.
        """
        context = self.server.context
        age = context.stats.frame_age()
        source = context.stats.source
        if age is None:
            status, text = HTTPStatus.SERVICE_UNAVAILABLE, "stale: no frame processed yet"
        elif age > context.stale_after_s:
            status = HTTPStatus.SERVICE_UNAVAILABLE
            text = f"stale: last frame {age:.1f} s ago (limit {context.stale_after_s:g} s)"
        else:
            status, text = HTTPStatus.OK, f"ok: last frame {age:.2f} s ago"
        if status != HTTPStatus.OK and source.state != "ok":
            text += f"; {source.headline()}"
        self._send(status, (text + "\n").encode(), "text/plain; charset=utf-8")

    def metrics(self) -> None:
        """``/metrics``: Prometheus text format."""
        metrics = self.server.context.metrics
        if metrics is None:
            self._send(HTTPStatus.NOT_IMPLEMENTED, b"metrics need prometheus-client: pip install 'edgepose[preview]'\n",
                       "text/plain; charset=utf-8")  # fmt: skip
            return
        render, content_type = metrics
        self._send(HTTPStatus.OK, render(), content_type)

    def snapshot(self) -> None:
        """``/snapshot.jpg``: the last snapshot (404 with the reason when there is none)."""
        context = self.server.context
        snapshot = context.snapshot
        if snapshot is None:
            self._send(HTTPStatus.NOT_FOUND, f"{context.snapshot_note}\n".encode(), "text/plain; charset=utf-8")
            return
        self._send(HTTPStatus.OK, snapshot.jpeg, CONTENT_TYPE)

    def stream(self) -> None:
        """``/stream.mjpg``: ``multipart/x-mixed-replace`` JPEGs, the newest one whenever the client is ready."""
        hub = self.server.context.hub
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        hub.count("stream", 1)
        first_seq, _ = hub.latest()
        sent = 0
        timed_out = False
        try:
            last = 0
            while not hub.closing:
                last, jpeg = hub.next_jpeg(last, KEEPALIVE_S)
                if jpeg:
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    self.wfile.write(head.encode() + jpeg + b"\r\n")
                    sent += 1
        except TimeoutError:  # the client stopped reading: its socket stayed full for SOCKET_TIMEOUT_S
            timed_out = True
            log.info("preview: cut off a stream client that stopped reading %s", self.address_string())
        except EncoderFailed as exc:  # no picture can be made: end the stream, the page reconnects
            log.info("preview: ended a stream for %s: %s", self.address_string(), exc)
        finally:
            hub.client_left("stream", hub.latest()[0] - first_seq - sent, dropped=timed_out)

    def events(self) -> None:
        """``/events``: every result as a Server-Sent Event, plus a ``stats`` event each second.

        Resumes after ``Last-Event-ID`` while the result is still held; a client too far behind is dropped.
        """
        context = self.server.context
        hub = context.hub
        self.close_connection = True
        last_id = self.headers.get("Last-Event-ID", "").strip()
        cursor = hub.resume_point(int(last_id) if last_id.lstrip("-").isdigit() else None)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        hub.count("events", 1)
        try:
            self.wfile.write(b"retry: 1000\n\n" + self._stats_event())
            next_stats = time.monotonic() + KEEPALIVE_S
            while True:
                try:
                    batch = hub.events_after(cursor, KEEPALIVE_S)
                except Overflow:
                    log.info("preview: dropped a slow event client %s", self.address_string())
                    return
                out = b"".join(message for _, message in batch)  # made once in the hub, for every client
                if batch:
                    cursor = batch[-1][0]
                elif hub.closing:
                    return
                if time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + KEEPALIVE_S
                    out += self._stats_event()
                if out:
                    self.wfile.write(out)
        finally:
            hub.count("events", -1)

    def _status(self) -> dict[str, Any]:
        context = self.server.context
        backend = context.stats.backend_info(context.info)  # the CPU's after an EdgeTPU fallback
        return {"backend": backend.to_dict(), "mode": context.mode, "min_score": context.min_score,
                "stats": context.stats.snapshot(), "recent_events": context.hub.recent_events(),
                "snapshot": context.snapshot.info() if context.snapshot else None}  # fmt: skip

    def _stats_event(self) -> bytes:
        return f"event: stats\ndata: {json.dumps(self._status())}\n\n".encode()


ROUTES: dict[str, Callable[[PreviewHandler], None]] = {
    "/": PreviewHandler.page,
    "/index.html": PreviewHandler.page,
    "/pose": PreviewHandler.pose,
    "/healthz": PreviewHandler.healthz,
    "/metrics": PreviewHandler.metrics,
    "/stream.mjpg": PreviewHandler.stream,
    "/events": PreviewHandler.events,
    "/snapshot.jpg": PreviewHandler.snapshot,
}
