"""sd_notify over ``$NOTIFY_SOCKET``: ``READY``, ``WATCHDOG``, ``STATUS`` and ``STOPPING``.

Everything here is a no-op outside systemd (no ``NOTIFY_SOCKET``). :class:`NotifySink` is a
:class:`~edgepose.sinks.Sink` and a :class:`~edgepose.sinks.Heartbeat`, called inline by the inference loop
only: ``publish`` for every processed frame, ``alive`` whenever the loop waited for a frame in vain while
its capture thread runs.

What the watchdog guards is a loop that is alive and either processes frames or has a source that is
down and being retried (``waiting`` for a camera that is not there, or ``reconnecting`` a lost one;
:class:`~edgepose.health.SourceState`). ``READY=1`` goes out after the first processed frame, or as soon as
the source is found to be down: a box without its camera is up, and its ``STATUS=`` says what it waits
for. A hung interpreter or sink stops the loop and with it the pings; so does a source that seems fine
but gives no frame (a read stuck in a driver) until the capture thread's own watchdog declares it lost,
after ``[source] timeout_s``. A timer thread would keep pinging a dead pipeline. How long a source may stay
down before a fresh start is worth trying is the capture thread's ``give_up_s`` (``[source] restart_after_s``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

from edgepose.health import PipelineStats
from edgepose.pose import BackendInfo, PoseResult

log = logging.getLogger(__name__)

#: Seconds between ``STATUS=`` updates.
STATUS_EVERY_S = 5.0
#: Pings go out every ``WATCHDOG_USEC`` × this, so that with the gap to the next frame they still
#: arrive at least every ``WATCHDOG_USEC / 2``.
PING_FRACTION = 0.25


def notify_address(environ: Mapping[str, str] | None = None) -> str | None:
    """Return the socket address from ``$NOTIFY_SOCKET``, or ``None`` when not under systemd.

    A leading ``@`` names an abstract socket (a leading NUL byte in the address); other values must be
    absolute paths (``vsock:`` addresses, used only for VMs, are not supported).
    """
    value = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    if value:
        log.debug("ignoring unsupported NOTIFY_SOCKET %r", value)
    return None


def watchdog_usec(environ: Mapping[str, str] | None = None) -> int:
    """Return ``$WATCHDOG_USEC`` when the watchdog is meant for this process, else 0.

    Like ``sd_watchdog_enabled()``: a ``$WATCHDOG_PID`` naming another process disables it.
    """
    env = os.environ if environ is None else environ
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return 0
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return 0
    return max(usec, 0)


class Notifier:
    """Sends notification datagrams to the service manager, never blocking.

    Args:
        address: The socket address from :func:`notify_address`.
    """

    def __init__(self, address: str) -> None:
        self._address = address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setblocking(False)

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; return whether it was sent."""
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as exc:  # manager gone or its queue full: never stall the caller
            log.debug("sd_notify %s failed: %s", fields, exc)
            return False
        return True

    def close(self) -> None:
        """Close the socket."""
        self._sock.close()


