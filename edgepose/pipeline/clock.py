"""Media time: each frame's seconds since the start of its source, the clock the analytics are timed by.

The wall clock (``ts``) of a box without a real-time clock is stepped by NTP, and a file is read faster (or
slower) than it plays, so neither can time presence, falls or reps. The media time instead is:

- for a file, the container's timestamp of the frame (``position_s`` of the source), or its number in the
  file over the frame rate when the container gives none; with ``--loop`` each pass adds the durations of
  the passes before, so it keeps increasing;
- for a live source (camera, stream), a monotonic clock at capture, from the start of the run and on across
  reopenings.

It never decreases. It is a pure function of the frames and times given to it: no clock is read here.
"""

from __future__ import annotations

import math
import threading

from edgepose.sources.base import Source


def frame_interval_s(source: Source, default_fps: float) -> float:
    """Seconds per frame of an opened source: its own frame rate, else ``default_fps`` (0 when neither is set)."""
    fps = float(getattr(source, "fps", 0.0) or default_fps)
    return 1.0 / fps if fps > 0 else 0.0


class MediaClock:
    """Gives each frame taken from a source its media time.

    Args:
        started: The run's start on the clock ``captured_at`` is measured with (``time.perf_counter()``).
        default_fps: The frame rate to assume when a file does not say its own.
    """

    def __init__(self, started: float, default_fps: float) -> None:
        self._started = started
        self._default_fps = default_fps
        self._lock = threading.Lock()
        self._last = 0.0
        self._frames = 0
        self._offset = 0.0  # the passes before this one (--loop)
        self._first_index: int | None = None  # the first frame number of this pass

    def frame_time(self, source: Source, index: int, captured_at: float) -> float:
        """Return the media time of frame ``index`` (numbered across reopenings) read from ``source``.

        Args:
            source: The opened source the frame came from, just after reading it.
            index: The frame's number across reopenings (skipped frames included).
            captured_at: When the read returned, on the clock of ``started``.
        """
        with self._lock:
            if source.live:
                media = captured_at - self._started
            else:
                if self._first_index is None:
                    self._first_index = index
                position = getattr(source, "position_s", None)
                if not isinstance(position, float) or not math.isfinite(position) or position < 0:
                    position = (index - self._first_index) * frame_interval_s(source, self._default_fps)
                media = self._offset + position
            media = max(media, self._last)
            self._last = media
            self._frames += 1
            return media

    def next_pass(self, source: Source) -> None:
        """Start another pass of a file (``--loop``): its times follow on from the pass read from ``source``."""
        with self._lock:
            if self._frames:
                self._offset = self._last + frame_interval_s(source, self._default_fps)
            self._first_index = None
