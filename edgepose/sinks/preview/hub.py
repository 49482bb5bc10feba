"""The preview's shared state between the inference loop (one writer) and the HTTP threads (readers).

:meth:`PreviewHub.publish` is O(1) and never blocks on I/O: it stores the newest result, appends an
image-less copy to a bounded ring (for Server-Sent Events) and notifies. JPEG encoding happens in
the hub's encoder thread, only while a stream client is waiting for a newer picture, at most
``fps`` times a second, once per picture for all clients. A picture that cannot be made is logged
(once per run of failures) and skipped; after :data:`FAIL_LIMIT` failures in a row the waiting stream
clients are released with :class:`EncoderFailed`, so none waits forever for a picture that never comes.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import json
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from edgepose.config import ZoneConfig
from edgepose.pose import PoseResult
from edgepose.sinks.drawing import render

log = logging.getLogger(__name__)

#: Results kept for event clients; a client further behind than this is dropped.
RING_SIZE = 512
#: Analytics events kept for the page's "last events".
RECENT_EVENTS = 10
#: JPEG quality of the stream.
JPEG_QUALITY = 80
#: Pictures failing in a row before the waiting stream clients are released.
FAIL_LIMIT = 3
#: What the stream shows while detection is off.
PAUSED_TEXT = "paused: detection is off"


class Overflow(Exception):
    """An event client fell further behind than the ring holds."""


class EncoderFailed(Exception):
    """The encoder failed :data:`FAIL_LIMIT` pictures in a row while a stream client waited."""


@dataclasses.dataclass
class _Event:
    """One result in the ring and, once an event client asked for it, its Server-Sent Event message."""

    seq: int
    result: PoseResult
    message: bytes = b""


def event_message(seq: int, result: PoseResult) -> bytes:
    """Return the Server-Sent Event of one result: ``id:`` its number, ``data:`` the ``run`` JSON."""
    return f"id: {seq}\ndata: {json.dumps(result.to_dict())}\n\n".encode()


def paused_picture(width: int = 640, height: int = 360) -> bytes:
    """Return the JPEG streamed while detection is off: :data:`PAUSED_TEXT` on grey, nothing from the camera."""
    picture = np.full((height, width, 3), 48, np.uint8)
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 1.0, 2
    (text_w, text_h), _ = cv2.getTextSize(PAUSED_TEXT, font, scale, thickness)
    origin = ((width - text_w) // 2, (height + text_h) // 2)
    cv2.putText(picture, PAUSED_TEXT, origin, font, scale, (230, 230, 230), thickness, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - a plain grey picture always encodes
        raise ValueError("cv2.imencode returned no picture")
    return bytes(buf.tobytes())


class PreviewHub:
    """Newest result, recent results and the newest JPEG, guarded by one lock.

    Args:
        mode: Privacy mode for the pictures (``video``, ``skeleton``, ``blur``).
        min_score: Keypoints below this score are not drawn.
        fps: At most this many JPEGs per second.
        zones: The ``[[zones]]`` drawn on every picture.
    """

    def __init__(self, mode: str, min_score: float, fps: float, zones: Sequence[ZoneConfig] = ()) -> None:
        self._zones = tuple(zones)
        self._mode = mode
        self._min_score = min_score
        self._interval = 1.0 / fps
        self._lock = threading.Lock()
        self._frame_cond = threading.Condition(self._lock)  # a new result (event clients, encoder)
        self._watch_cond = threading.Condition(self._lock)  # a stream client started waiting (encoder)
        self._jpeg_cond = threading.Condition(self._lock)  # a new JPEG (stream clients)
        self._closing = threading.Event()
        self._latest: PoseResult | None = None
        self._seq = 0
        self._ring: collections.deque[_Event] = collections.deque(maxlen=RING_SIZE)
        self._message_lock = threading.Lock()  # the first client to need an event message makes it
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_EVENTS)
        self._jpeg = b""
        self._jpeg_id = 0
        self._encoded_seq = 0
        self._waiting = 0
        self._failures = 0  # pictures failed in a row
        self._failed_runs = 0  # times the failures reached FAIL_LIMIT: releases the waiting stream clients
        self._failure = ""
        self._paused = False
        self._thread = threading.Thread(target=self._encode_loop, name="edgepose-preview-jpeg", daemon=True)
        #: Connected clients per endpoint, and clients dropped for being too slow.
        self.clients = {"stream": 0, "events": 0}
        self.dropped_clients = 0
        #: Results that stream clients did not get (newest wins: a slow or stalled client skips frames).
        self.skipped_frames = 0
        #: JPEGs encoded so far.
        self.encoded = 0
        #: Results turned into event messages so far (each once, however many event clients send it).
        self.event_messages = 0
        #: Pictures that could not be made.
        self.encode_errors = 0

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing.is_set()

    def start(self) -> None:
        """Start the encoder thread."""
        self._thread.start()

    def publish(self, result: PoseResult) -> None:
        """Store the newest result and wake the waiting threads (O(1), no I/O)."""
        light = dataclasses.replace(result, image=None)
        with self._lock:
            self._paused = False
            self._seq += 1
            self._latest = result
            self._ring.append(_Event(self._seq, light))
            self._events.extend(result.events)
            self._frame_cond.notify_all()

    def pause(self) -> None:
        """Forget the newest result and show :data:`PAUSED_TEXT` to stream clients (once): detection is off."""
        with self._lock:
            if self._paused:
                return
            self._paused = True
        jpeg = paused_picture()
        with self._lock:
            self._latest = None
            self._encoded_seq = self._seq
            self._jpeg = jpeg
            self._jpeg_id += 1
            self._jpeg_cond.notify_all()

    def latest(self) -> tuple[int, PoseResult | None]:
        """Return the newest result and its sequence number (0 before the first)."""
        with self._lock:
            return self._seq, self._latest

    def recent_events(self) -> list[dict[str, Any]]:
        """Return the last analytics events (``person_entered``, ``fall``, …), oldest first."""
        with self._lock:
            return list(self._events)

    def events_after(self, cursor: int, timeout: float) -> list[tuple[int, bytes]]:
        """Wait for results newer than ``cursor``; return their numbers and event messages, oldest first.

        A message is made once, by the first client that needs it (outside the lock ``publish`` takes),
        and the same bytes go to every client. Returns an empty list on timeout or when closing and
        nothing is left.

        Raises:
            Overflow: ``cursor`` fell off the ring: the client is too slow.
        """
        with self._lock:
            self._frame_cond.wait_for(lambda: self._seq > cursor or self._closing.is_set(), timeout)
            oldest = self._seq - len(self._ring) + 1
            if cursor + 1 < oldest:
                self.dropped_clients += 1
                raise Overflow
            items = list(itertools.islice(self._ring, cursor + 1 - oldest, None))
        with self._message_lock:
            for item in items:
                if not item.message:
                    item.message = event_message(item.seq, item.result)
                    self.event_messages += 1
        return [(item.seq, item.message) for item in items]

    def resume_point(self, last_id: int | None) -> int:
        """Return the cursor for a new event client.

        Args:
            last_id: The ``Last-Event-ID`` it sent; ``None`` to start with the next result.
        """
        with self._lock:
            if last_id is None or last_id > self._seq:
                return self._seq
            return max(last_id, self._seq - len(self._ring))

    def next_jpeg(self, last_id: int, timeout: float) -> tuple[int, bytes]:
        """Wait for a JPEG newer than ``last_id``; return ``(id, bytes)`` or ``(last_id, b"")`` on timeout.

        Raises:
            EncoderFailed: Pictures kept failing while this client waited.
        """
        with self._lock:
            self._waiting += 1
            self._watch_cond.notify_all()
            runs = self._failed_runs
            try:
                self._jpeg_cond.wait_for(
                    lambda: self._jpeg_id > last_id or self._closing.is_set() or self._failed_runs > runs, timeout
                )
            finally:
                self._waiting -= 1
            if self._jpeg_id > last_id and not self._closing.is_set():
                return self._jpeg_id, self._jpeg
            if self._failed_runs > runs:
                raise EncoderFailed(f"{FAIL_LIMIT} pictures failed in a row: {self._failure}")
            return last_id, b""

    def client_left(self, endpoint: str, skipped: int, dropped: bool) -> None:
        """Account for a client that went away: results it skipped, and whether it was cut off as too slow."""
        with self._lock:
            self.clients[endpoint] -= 1
            self.skipped_frames += max(0, skipped)
            self.dropped_clients += int(dropped)
            self._frame_cond.notify_all()

    def count(self, endpoint: str, delta: int) -> None:
        """Track connected clients of an endpoint."""
        with self._lock:
            self.clients[endpoint] += delta
            self._frame_cond.notify_all()

    def _wait_for_work(self) -> tuple[int, PoseResult] | None:
        with self._lock:
            while not self._closing.is_set():
                if self._waiting == 0:
                    self._watch_cond.wait()
                elif self._seq <= self._encoded_seq or self._latest is None:
                    self._frame_cond.wait()
                else:
                    return self._seq, self._latest
        return None

    def _encode(self, result: PoseResult) -> bytes:
        """Return the JPEG of one result, or raise whatever drawing or encoding raised."""
        picture = render(result, self._mode, self._min_score, self._zones, labels=True)
        ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError("cv2.imencode returned no picture")
        return bytes(buf.tobytes())

    def _encode_loop(self) -> None:
        while (work := self._wait_for_work()) is not None:
            seq, result = work
            started = time.monotonic()
            jpeg = b""
            try:
                jpeg = self._encode(result)
            except Exception as exc:  # the encoder outlives any one picture
                self._failed(result.frame, exc)
            with self._lock:
                self._encoded_seq = seq
                if jpeg:
                    if self._failures:
                        log.info("preview: pictures encode again after %d failure(s)", self._failures)
                    self._failures = 0
                    self._jpeg = jpeg
                    self._jpeg_id += 1
                    self.encoded += 1
                    self._jpeg_cond.notify_all()
            self._closing.wait(max(0.0, started + self._interval - time.monotonic()))

    def _failed(self, frame: int, exc: Exception) -> None:
        """Count a picture that could not be made; log the first of a run; release the waiters at the limit."""
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        with self._lock:
            self.encode_errors += 1
            self._failures += 1
            self._failure = reason
            if self._failures % FAIL_LIMIT == 0:
                self._failed_runs += 1
                self._jpeg_cond.notify_all()
            first = self._failures == 1
        if first:
            log.error("preview: cannot make the picture of frame %d (%s); skipping it, further failures "
                      "are counted in edgepose_preview_encode_errors_total", frame, reason)  # fmt: skip

    def close(self) -> None:
        """Wake every waiting thread so streams end and event clients drain, and stop the encoder."""
        self._closing.set()
        with self._lock:
            self._frame_cond.notify_all()
            self._watch_cond.notify_all()
            self._jpeg_cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