def notify(*fields: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send one notification if running under systemd; return whether it was sent."""
    address = notify_address(environ)
    if address is None:
        return False
    notifier = Notifier(address)
    try:
        return notifier.send(*fields)
    finally:
        notifier.close()


def notify_stopping() -> None:
    """Tell systemd the service is shutting down (called from the SIGTERM/SIGINT handler)."""
    notify("STOPPING=1", "STATUS=stopping")


class NotifySink:
    """The systemd heartbeat, driven by the inference loop.

    Args:
        notifier: Where notifications go.
        stats: Pipeline counters, for ``STATUS=``; its backend's current info is what ``STATUS=`` names.
        info: The backend at start (what ``STATUS=`` names while ``stats`` has no backend).
        watchdog_usec: ``$WATCHDOG_USEC`` (0: no watchdog pings).
        clock: Monotonic clock in seconds (tests may pass their own).
    """

    def __init__(
        self,
        notifier: Notifier,
        stats: PipelineStats,
        info: BackendInfo,
        watchdog_usec: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._notifier = notifier
        self._stats = stats
        self._info = info
        self._ping_every = watchdog_usec * PING_FRACTION / 1e6
        self._clock = clock
        self._ready = False
        self._next_ping = 0.0
        self._next_status = 0.0
        self._status_topic: tuple[object, ...] = ()  # what the last STATUS= told of: backend, source, kind

    def start(self) -> None:
        """Say what is happening until the first frame arrives."""
        info = self._stats.backend_info(self._info)
        self._notifier.send(f"STATUS=starting: {info.model} on {info.delegate}, waiting for frames")

    def publish(self, result: PoseResult) -> None:
        """Beat for a processed frame: ``READY=1`` once, then rate-limited ``WATCHDOG=1`` and ``STATUS=``."""
        self._beat(self.status)

    def alive(self) -> None:
        """Beat while the source is down and retried; otherwise send nothing.

        The loop calls it when it waited for a frame in vain, its capture thread running. While the source is
        ``waiting`` or ``reconnecting`` this beats as a frame does (``READY=1`` once, ``WATCHDOG=1``), with a
        ``STATUS=`` on the source. While it is ``opening`` or ``ok`` (a frame is late; a read may be stuck) the
        pings stop, until the capture thread's watchdog declares the source lost.
        """
        if self._stats.source.retrying:
            self._beat(self.source_status)

    def _beat(self, status: Callable[[], str]) -> None:
        """Send ``READY=1`` once, then rate-limited ``WATCHDOG=1`` and ``STATUS=`` (one datagram).

        ``STATUS=`` goes out at once, not at its next turn, when what it tells changed: the backend (a fallback
        to the CPU), or the source's state or reason (waiting, lost, back).
        """
        now = self._clock()
        info = self._stats.backend_info(self._info)
        source = self._stats.source
        topic = (info, source.state, source.reason, status)
        fields = []
        if not self._ready:
            self._ready = True
            fields.append("READY=1")
        if self._ping_every and now >= self._next_ping:
            self._next_ping = now + self._ping_every
            fields.append("WATCHDOG=1")
        if now >= self._next_status or topic != self._status_topic:
            self._next_status = now + STATUS_EVERY_S
            self._status_topic = topic
            fields.append("STATUS=" + status())
        if fields:
            self._notifier.send(*fields)

    def status(self) -> str:
        """Return the one-line status ``systemctl status`` shows (with the inference restarts and fallback)."""
        stats = self._stats
        info = stats.backend_info(self._info)
        text = (
            f"{stats.fps():.1f} fps, delegate {info.delegate}, model {info.model}, "
            f"{stats.frames} frames, {stats.dropped} dropped"
        )
        if stats.inference.restarts:
            text += f", {stats.inference.restarts} inference restarts"
        if stats.source.reopens:
            text += f", {stats.source.reopens} source reopens"
        if stats.inference.fallback_reason:
            text += f"; fell back to the CPU: {stats.inference.fallback_reason}"
        return text

    def source_status(self) -> str:
        """Return the status line while the source is down (the model loaded, the service up).

        For example ``waiting for the camera for 2 min 5 s, next try in 30 s: cannot open camera 0: …``.
        """
        source = self._stats.source
        reason = source.reason
        return f"{source.headline()}: {reason}" if reason else source.headline()

    def close(self) -> None:
        """Announce the shutdown."""
        self._notifier.send("STOPPING=1", f"STATUS=stopped after {self._stats.frames} frames")
        self._notifier.close()


def make_sink(stats: PipelineStats, info: BackendInfo, environ: Mapping[str, str] | None = None) -> NotifySink | None:
    """Return the heartbeat sink under systemd, ``None`` otherwise."""
    address = notify_address(environ)
    if address is None:
        return None
    usec = watchdog_usec(environ)
    if usec:
        log.info("systemd watchdog: %.1f s, pinging from the inference loop", usec / 1e6)
    return NotifySink(Notifier(address), stats, info, usec)
