"""The MQTT sink's unsent QoS 0 backlog: how much paho still has to write, and whether the link is behind.

paho queues every publish in one FIFO in front of the socket. The pose stream may produce more than a slow
link carries, and everything behind it (``person``, ``state``, ``event``, the keepalive ping) then waits.
:class:`Backlog` counts the QoS 0 bytes handed to paho and not yet written, and measures the rate the link
has been writing them at. The link is *behind* when more than ``BACKLOG_LIMIT_BYTES`` wait, the oldest of
them for at least ``BACKLOG_MIN_AGE_S``, and writing them at the measured rate would take more than
``BACKLOG_MAX_S``. A slow link is then held to about ``BACKLOG_MAX_S`` of backlog, while a burst that a fast
link writes at once (a file read at full speed, a Wi-Fi hiccup, a network thread held up on a busy CPU) is
not mistaken for one. No paho here: the caller passes each message's "written yet?" test.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

#: Unsent bytes (pose, stats) that are never a backlog: a few pose messages, about two seconds of 4 KB/s.
BACKLOG_LIMIT_BYTES = 8 * 1024
#: The oldest unsent message must have waited this long: a burst younger than that is not a slow link.
BACKLOG_MIN_AGE_S = 0.5
#: The backlog is held to what the link writes in this long (the delay it adds in front of an answer).
BACKLOG_MAX_S = 2.0
#: Seconds over which the link's writing rate is measured.
RATE_WINDOW_S = 5.0


class Backlog:
    """The QoS 0 messages handed to paho and not yet written to the socket, and the rate the link writes.

    ``add``, ``behind`` and ``reset`` are called from one thread (the sink's worker); ``unsent`` from any.

    Args:
        clock: Monotonic seconds.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting: collections.deque[tuple[Callable[[], bool], int, float]] = collections.deque()
        self._written: collections.deque[tuple[float, int]] = collections.deque()
        self._since = clock()

    def reset(self) -> None:
        """Forget everything: a new socket, on which paho starts with an empty queue."""
        with self._lock:
            self._waiting.clear()
            self._written.clear()
            self._since = self._clock()

    def add(self, written: Callable[[], bool], size: int) -> None:
        """Count a message of ``size`` bytes handed to paho; ``written()`` tells when paho has written it."""
        with self._lock:
            self._waiting.append((written, size, self._clock()))

    def unsent(self) -> int:
        """Return the bytes handed to paho and not written yet."""
        with self._lock:
            return sum(size for written, size, _ in self._waiting if not written())

    def behind(self) -> bool:
        """Return whether the link is behind (see the module docstring): new pose messages are to be skipped."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            unsent = sum(size for _, size, _ in self._waiting)
            if unsent <= BACKLOG_LIMIT_BYTES or now - self._waiting[0][2] < BACKLOG_MIN_AGE_S:
                return False
            measured_s = max(BACKLOG_MIN_AGE_S, min(RATE_WINDOW_S, now - self._since))
            rate = sum(size for _, size in self._written) / measured_s
            return unsent > rate * BACKLOG_MAX_S

    def _prune(self, now: float) -> None:
        """Move the messages written since the last look into the rate window; drop what left the window."""
        still = collections.deque(entry for entry in self._waiting if not entry[0]())
        gone = sum(size for _, size, _ in self._waiting) - sum(size for _, size, _ in still)
        self._waiting = still
        if gone:
            self._written.append((now, gone))
        while self._written and self._written[0][0] < now - RATE_WINDOW_S:
            self._written.popleft()
