"""Wires source → estimator → analytics → sinks: the capture thread, the inference loop, health and shutdown."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2

from edgepose.analytics import Analytics
from edgepose.config import IdleConfig, ModelConfig, SourceConfig
from edgepose.control import Controls
from edgepose.errors import EdgePoseError
from edgepose.health import PipelineStats
from edgepose.inference.estimator import Estimator
from edgepose.pipeline.capture import CaptureOptions, CaptureThread, Frame, FrameBuffer
from edgepose.pipeline.idle import IDLE, IdleGate
from edgepose.pose import PoseResult
from edgepose.sinks import Heartbeat, Sink, sink_failure
from edgepose.sources.base import Source

log = logging.getLogger(__name__)

#: Seconds between progress lines in the log.
PROGRESS_EVERY_S = 10.0
#: How long the loop waits for a frame before checking for a stop request.
POLL_S = 0.25
#: GIL switch interval while the loop runs (Python's default is 5 ms): when invoke() returns while a sink
#: or capture thread is busy in Python, the loop gets the GIL back within this long. Measured on 2 cores,
#: 2 threads: a busy Python thread cut bare invoke from 110 to 53/s at 5 ms, 67/s at 0.5 ms.
SWITCH_INTERVAL_S = 0.0005
#: OpenCV threads while the loop runs: the per-frame resampling is too small to gain from a second
#: thread, whose hand-over and spinning take CPU from the interpreter's threads (measured: pipeline/bare
#: 0.885 with 1 thread vs 0.846 with OpenCV's default of one thread per core, 2 cores).
OPENCV_THREADS = 1
#: How long shutdown waits for the capture thread: SIGTERM must end the process within 2 s.
STOP_WAIT_S = 0.5
#: Seconds between frames decoded while detection is off (each is dropped unseen: it only shows the camera lives).
PAUSED_DECODE_S = 1.0


@dataclass(frozen=True)
class ServiceOptions:
    """How the loop runs.

    Attributes:
        max_frames: Stop after this many processed frames (0: no limit).
        realtime: Pace file sources at their own frame rate and let the newest frame win.
        pace_fps: Frame rate to pace at when the source does not report one.
        source_timeout_s: A live source with no new frame for this long is reopened.
        loop: Start a file again when it ends.
        max_fps: Process at most this many frames per second (0: no cap); waits, never spins.
        idle: Idle mode (applies to cameras, streams and ``--realtime`` files, not to files read in full).
        min_score: Pose score that counts as a person for idle mode, until the analytics say ``present``.
        give_up_s: End the run once a live source has been down this long (0: never; ``restart_after_s``
            under systemd).
    """

    max_frames: int = SourceConfig.max_frames
    realtime: bool = SourceConfig.realtime
    pace_fps: float = SourceConfig.fps
    source_timeout_s: float = SourceConfig.timeout_s
    loop: bool = SourceConfig.loop
    max_fps: float = SourceConfig.max_fps
    idle: IdleConfig = field(default_factory=lambda: IdleConfig(enabled=False))
    min_score: float = ModelConfig.min_score
    give_up_s: float = 0.0


class Service:
    """Runs the pipeline until the source ends, ``max_frames`` is reached, a sink fails or ``stop`` is set.

    Args:
        source: An unopened source; the capture thread opens it.
        estimator: The pose estimator (owns the backend).
        sinks: Started sinks; each ``publish`` is called from this loop.
        options: Loop options.
        stats: Shared health counters (also read by sinks).
        reopen: Builds a fresh source object when a lost live source is reopened (default: reuse ``source``).
        analytics: Adds state and events to each result before the sinks see it (``None``: off).
        controls: Commands from outside, applied between frames (``None``: none). While detection is off
            (``stats.paused``) no frame is analysed and no sink gets a result; :class:`~edgepose.sinks.Heartbeat`
            sinks (the systemd watchdog, the preview's "paused" picture) get ``alive()`` instead, every ``POLL_S``.
    """

    def __init__(
        self,
        source: Source,
        estimator: Estimator,
        sinks: Sequence[Sink],
        options: ServiceOptions,
        stats: PipelineStats,
        reopen: Callable[[], Source] | None = None,
        analytics: Analytics | None = None,
        controls: Controls | None = None,
    ) -> None:
        self.source = source
        self.analytics = analytics
        self.estimator = estimator
        self.sinks = list(sinks)
        self.options = options
        self.stats = stats
        self._reopen = reopen
        self.controls = controls
        self._paused = False
        #: After :meth:`run`: the capture thread was still inside a read when the loop ended.
        self.capture_stuck = False
        self._opening = -1
        self._size: tuple[int, int] | None = None

    def run(self, stop: threading.Event) -> int:
        """Process frames; return how many were processed.

        Raises:
            EdgePoseError: The source failed (after capture stopped and the frames before were published),
                or a sink failed for good (its ``error``).
        """
        live = self.source.live or self.options.realtime
        # One frame: the newest wins for live sources; files are read on demand while the previous frame
        # is inferred, so decoding overlaps inference and no frame waits longer than one inference.
        buffer = FrameBuffer(capacity=1, drop_oldest=live)
        capture = CaptureThread(self.source, buffer, self._capture_options(), self._reopen, self.stats.source)
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL_S))
        opencv_threads = cv2.getNumThreads()
        cv2.setNumThreads(OPENCV_THREADS)
        capture.start()
        processed = 0
        failure: EdgePoseError | None = None
        next_progress = time.monotonic() + PROGRESS_EVERY_S
        cap_s = 1.0 / self.options.max_fps if self.options.max_fps > 0 else 0.0
        gate = IdleGate(self.options.idle, time.monotonic()) if live and self.options.idle.enabled else None
        next_run = 0.0
        run_next = False  # a low-resolution look decided that the next main frame runs the model
        try:
            while not stop.is_set():
                if self.controls is not None:
                    self.controls.apply_pending()
                if self.stats.paused:
                    if not self._pause(buffer, capture, live, stop):
                        break  # the source ended while paused
                    continue
                if self._paused:  # detection is on again: start the trackers afresh, as on a new opening
                    self._paused, self._opening = False, -1
                    capture.decode_interval_s = cap_s
                if cap_s and (wait := next_run - time.monotonic()) > 0 and stop.wait(wait):
                    break  # --max-fps: sleep until the next frame is due (newest-wins sources drop the rest)
                try:
                    frame = buffer.get(timeout=POLL_S)
                except TimeoutError:
                    self._no_frame(capture)
                    continue
                if frame is None:
                    break
                now = time.monotonic()
                if frame.lores:  # idle on a camera's low-resolution stream: motion only, the main stream untouched
                    if gate is None or gate.should_run(now, frame.image):
                        capture.request_full()  # the model runs on the next main frame, without a second look
                        run_next = True
                    capture.lores = gate is not None and gate.state == IDLE
                    if gate is not None:
                        self.stats.idle_skipped = gate.skipped
                    self.stats.saw_frame()
                    continue
                self._follow_source(frame, gate)
                if gate is not None and not run_next and not gate.should_run(now, frame.image):
                    self.stats.idle_skipped = gate.skipped
                    self.stats.saw_frame()
                    continue
                run_next = False
                next_run = now + cap_s
                try:
                    result = self._process(frame)
                except EdgePoseError as exc:
                    if not stop.is_set():
                        raise
                    # e.g. the EdgeTPU worker cut its recovery short for the stop: this frame has no result
                    log.info("frame %d not finished: %s", frame.index, exc)
                    break
                if self.analytics is not None:
                    result = self.analytics.update(result)
                self.stats.record(result, buffer.dropped)
                if gate is not None:
                    gate.observe(now, self._present(result), self.analytics is not None and self.analytics.deciding)
                    self.stats.mode = gate.state
                    capture.decode_interval_s = max(cap_s, gate.check_interval_s)
                    capture.lores = gate.state == IDLE
                for sink in self.sinks:
                    sink.publish(result)
                processed += 1
                if (failure := sink_failure(self.sinks)) is not None:
                    break
                if self.options.max_frames and processed >= self.options.max_frames:
                    break
                if time.monotonic() >= next_progress:
                    next_progress += PROGRESS_EVERY_S
                    log.info("%d frames, %.1f fps, %d dropped", processed, self.stats.fps(), buffer.dropped)
        finally:
            sys.setswitchinterval(switch_interval)
            cv2.setNumThreads(opencv_threads)
            capture.stop()
            capture.join(timeout=STOP_WAIT_S)
            self.capture_stuck = capture.is_alive() or capture.reader_alive()
            if self.capture_stuck:  # a read stuck in a driver or a stalled stream: it closes its own source later
                log.info("%s is still inside a read %.1f s after the stop; not waiting for it",
                         self.source.name, STOP_WAIT_S)  # fmt: skip
        if failure is not None:
            raise failure
        if capture.error is not None and not stop.is_set():
            raise capture.error
        log.info("processed %d frames (%d dropped)", processed, buffer.dropped)
        return processed

    def _no_frame(self, capture: CaptureThread) -> None:
        """Tell the heartbeat sinks that the loop is alive and waited ``POLL_S`` for a frame in vain.

        Only while the capture thread runs (it retries a source that is down); only this loop calls it, so a loop
        stuck in the estimator or a sink stops these calls, and the systemd watchdog's pings, too.
        """
        if capture.is_alive():
            self._beat()

    def _beat(self) -> None:
        """Tell the heartbeat sinks the loop is alive though no frame is published (a pause, a source retried)."""
        for sink in self.sinks:
            if isinstance(sink, Heartbeat):
                sink.alive()

    def _pause(self, buffer: FrameBuffer, capture: CaptureThread, live: bool, stop: threading.Event) -> bool:
        """One turn with detection off: a live source's frame is taken and dropped unseen, sinks get a heartbeat.

        Health sees the frames (a camera that dies during a pause still shows as stale), systemd's watchdog
        keeps being pinged; a file waits where it is. Return ``False`` when the source ended.
        """
        if not self._paused:
            self._paused = True
            capture.decode_interval_s = PAUSED_DECODE_S  # sources that can grab() skip decoding the rest
        if live:
            try:
                frame = buffer.get(timeout=POLL_S)
            except TimeoutError:
                pass
            else:
                if frame is None:
                    return False
                self.stats.saw_frame()
        else:
            stop.wait(POLL_S)
            self.stats.saw_frame()
        self._beat()
        return True

    def _follow_source(self, frame: Frame, gate: IdleGate | None) -> None:
        """Start what follows the scene afresh on a new opening of the source (a reopen, a ``--loop``) or size.

        The crop tracker, the keypoint smoothing and idle mode's motion background would otherwise carry a
        region, keypoints or a picture from the previous opening, or from other pixel coordinates, into this one.
        """
        height, width = frame.image.shape[:2]
        if self.source.still or (frame.opening == self._opening and (width, height) == self._size):
            return
        if self._size is not None and (width, height) != self._size:
            log.info("%s changed its frame size from %dx%d to %dx%d", self.source.name, *self._size, width, height)
        self._opening, self._size = frame.opening, (width, height)
        self.estimator.reset()
        if self.analytics is not None:
            self.analytics.restart()
        if gate is not None:
            gate.motion.reset()

    def _present(self, result: PoseResult) -> bool:
        """Return whether a person is there: the analytics' hysteresis when they ran, else the pose score."""
        if result.state is not None:
            return bool(result.state.get("present"))
        return result.score >= self.options.min_score

    def _capture_options(self) -> CaptureOptions:
        opts = self.options
        return CaptureOptions(realtime=opts.realtime, pace_fps=opts.pace_fps, source_timeout_s=opts.source_timeout_s,
                              loop=opts.loop, give_up_s=opts.give_up_s)  # fmt: skip

    def _process(self, frame: Frame) -> PoseResult:
        image = frame.image
        estimate = self.estimator.still(image) if self.source.still else self.estimator.track(image)
        height, width = image.shape[:2]
        # ``total`` runs from the frame being delivered by the source to its result (slot wait included);
        # ``capture`` (the read itself) is not part of it: for a camera it is mostly waiting for the next frame.
        latency = {
            "capture": frame.capture_ms,
            "preprocess": estimate.preprocess_ms,
            "invoke": estimate.invoke_ms,
            "postprocess": estimate.postprocess_ms,
            "total": (time.perf_counter() - frame.captured_at) * 1e3,
        }
        return PoseResult(frame.index, frame.ts, width, height, estimate.keypoints, latency, image, estimate.poses,
                          media_s=frame.media_s)  # fmt: skip
