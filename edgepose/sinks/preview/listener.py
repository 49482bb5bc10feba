"""Admission for the preview's HTTP server: a bounded number of threads, whatever the clients do.

One thread (the caller of :meth:`Listener.serve_forever`) accepts connections and reads every request
head (request line and headers) without blocking, against one deadline for the whole head; a client
that drips its headers costs a file descriptor and a small buffer, never a thread. A complete head is
handed to a new handler thread only while fewer than ``max_connections`` requests are being served
(``/healthz`` may use a few more, so a monitor still gets an answer while viewers fill the cap); beyond
that the client gets ``503`` with ``Retry-After``, written from this thread and closed. When too many
heads are half-sent, a new connection displaces the oldest of them (503), so a flood of slow clients
cannot lock out a quick one; a head that misses its deadline gets 408, an oversized one 414/431.
Anything a handler raises ends as one log line, never a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import re
import selectors
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Handles one request whose head was read: ``(connection, client address, head bytes)``.
Handle = Callable[[socket.socket, Any, bytes], None]

#: Longest request line (the standard library's ``http.server`` limit): longer gets 414.
MAX_REQUEST_LINE = 65536
#: Longest request head (line and headers): longer gets 431.
MAX_HEAD = 2 * MAX_REQUEST_LINE
#: Seconds between checks of the stop flag and of head deadlines.
POLL_S = 0.2
#: Seconds between two warnings about refused connections (the rest are counted).
WARN_EVERY_S = 60.0

_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")


@dataclass(frozen=True)
class Limits:
    """How much the server takes on at once.

    Attributes:
        max_connections: Requests served at once (each a thread); more get 503.
        healthz_reserve: Extra requests only ``/healthz`` may use, so health checks answer while the
            viewers fill ``max_connections``.
        max_pending: Connections still sending their request head; a new one displaces the oldest (503).
        head_deadline_s: Seconds a client has, from connecting, to send its whole request head.
    """

    max_connections: int = 8
    healthz_reserve: int = 2
    max_pending: int = 64
    head_deadline_s: float = 5.0


@dataclass
class _Pending:
    address: Any
    deadline: float
    head: bytearray = field(default_factory=bytearray)


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (a message's own newlines folded), for logs."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _response(status: str, body: str, extra: str = "") -> bytes:
    data = body.encode()
    head = f"HTTP/1.0 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(data)}\r\n"
    return (head + extra + "Connection: close\r\n\r\n").encode() + data


def _path(head: bytes) -> str:
    """Return the path of a request line (no query), or ``""``."""
    words = head.split(b"\n", 1)[0].split()
    return words[1].split(b"?", 1)[0].decode("latin-1") if len(words) >= 2 else ""


class Listener(socketserver.TCPServer):
    """Binds the address, admits connections within :class:`Limits` and runs each request in a thread.

    Args:
        address: ``(host, port)`` to listen on.
        family: ``AF_INET`` or ``AF_INET6``.
        handle: Serves one request in its own thread (see :data:`Handle`).
        limits: The caps and the head deadline.
    """

    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, handle: Handle, limits: Limits) -> None:
        self.address_family = family
        self.limits = limits
        self._handle = handle
        self._lock = threading.Lock()
        self._active = 0
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._pending: dict[socket.socket, _Pending] = {}
        self._warned_at = self._accept_warned_at = -WARN_EVERY_S
        self._unwarned = 0
        #: Connections refused, by reason: ``busy`` (a cap), ``slow`` (the head deadline), ``too_long`` (the
        #: request line), ``too_large`` (the head).
        self.refused = {"busy": 0, "slow": 0, "too_long": 0, "too_large": 0}
        super().__init__(address, socketserver.BaseRequestHandler)

    def serve_forever(self, poll_interval: float = POLL_S) -> None:
        """Accept and admit connections until :meth:`shutdown`."""
        self._stopped.clear()
        self.socket.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(self.socket, selectors.EVENT_READ)
        try:
            while not self._stop.is_set():
                for key, _ in selector.select(poll_interval):
                    try:
                        if key.fileobj is self.socket:
                            self._accept(selector)
                        elif key.fileobj in self._pending:  # not displaced earlier in this round
                            assert isinstance(key.fileobj, socket.socket)
                            self._read(selector, key.fileobj)
                    except Exception as exc:  # the listener outlives any one connection
                        log.error("preview: while admitting a connection: %s", one_line(exc))
                self._expire(selector, time.monotonic())
        finally:
            for conn in list(self._pending):
                self._drop(selector, conn)
            selector.close()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait (briefly) until it returned; threads being served go on."""
        self._stop.set()
        self._stopped.wait(timeout=2.0)

    def _accept(self, selector: selectors.BaseSelector) -> None:
        for _ in range(self.request_queue_size):
            try:
                conn, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: leave the rest in the backlog, and do not spin on it
                now = time.monotonic()
                if now - self._accept_warned_at >= WARN_EVERY_S:
                    log.warning("preview: cannot accept connections: %s", one_line(exc))
                    self._accept_warned_at = now
                self._stop.wait(POLL_S)
                return
            conn.setblocking(False)
            if len(self._pending) >= self.limits.max_pending:  # make room: the one that has taken longest goes
                oldest = next(iter(self._pending))
                selector.unregister(oldest)
                del self._pending[oldest]
                self._refuse(oldest, "busy")
            self._pending[conn] = _Pending(address, time.monotonic() + self.limits.head_deadline_s)
            selector.register(conn, selectors.EVENT_READ)

    def _read(self, selector: selectors.BaseSelector, conn: socket.socket) -> None:
        pending = self._pending[conn]
        try:
            data = conn.recv(MAX_HEAD)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away before it finished asking
            self._drop(selector, conn)
            return
        pending.head += data
        end = _END_OF_HEAD.search(pending.head)
        size = len(pending.head) if end is None else end.end()
        first = pending.head.find(b"\n", 0, size)
        if (first if first >= 0 else size) > MAX_REQUEST_LINE:
            reason = "too_long"
        elif size > MAX_HEAD:
            reason = "too_large"
        elif end is None:
            return  # more to come
        else:
            reason = ""
        selector.unregister(conn)
        del self._pending[conn]
        if reason:
            self._refuse(conn, reason)
        else:
            self._dispatch(conn, pending.address, bytes(pending.head[:size]))

    def _expire(self, selector: selectors.BaseSelector, now: float) -> None:
        for conn, pending in list(self._pending.items()):
            if now >= pending.deadline:
                log.debug("preview: %s did not send its request within %g s", pending.address[0],
                          self.limits.head_deadline_s)  # fmt: skip
                selector.unregister(conn)
                del self._pending[conn]
                self._refuse(conn, "slow")

    def _drop(self, selector: selectors.BaseSelector, conn: socket.socket) -> None:
        selector.unregister(conn)
        del self._pending[conn]
        conn.close()

    def _dispatch(self, conn: socket.socket, address: Any, head: bytes) -> None:
        limit = self.limits.max_connections
        if _path(head) == "/healthz":
            limit += self.limits.healthz_reserve
        with self._lock:
            admitted = self._active < limit
            self._active += int(admitted)
        if not admitted:
            self._refuse(conn, "busy")
            return
        conn.setblocking(True)
        thread = threading.Thread(target=self._serve, args=(conn, address, head), name="edgepose-preview-http",
                                  daemon=True)  # fmt: skip
        try:
            thread.start()
        except RuntimeError as exc:  # cannot start a thread: answer busy rather than die
            with self._lock:
                self._active -= 1
            log.warning("preview: cannot start a thread for a request: %s", one_line(exc))
            conn.setblocking(False)
            self._refuse(conn, "busy")

    def _serve(self, conn: socket.socket, address: Any, head: bytes) -> None:
        try:
            self._handle(conn, address, head)
        except Exception as exc:  # one line in the journal, never a traceback on stderr
            log.error("preview: a request from %s failed: %s", address[0], one_line(exc))
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_WR)
            conn.close()
            with self._lock:
                self._active -= 1

    def _refuse(self, conn: socket.socket, reason: str) -> None:
        """Answer from this thread without blocking (the answer fits an empty send buffer), then close."""
        self.refused[reason] += 1
        if reason == "busy":
            retry = "Retry-After: 2\r\n"
            limits = self.limits
            data = _response("503 Service Unavailable", f"edgepose preview: busy (at most {limits.max_connections} "
                             "connections at once); try again shortly\n", retry)  # fmt: skip
            self._warn_busy()
        elif reason == "slow":
            data = _response("408 Request Timeout", f"edgepose preview: the request head did not arrive within "
                             f"{self.limits.head_deadline_s:g} s\n")  # fmt: skip
        elif reason == "too_long":
            data = _response("414 URI Too Long", "edgepose preview: request line too long\n")
        else:
            data = _response("431 Request Header Fields Too Large", "edgepose preview: request head too large\n")
        try:
            try:  # read what the client already sent (a little: it may never stop), so closing does not reset
                for _ in range(4):
                    if not conn.recv(MAX_HEAD):
                        break
            except (BlockingIOError, InterruptedError):
                pass
            conn.send(data)
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            conn.close()

    def _warn_busy(self) -> None:
        now = time.monotonic()
        self._unwarned += 1
        if now - self._warned_at >= WARN_EVERY_S:
            log.warning("preview: refused %d connection(s): at most %d requests are served at once "
                        "(preview.max_connections) and %d may be arriving", self._unwarned,
                        self.limits.max_connections, self.limits.max_pending)  # fmt: skip
            self._warned_at = now
            self._unwarned = 0
