"""Result sinks: JSON lines, MQTT, the HTTP preview and the screen. Each satisfies :class:`Sink`."""

from __future__ import annotations

from typing import Protocol

from edgepose.pose import PoseResult


class Sink(Protocol):
    """A consumer of pose results.

    ``publish`` is called from the inference loop and must not block on I/O: a sink queues,
    keeps only the newest result, or drops with a counter.
    """

    def start(self) -> None:
        """Open connections, start threads."""

    def publish(self, result: PoseResult) -> None:
        """Take one result without blocking."""

    def close(self) -> None:
        """Flush what was accepted and release resources."""
