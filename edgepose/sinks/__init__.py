"""Result sinks: JSON lines, MQTT, the HTTP preview and the screen. Each satisfies :class:`Sink`."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from edgepose.errors import EdgePoseError
from edgepose.pose import PoseResult

log = logging.getLogger(__name__)

#: Seconds the whole shutdown may take (all sinks closed in parallel), below the unit's TimeoutStopSec=15.
SHUTDOWN_BUDGET_S = 10.0


class Sink(Protocol):
    """A consumer of pose results.

    ``publish`` is called from the inference loop and must not block on I/O: a sink queues,
    keeps only the newest result, or drops with a counter (the JSON lines of a file source wait for
    their writer instead: nothing is lost, and the stop event ends the wait). A sink that fails for good (a full
    disk under ``--output``) sets a ``failure`` attribute (an :class:`EdgePoseError`); the loop
    then ends the run with it. Failures a sink recovers from (a broker that went away) are retried
    and counted by the sink itself.
    """

    def start(self) -> None:
        """Open connections, start threads."""

    def publish(self, result: PoseResult) -> None:
        """Take one result without blocking."""

    def close(self) -> None:
        """Flush what was accepted and release resources."""


@runtime_checkable
class Heartbeat(Protocol):
    """A sink that also follows the loop's liveness while no frame comes (the systemd heartbeat)."""

    def alive(self) -> None:
        """Take note that the loop waited for a frame in vain, its capture thread running; must not block."""


def sink_failure(sinks: Sequence[Sink]) -> EdgePoseError | None:
    """Return the first permanent failure any sink reports, else ``None``."""
    for sink in sinks:
        failure = getattr(sink, "failure", None)
        if failure is not None:
            assert isinstance(failure, EdgePoseError)
            return failure
    return None


def close_all(sinks: Sequence[Sink], budget_s: float = SHUTDOWN_BUDGET_S) -> list[str]:
    """Close every sink in parallel against one deadline.

    Returns:
        The names of the sinks whose ``close`` had not returned by the deadline (they are left behind;
        their threads are daemons and end with the process).
    """
    closers: list[tuple[str, threading.Thread]] = []
    for sink in sinks:
        name = type(sink).__name__
        thread = threading.Thread(target=_close_quietly, args=(sink, name), name=f"edgepose-close-{name}", daemon=True)
        thread.start()
        closers.append((name, thread))
    deadline = time.monotonic() + budget_s
    late = []
    for name, thread in closers:
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            late.append(name)
    if late:
        log.warning("shutdown budget of %g s used up; not waiting for %s", budget_s, ", ".join(late))
    return late


def _close_quietly(sink: Sink, name: str) -> None:
    try:
        sink.close()
    except Exception as exc:  # one sink's failure to close must not keep the others from closing
        log.warning("closing %s failed: %s", name, exc)
