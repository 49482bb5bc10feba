"""The snapshot sink: a JPEG of each ``fall`` and ``long_lie``, and one on request, handed to its viewers.

``publish`` runs on the inference loop and only looks: when a result carries one of :data:`TRIGGERS`, or
a :meth:`SnapshotSink.request` is waiting, the result (with its frame) goes into a slot of one, the newest
winning (one it replaces is counted). The sink's own thread draws the picture in the privacy mode
(:func:`edgepose.sinks.drawing.render`: ``skeleton`` draws on a blank canvas, so no pixel of the camera's
picture is in it), encodes the JPEG, hands it to every viewer (the MQTT sink and the preview, which only
queue or store it) and then writes it to the folder, so a slow or full disk holds up nothing but the folder.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2

from edgepose.config import SnapshotConfig
from edgepose.config.choices import SNAPSHOT_MODES
from edgepose.events import EventType
from edgepose.pose import PoseResult
from edgepose.sinks.drawing import render
from edgepose.sinks.snapshot.folder import SnapshotFolder, file_name

log = logging.getLogger(__name__)

#: The events that take a snapshot.
TRIGGERS: tuple[EventType, ...] = (EventType.FALL, EventType.LONG_LIE)
#: The reason of a snapshot taken by :meth:`SnapshotSink.request`.
REQUEST = "request"
#: The snapshots' content type (the JPEG's bytes, nothing around them).
CONTENT_TYPE = "image/jpeg"
JPEG_QUALITY = 85
#: Seconds a request waits for a frame; a request older than this when the next frame comes is dropped.
REQUEST_WAIT_S = 10.0
#: Seconds ``close`` waits for the snapshot being made.
CLOSE_WAIT_S = 2.0
MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """One snapshot.

    Attributes:
        seq: Its number in this run, from 1.
        jpeg: The JPEG file's bytes.
        reason: Why it was taken: ``fall``, ``long_lie`` or ``request``.
        frame: The frame it shows.
        ts: The frame's capture time, unix seconds.
        mode: The privacy mode it was drawn in (``skeleton``, ``blurred``, ``full``).
    """

    seq: int
    jpeg: bytes = dataclasses.field(repr=False)
    reason: str
    frame: int
    ts: float
    mode: str

    def info(self) -> dict[str, Any]:
        """Return what the preview tells about it: ``id``, ``reason``, ``frame``, ``ts``, ``mode``, ``bytes``."""
        return {"id": self.seq, "reason": self.reason, "frame": self.frame, "ts": round(self.ts, 3),
                "mode": self.mode, "bytes": len(self.jpeg)}  # fmt: skip


#: Takes each snapshot; called on the snapshot thread, so it must only queue or store it.
Viewer = Callable[[Snapshot], None]


@dataclasses.dataclass
class SnapshotCounters:
    """What happened to the snapshots asked for.

    Attributes:
        made: Snapshots made and handed to the viewers.
        replaced: Triggers replaced by a newer one before the thread took them.
        failed: Pictures that could not be drawn or encoded.
        expired: Requests that found no frame within :data:`REQUEST_WAIT_S`.
    """

    made: int = 0
    replaced: int = 0
    failed: int = 0
    expired: int = 0


class SnapshotSink:
    """Makes the snapshots of a run.

    Args:
        cfg: The ``[snapshot]`` section.
        min_score: Keypoints scoring below this are not drawn.
    """

    def __init__(self, cfg: SnapshotConfig, min_score: float) -> None:
        self._cfg = cfg
        self._min_score = min_score
        self._folder = SnapshotFolder(Path(cfg.folder), cfg.max_files, round(cfg.max_mb * MIB)) if cfg.folder else None
        self._viewers: list[Viewer] = []
        self._cond = threading.Condition()
        self._slot: tuple[PoseResult, str] | None = None
        self._closing = False
        self._requests = 0  # requests made (written by request())
        self._served = 0  # requests answered (written by publish())
        self._requested_at = 0.0  # when the last request was made
        self._thread = threading.Thread(target=self._work, name="edgepose-snapshot", daemon=True)
        self.counters = SnapshotCounters()
        #: The last snapshot made, or ``None``.
        self.latest: Snapshot | None = None

    @property
    def mode(self) -> str:
        """The privacy mode (``skeleton``, ``blurred``, ``full``)."""
        return self._cfg.mode

    @property
    def draws(self) -> str:
        """The preview mode whose picture a snapshot is (``skeleton``, ``blur``, ``video``)."""
        return SNAPSHOT_MODES[self._cfg.mode]

    @property
    def folder(self) -> SnapshotFolder | None:
        """Where snapshots are kept, or ``None``."""
        return self._folder

    def subscribe(self, viewer: Viewer) -> None:
        """Hand every snapshot to ``viewer`` from now on (call before :meth:`start`)."""
        self._viewers.append(viewer)

    def request(self) -> None:
        """Take a snapshot of the next frame processed (any thread; never blocks).

        Requests made before that frame are one snapshot; a request that finds no frame within
        :data:`REQUEST_WAIT_S` (the camera is gone, detection is paused) is dropped.
        """
        self._requested_at = time.monotonic()
        self._requests += 1

    def start(self) -> None:
        """Start the snapshot thread."""
        self._thread.start()
        kept = f", kept in {self._folder.path}" if self._folder else ""
        log.info("snapshots of %s and on request, mode %s%s", ", ".join(TRIGGERS), self._cfg.mode, kept)

    def publish(self, result: PoseResult) -> None:
        """Take the result when it triggers a snapshot (O(1): the picture is made on the snapshot thread)."""
        reason = self._reason(result)
        if reason is None:
            return
        with self._cond:
            if self._slot is not None:
                self.counters.replaced += 1
            self._slot = (result, reason)
            self._cond.notify()

    def close(self) -> None:
        """Finish the snapshot being made (at most :data:`CLOSE_WAIT_S`) and stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join(CLOSE_WAIT_S)
        c = self.counters
        if c.made or c.replaced or c.failed or c.expired:
            log.info("snapshots: %d made, %d replaced by a newer one, %d failed, %d requests without a frame",
                     c.made, c.replaced, c.failed, c.expired)  # fmt: skip

    def _reason(self, result: PoseResult) -> str | None:
        """Why this result is snapshotted (its trigger event, else a waiting request), or ``None``."""
        requests = self._requests
        requested = requests != self._served
        self._served = requests  # a trigger's snapshot answers a waiting request too
        for event in result.events:
            if event.get("type") in TRIGGERS:
                return str(event["type"])
        if not requested:
            return None
        if time.monotonic() - self._requested_at > REQUEST_WAIT_S:
            self.counters.expired += 1
            log.info("snapshot: a request found no frame within %g s; dropped", REQUEST_WAIT_S)
            return None
        return REQUEST

    def _work(self) -> None:
        seq = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._slot is not None or self._closing)
                if self._slot is None:
                    return
                result, reason = self._slot
                self._slot = None
            try:
                jpeg = self._encode(result)
            except Exception as exc:  # the thread outlives any one picture
                self.counters.failed += 1
                log.warning("snapshot: cannot make the picture of frame %d: %s: %s", result.frame,
                            type(exc).__name__, exc)  # fmt: skip
                continue
            seq += 1
            snapshot = Snapshot(seq, jpeg, reason, result.frame, result.ts, self._cfg.mode)
            self.latest = snapshot
            self.counters.made += 1
            log.info("snapshot %d: frame %d, %s, %d bytes", seq, result.frame, reason, len(jpeg))
            for viewer in self._viewers:
                try:
                    viewer(snapshot)
                except Exception as exc:  # one viewer's fault must not keep the others from it
                    log.warning("snapshot: handing snapshot %d on failed: %s: %s", seq, type(exc).__name__, exc)
            if self._folder is not None:
                self._folder.save(jpeg, file_name(result.ts, result.frame, reason))

    def _encode(self, result: PoseResult) -> bytes:
        """Return the JPEG of one result in the privacy mode."""
        picture = render(result, self.draws, self._min_score)
        ok, buf = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise ValueError("cv2.imencode returned no picture")
        return bytes(buf.tobytes())


@runtime_checkable
class ShowsSnapshots(Protocol):
    """A sink that shows snapshots (the MQTT sink, the preview)."""

    def attach_snapshots(self, snapshots: SnapshotSink) -> None:
        """Subscribe to ``snapshots`` (before the sink starts)."""


def attach_snapshots(built: Sequence[object], sink: object) -> None:
    """Hand the run's snapshot sink, if it is among the sinks ``built`` before, to ``sink`` if it shows them.

    Args:
        built: The sinks built so far (the snapshot sink is built first).
        sink: The sink just built, not started yet.
    """
    snapshots = next((s for s in built if isinstance(s, SnapshotSink)), None)
    if snapshots is not None and isinstance(sink, ShowsSnapshots):
        sink.attach_snapshots(snapshots)
