"""A slow network link for tests: a TCP proxy on a free loopback port that passes N bytes a second each way.

It stands between edgepose and a real mosquitto (tests/broker.py). Each direction is a thread that reads
at most ``rate`` bytes a second from one side and writes them to the other. The proxy's sockets towards
the client have a small receive buffer (``link_buffer``): like a real slow link, the link itself holds
only a second or two of data and TCP's flow control pushes everything else back onto the sender, which
is where edgepose must bound it. Every accepted connection is counted, so a test sees reconnects. Setting
``paused`` stops both directions (a Wi-Fi hiccup) until it is cleared.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from dataclasses import dataclass, field

from broker import free_port

#: How often each direction passes on its share of bytes.
TICK_S = 0.05


@dataclass
class SlowLink:
    """A throttling TCP proxy from ``port`` (127.0.0.1) to ``target_port``.

    Args:
        target_port: Where the broker listens.
        rate: Bytes a second passed in each direction.
        link_buffer: Receive buffer of the proxy's sockets (bytes the link itself holds).
    """

    target_port: int
    rate: int = 4096
    link_buffer: int = 4096
    port: int = field(default_factory=free_port)
    accepted: int = 0
    paused: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> SlowLink:
        """Listen and start accepting."""
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.link_buffer)  # inherited by accepted sockets
        srv.bind(("127.0.0.1", self.port))
        srv.listen(8)
        srv.settimeout(TICK_S)
        self._sockets.append(srv)
        self._spawn(self._accept, srv)
        return self

    def stop(self) -> None:
        """Close every socket and join the threads."""
        self._stop.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> SlowLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self, srv: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.link_buffer)
            with self._lock:
                self.accepted += 1
                self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        """Pass bytes from ``src`` to ``dst`` at ``rate`` bytes a second; close both when either ends."""
        allowance, last = 0.0, time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                allowance = min(float(self.rate), allowance + (now - last) * self.rate)  # at most 1 s of burst
                last = now
                if allowance < 1 or self.paused.is_set():
                    time.sleep(TICK_S)
                    continue
                if not select.select([src], [], [], TICK_S)[0]:
                    continue
                data = src.recv(int(allowance))
                if not data:
                    break
                allowance -= len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
