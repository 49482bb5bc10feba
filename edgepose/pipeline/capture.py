"""The capture thread, its source watchdog, and the frame buffer between it and the inference loop.

Live sources use a one-frame buffer where the newest frame wins (the overwritten frame is counted
as dropped). Files use a lossless one-frame buffer read on demand: the next frame is decoded as soon
as the slot frees, i.e. while the current one is inferred, so decoding overlaps inference without
frames piling up (each waits at most one inference).

Each opening of the source gets its own reader thread and its own source object. The capture thread
watches it: a live source that ends, fails, or delivers no frame for ``source_timeout_s`` (opening
included) is abandoned and opened again with backoff; so is one that cannot be opened at all (a camera not
there yet: ``waiting`` in :class:`~edgepose.health.SourceState`, ``reconnecting`` once it had delivered).
An abandoned reader may still be blocked inside a driver or FFmpeg; it closes its own source when it
returns, and never touches the buffer again.

Each frame is stamped twice where it is built (:meth:`CaptureThread.deliver`): ``ts``, the wall clock, for the
output, and ``media_s``, the media time the analytics are timed by (:mod:`edgepose.pipeline.clock`).

A live source's read that gives no frame (a broken picture from a flaky camera) is skipped and counted
in ``decode_errors``; only :data:`MAX_FAILED_READS` of them in a row, or ``source_timeout_s`` without a
good frame, lose the opening. A file still ends at its first failed read. Every frame carries the number
of the opening it came from, so the loop can start its trackers afresh on a new one.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edgepose.errors import BackendUnavailableError, ConfigError, EdgePoseError, FrameError, InputError, SourceError
from edgepose.health import SourceState, duration
from edgepose.pipeline.clock import MediaClock, frame_interval_s
from edgepose.sources.base import Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """A captured frame.

    Attributes:
        index: Position in the source, from 0.
        image: BGR uint8 pixels.
        ts: Wall-clock capture time (unix seconds): a label only, NTP may step it.
        captured_at: ``time.perf_counter()`` when the frame became available.
        capture_ms: Time spent reading/decoding it.
        media_s: Seconds since the start of the source, never decreasing (see :mod:`edgepose.pipeline.clock`):
            what the analytics are timed by.
        opening: Which opening of the source it came from (0 first; a reopen or a ``--loop`` adds one).
        lores: ``image`` is the source's low-resolution grey picture (``read_lores()``, picamera2's ``lores``
            stream), taken while idle for the motion check only: the model never runs on it.
    """

    index: int
    image: np.ndarray
    ts: float
    captured_at: float
    capture_ms: float
    media_s: float = 0.0
    opening: int = 0
    lores: bool = False


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


#: Waits before reopening a lost live source, or trying one that is not there yet; the last one repeats (a
#: camera box never gives up by itself; under systemd, ``give_up_s`` ends the run for a fresh start).
REOPEN_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
#: Failures no reopening can cure: the run ends with them even for a live source.
PERMANENT_ERRORS = (BackendUnavailableError, ConfigError, InputError)
#: How often the capture thread looks at its reader.
WATCH_EVERY_S = 0.1
#: Reads in a row without a frame after which a live source is taken as lost (fewer: bad frames, skipped).
MAX_FAILED_READS = 10
#: While a source stays down for the same reason, its retries are logged at debug level, and at info
#: level once in this many seconds (the first loss, and every new reason, are warnings).
REMIND_EVERY_S = 300.0


@dataclass(frozen=True)
class CaptureOptions:
    """How the capture thread reads.

    Attributes:
        realtime: Read a file no faster than its own frame rate (``--realtime``).
        pace_fps: The rate to pace at when the file does not say its own.
        source_timeout_s: A live source with no new frame for this long (opening included) is reopened.
        loop: Start a file again from the beginning when it ends (``--loop``).
        give_up_s: End with a :class:`~edgepose.errors.SourceError` once a live source has been down (retried
            all along) for this long, so that systemd starts the service afresh (0: never).
    """

    realtime: bool = False
    pace_fps: float = 30.0
    source_timeout_s: float = 10.0
    loop: bool = False
    give_up_s: float = 0.0


class _Reader(threading.Thread):
    """Opens one source object and reads it into the buffer until it ends, fails or is abandoned."""

    def __init__(self, source: Source, owner: CaptureThread, opening: int) -> None:
        super().__init__(name="edgepose-reader", daemon=True)
        self.source = source
        self._owner = owner
        self.opening = opening
        self.abandoned = threading.Event()
        self.opened = False
        self.ended = False
        self.error: EdgePoseError | None = None
        self.frames = 0
        #: ``time.monotonic()`` of the start or of the last frame: what the watchdog measures from.
        self.last_activity = time.monotonic()
        #: Reads in a row that gave no frame.
        self.failed_reads = 0
        self._unconfirmed = 0

    def run(self) -> None:
        owner = self._owner
        try:
            self.source.open()
            self.opened = True
            self.last_activity = time.monotonic()
            pace = owner.pace_interval(self.source)
            grab = getattr(self.source, "grab", None)
            read_lores = getattr(self.source, "read_lores", None)
            next_due = time.perf_counter()
            last_decoded = -float("inf")
            # Read only when the frame can be handed over: a file is decoded on demand, not ahead.
            while not self.abandoned.is_set() and owner.buffer.wait_for_room():
                started = time.perf_counter()
                # A frame nobody will look at (idle mode, --max-fps) is taken from the device undecoded.
                full = owner.take_full_request()
                skip = not full and grab is not None and started - last_decoded < owner.decode_interval_s
                # While idle, a source with a low-resolution stream is looked at there: its main one is not touched.
                lores = not skip and not full and read_lores is not None and owner.lores
                try:
                    image = None if skip else read_lores() if lores and read_lores is not None else self.source.read()
                    got, broken = grab() if grab is not None and skip else image is not None, False
                except FrameError:
                    if not self.source.live:
                        raise
                    image, got, broken = None, False, True
                done = time.perf_counter()
                if self.abandoned.is_set():
                    break
                if not got:
                    if self._lost(broken):
                        self.ended = True
                        break
                    continue
                self._recovered()
                index = owner.next_index()
                if image is not None:
                    last_decoded = started
                    if not owner.deliver(index, image, done, (done - started) * 1000.0, self.opening, lores):
                        break
                    self.frames += 1
                    if self.frames == 1:
                        owner.source_ok(self.source.name)
                if pace:
                    next_due = max(next_due + pace, done - pace)
                    self.abandoned.wait(max(0.0, next_due - time.perf_counter()))
        except EdgePoseError as exc:
            self.error = exc
        except Exception as exc:  # a driver error must end this opening with a message, not hang it
            log.debug("capture failed", exc_info=True)
            self.error = SourceError(f"{self.source.name} failed: {exc}")
        finally:
            try:
                self.source.close()
            except Exception:  # closing a broken device may fail too; nothing more to do about it
                log.debug("closing %s failed", self.source.name, exc_info=True)

    def _lost(self, broken: bool) -> bool:
        """Account for a read without a frame (``broken``: a picture that did not decode); return whether it is lost.

        A file is lost at once; a live source after :data:`MAX_FAILED_READS` in a row or ``source_timeout_s``
        without a frame.
        """
        self.failed_reads += 1
        if broken:
            self._owner.state.decode_errors += 1
        else:
            self._unconfirmed += 1  # OpenCV's read cannot tell a bad frame from an end: counted if a frame follows
        return (
            not self.source.live
            or self.failed_reads >= MAX_FAILED_READS
            or time.monotonic() - self.last_activity > self._owner.source_timeout_s
        )

    def _recovered(self) -> None:
        """Account for a frame: the failed reads before it were bad frames, not an end."""
        self.last_activity = time.monotonic()
        if self._unconfirmed > 0:
            self._owner.state.decode_errors += self._unconfirmed
        self.failed_reads = self._unconfirmed = 0


class CaptureThread(threading.Thread):
    """Reads a source into a :class:`FrameBuffer`, reopening a lost live source, until the end or :meth:`stop`.

    Args:
        source: The first (unopened) source object; it is opened in a reader thread, not here.
        buffer: Where frames go.
        options: Pacing, watchdog timeout and looping.
        reopen: Builds a fresh source object for each reopening (defaults to reusing ``source``).
        state: Shared source state for health and stats (a new one if not given).
    """

    def __init__(
        self,
        source: Source,
        buffer: FrameBuffer,
        options: CaptureOptions | None = None,
        reopen: Callable[[], Source] | None = None,
        state: SourceState | None = None,
    ) -> None:
        super().__init__(name="edgepose-capture", daemon=True)
        self.buffer = buffer
        self._first = source
        self._options = options or CaptureOptions()
        self._reopen = reopen or (lambda: source)
        self.state = state or SourceState()
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._reader: _Reader | None = None
        self.error: EdgePoseError | None = None
        self.frames = 0
        #: Seconds between frames worth decoding, set by the loop (idle mode, ``--max-fps``): a source that
        #: can ``grab()`` (OpenCV) skips decoding the frames in between; 0 decodes every frame.
        self.decode_interval_s = 0.0
        #: Set by the loop while idle: a source with ``read_lores()`` (picamera2) delivers its low-resolution
        #: grey picture instead of the main frame, except once after :meth:`request_full`.
        self.lores = False
        self._full_requested = False
        self.media = MediaClock(time.perf_counter(), self._options.pace_fps)
        self._logged_at = 0.0

    def next_index(self) -> int:
        """Return the number of the next frame taken from the source (decoded or not), across reopenings."""
        with self._lock:
            index = self.frames
            self.frames += 1
        return index

    def request_full(self) -> None:
        """Make the next read a decoded main frame, whatever :attr:`lores` and the interval say (idle's model runs)."""
        with self._lock:
            self._full_requested = True

    def take_full_request(self) -> bool:
        """Return whether the loop asked for a main frame since the last call (the reader's, once per read)."""
        with self._lock:
            requested, self._full_requested = self._full_requested, False
        return requested

    def deliver(self, index: int, image: np.ndarray, captured_at: float, capture_ms: float, opening: int = 0,
                lores: bool = False) -> bool:  # fmt: skip
        """Hand a frame from the current reader to the buffer; ``False`` once the buffer is closed."""
        reader = self._reader
        assert reader is not None, "delivered by a reader"
        media_s = self.media.frame_time(reader.source, index, captured_at)
        return self.buffer.put(Frame(index, image, time.time(), captured_at, capture_ms, media_s, opening, lores))

    @property
    def source_timeout_s(self) -> float:
        """Seconds a live source may go without a frame before it is reopened."""
        return self._options.source_timeout_s

    def pace_interval(self, source: Source) -> float:
        """Seconds between reads of an opened source: its own frame interval with ``--realtime``, else 0."""
        if not self._options.realtime or source.live:
            return 0.0
        return frame_interval_s(source, self._options.pace_fps)

    def source_ok(self, name: str) -> None:
        """Mark the source as delivering (after an opening's first frame)."""
        before = self.state.state
        if before == "reconnecting":
            log.info("%s is back", name)
        elif before == "waiting":
            log.info("%s is there now", name)
        self.state.delivering()

    def reader_alive(self) -> bool:
        """Whether the current reader is still running (e.g. blocked in a driver after a stop)."""
        reader = self._reader
        return reader is not None and reader.is_alive()

    def run(self) -> None:
        """Open, watch and reopen the source until it ends, fails for good, or a stop is requested."""
        source = self._first
        attempt = opening = 0
        try:
            while not self._stop_event.is_set():
                reader = self._reader = _Reader(source, self, opening)
                opening += 1
                reader.start()
                outcome = self._watch(reader)
                if outcome == "stopped":
                    return
                if reader.frames:
                    attempt = 0
                if outcome == "failed" and isinstance(reader.error, PERMANENT_ERRORS):
                    self.error = reader.error  # reopening cannot help: a missing package, a bad setting
                    self.state.end()
                    return
                if not source.live:
                    if outcome == "failed":
                        self.error = reader.error
                    elif self._options.loop and reader.frames:
                        self.media.next_pass(reader.source)
                        source = self._reopen()
                        continue
                    self.state.end()
                    return
                delay = REOPEN_DELAYS_S[min(attempt, len(REOPEN_DELAYS_S) - 1)]
                attempt += 1
                if self._down(source.name, self._loss_reason(reader, outcome), delay, reader.last_activity):
                    return
                if self._stop_event.wait(delay):
                    return
                source = self._reopen()
                self.state.trying()
        finally:
            self.buffer.finish()

    def _watch(self, reader: _Reader) -> str:
        """Wait for the reader to finish, or abandon it; return ``ended``, ``failed``, ``stalled`` or ``stopped``."""
        timeout = self._options.source_timeout_s
        while True:
            reader.join(WATCH_EVERY_S)
            if self._stop_event.is_set():
                reader.abandoned.set()
                return "stopped"
            if not reader.is_alive():
                return "failed" if reader.error is not None else "ended"
            if reader.source.live and time.monotonic() - reader.last_activity > timeout:
                reader.abandoned.set()
                return "stalled"

    def _down(self, name: str, reason: str, delay: float, since: float) -> bool:
        """Account for a live source that is down, to be tried again in ``delay``; return whether to give up.

        The first loss and every new reason are warnings; the same reason again is logged at debug level, and
        at info level every :data:`REMIND_EVERY_S`, so a camera missing for days does not fill the journal.
        """
        state = self.state
        new = not state.retrying or reason != state.reason
        state.lost(reason, delay, since)
        down = state.down_s() or 0.0
        give_up = self._options.give_up_s
        if give_up and down >= give_up:
            self.error = SourceError(f"{name}: no frame for {duration(down)} ({reason}); ending the run so that "
                                     "the service starts afresh ([source] restart_after_s)")  # fmt: skip
            state.end()
            return True
        now = time.monotonic()
        level = logging.WARNING if new else logging.INFO if now - self._logged_at >= REMIND_EVERY_S else logging.DEBUG
        if level > logging.DEBUG:
            self._logged_at = now
        verb = "reopening" if state.state == "reconnecting" else "trying again"
        since_text = "" if new else f" (down for {duration(down)})"
        log.log(level, "%s: %s; %s in %.1f s%s", name, reason, verb, delay, since_text)
        return False

    def _loss_reason(self, reader: _Reader, outcome: str) -> str:
        timeout = self._options.source_timeout_s
        if outcome == "stalled":
            what = "no frame" if reader.opened else "still opening"
            return f"{what} for {timeout:g} s"
        if outcome == "failed":
            return str(reader.error)
        return "stopped delivering frames"

    def stop(self) -> None:
        """Ask the thread to end and unblock it."""
        self._stop_event.set()
        reader = self._reader
        if reader is not None:
            reader.abandoned.set()
        self.buffer.finish()
