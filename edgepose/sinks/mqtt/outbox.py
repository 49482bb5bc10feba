"""The MQTT sink's messages, counters and its bounded offline queue (no paho here)."""

from __future__ import annotations

import collections
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """One message to publish."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass
class MqttCounters:
    """The sink's own counters (published in ``stats.mqtt``); each is written by one thread only.

    Attributes:
        sent: Messages handed to the connection.
        dropped: QoS 0 messages dropped while disconnected.
        queue_dropped: QoS 1 messages dropped because the offline queue was full.
        rate_limited: Pose messages skipped by ``max_rate``.
        backlog_skipped: Pose messages skipped because the link was still sending earlier ones.
        overflow: Results dropped because the sink's worker fell behind.
        reconnects: Successful connections after the first.
    """

    sent: int = 0
    dropped: int = 0
    queue_dropped: int = 0
    rate_limited: int = 0
    backlog_skipped: int = 0
    overflow: int = 0
    reconnects: int = 0


class Outbox:
    """Messages kept while disconnected: QoS 0 is dropped and counted, QoS >= 1 waits, oldest dropped first.

    Args:
        size: Most QoS >= 1 messages kept.
        counters: Where drops are counted.
    """

    def __init__(self, size: int, counters: MqttCounters) -> None:
        self._size = size
        self._counters = counters
        self._queue: collections.deque[Message] = collections.deque()

    def __len__(self) -> int:
        return len(self._queue)

    def hold(self, msg: Message) -> None:
        """Keep ``msg`` for the next connection, or drop it (QoS 0, or the oldest when full)."""
        if msg.qos == 0:
            self._counters.dropped += 1
            return
        if len(self._queue) >= self._size:
            self._queue.popleft()
            self._counters.queue_dropped += 1
        self._queue.append(msg)

    def pop(self) -> Message | None:
        """Take the oldest kept message, or ``None``."""
        return self._queue.popleft() if self._queue else None
