"""The capture thread and the frame buffer between it and the inference loop.

Live sources use a one-frame buffer where the newest frame wins (the overwritten frame is counted
as dropped). Files use a lossless one-frame buffer read on demand: the next frame is decoded as soon
as the slot frees, i.e. while the current one is inferred, so decoding overlaps inference without
frames piling up (each waits at most one inference).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from edgepose.errors import EdgePoseError, SourceError
from edgepose.sources.base import Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """A captured frame.

    Attributes:
        index: Position in the source, from 0.
        image: BGR uint8 pixels.
        ts: Wall-clock capture time (unix seconds).
        captured_at: ``time.perf_counter()`` when the frame became available.
        capture_ms: Time spent reading/decoding it.
    """

    index: int
    image: np.ndarray
    ts: float
    captured_at: float
    capture_ms: float


class FrameBuffer:
    """A bounded hand-over between one producer and one consumer.

    Args:
        capacity: Frames held at most.
        drop_oldest: When full, replace the oldest frame (counted in :attr:`dropped`) instead of
            making the producer wait.
    """

    def __init__(self, capacity: int, drop_oldest: bool) -> None:
        self._frames: collections.deque[Frame] = collections.deque()
        self._capacity = capacity
        self._drop_oldest = drop_oldest
        self._cond = threading.Condition()
        self._finished = False
        self.dropped = 0

    def put(self, frame: Frame) -> bool:
        """Add a frame; return ``False`` if the buffer was closed meanwhile."""
        with self._cond:
            while len(self._frames) >= self._capacity and not self._finished:
                if self._drop_oldest:
                    self._frames.popleft()
                    self.dropped += 1
                    break
                self._cond.wait()
            if self._finished:
                return False
            self._frames.append(frame)
            self._cond.notify_all()
            return True

    def wait_for_room(self) -> bool:
        """Block until a lossless buffer has room (at once for a newest-wins one).

        Returns:
            ``False`` if the buffer was closed meanwhile.
        """
        with self._cond:
            while not self._drop_oldest and len(self._frames) >= self._capacity and not self._finished:
                self._cond.wait()
            return not self._finished

    def get(self, timeout: float) -> Frame | None:
        """Take the oldest frame.

        Returns:
            The frame, or ``None`` once the producer finished and the buffer is empty.

        Raises:
            TimeoutError: No frame arrived within ``timeout`` seconds.
        """
        with self._cond:
            if (
                not self._frames
                and not self._finished
                and not self._cond.wait_for(lambda: self._frames or self._finished, timeout)
            ):
                raise TimeoutError
            if not self._frames:
                return None
            frame = self._frames.popleft()
            self._cond.notify_all()
            return frame

    def finish(self) -> None:
        """Mark the end of the stream; wakes both sides."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()


class CaptureThread(threading.Thread):
    """Reads a source into a :class:`FrameBuffer` until the source ends or :meth:`stop` is called.

    Args:
        source: An opened source.
        buffer: Where frames go.
        pace_fps: When above 0, read no faster than this (``--realtime`` on files).
    """

    def __init__(self, source: Source, buffer: FrameBuffer, pace_fps: float = 0.0) -> None:
        super().__init__(name="edgepose-capture", daemon=True)
        self._source = source
        self._buffer = buffer
        self._pace = 1.0 / pace_fps if pace_fps > 0 else 0.0
        self._stop_event = threading.Event()
        self.error: EdgePoseError | None = None
        self.frames = 0

    def run(self) -> None:
        """Capture until the end, an error or a stop request."""
        next_due = time.perf_counter()
        try:
            # Read only when the frame can be handed over: a file is decoded on demand, not ahead.
            while not self._stop_event.is_set() and self._buffer.wait_for_room():
                started = time.perf_counter()
                image = self._source.read()
                done = time.perf_counter()
                if image is None:
                    break
                frame = Frame(self.frames, image, time.time(), done, (done - started) * 1000.0)
                if not self._buffer.put(frame):
                    break
                self.frames += 1
                if self._pace:
                    next_due = max(next_due + self._pace, done - self._pace)
                    self._stop_event.wait(max(0.0, next_due - time.perf_counter()))
        except EdgePoseError as exc:
            self.error = exc
        except Exception as exc:  # a driver error must end the run with a message, not hang it
            log.debug("capture failed", exc_info=True)
            self.error = SourceError(f"{self._source.name} failed: {exc}")
        finally:
            self._buffer.finish()

    def stop(self) -> None:
        """Ask the thread to end and unblock it."""
        self._stop_event.set()
        self._buffer.finish()
