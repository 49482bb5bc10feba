"""Pipeline health: frame counts, drops, frame rate, per-stage latency percentiles, frame age; the CPU's temperature.

A leaf the sinks read (stats messages, ``/metrics``, the systemd status) and the pipeline and the capture
thread fill in.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgepose.config import ModelConfig
from edgepose.pose import STAGES, BackendInfo, PoseResult

#: Latency samples kept per stage for percentiles.
WINDOW = 1024
#: Seconds over which the frame rate is measured.
FPS_WINDOW_S = 5.0


#: What each :attr:`SourceState.state` means, in the words ``systemctl status``, ``/healthz`` and the log use.
SOURCE_STATES = {
    "opening": "opening the source",
    "ok": "frames arriving",
    "waiting": "waiting for the camera",
    "reconnecting": "camera lost",
    "ended": "the source ended",
}
#: The states in which the capture thread is trying the source again, with backoff.
RETRYING = ("waiting", "reconnecting")


class SourceState:
    """What the capture thread knows about the source, shared with health checks and sinks.

    The capture thread changes it (:meth:`delivering`, :meth:`lost`, :meth:`trying`, :meth:`end`); the sinks
    read it: the MQTT stats (:meth:`to_dict`), ``/healthz``, ``systemctl status`` and Home Assistant.

    Attributes:
        state: ``opening`` (the first opening, not failed yet), ``ok`` (frames arriving), ``waiting`` (not one
            frame yet in this run: the camera is missing, unplugged or not there yet, and is tried again with
            backoff), ``reconnecting`` (it delivered, was lost, and is tried again with backoff) or ``ended``
            (a file's end, a failure no reopening can cure, or ``restart_after_s`` used up).
        reason: Why the source is down, or was last lost (empty while it never was).
        reopens: How many times the source was opened again after a loss.
        decode_errors: Frames of a live source that could not be decoded and were skipped.
        down_since: ``time.monotonic()`` of the last frame before the source went down (``waiting``: of the
            first opening); ``None`` while it is opening or delivering.
        retry_at: ``time.monotonic()`` of the next opening, ``None`` while one is under way (or none is due).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.state = "opening"
        self.reason = ""
        self.reopens = 0
        self.decode_errors = 0
        self.down_since: float | None = None
        self.retry_at: float | None = None
        self._clock = clock
        self._delivered = False

    @property
    def retrying(self) -> bool:
        """Whether the source is down and tried again with backoff (``waiting`` or ``reconnecting``)."""
        return self.state in RETRYING

    def delivering(self) -> str:
        """Mark the source as delivering (an opening's first frame); return the state it was in."""
        before = self.state
        self._delivered = True
        self.down_since = self.retry_at = None
        self.state = "ok"
        return before

    def lost(self, reason: str, retry_in_s: float, since: float) -> None:
        """Mark the source as down, to be opened again in ``retry_in_s`` seconds.

        Args:
            reason: Why (the opening's error, or what the watchdog saw).
            retry_in_s: The backoff before the next opening.
            since: ``time.monotonic()`` of its last frame (of the opening's start if it gave none); kept
                from the first loss of a series.
        """
        if self.down_since is None:
            self.down_since = since
        self.reason = reason
        self.retry_at = self._clock() + retry_in_s
        self.state = "reconnecting" if self._delivered else "waiting"

    def trying(self) -> None:
        """Mark an opening after a loss as under way."""
        self.retry_at = None
        self.reopens += 1

    def end(self) -> None:
        """Mark the source as ended: nothing more is tried."""
        self.retry_at = None
        self.state = "ended"

    def down_s(self) -> float | None:
        """Seconds the source has been without a frame while retried, or ``None`` while it is not down."""
        since = self.down_since
        return None if since is None or not self.retrying else max(0.0, self._clock() - since)

    def retry_in_s(self) -> float | None:
        """Seconds until the next opening, or ``None`` while one is under way (or while the source is not down)."""
        due = self.retry_at
        return None if due is None or not self.retrying else max(0.0, due - self._clock())

    def headline(self) -> str:
        """Say where the source stands, e.g. ``waiting for the camera for 2 min 5 s, next try in 30 s``."""
        state = self.state
        text = SOURCE_STATES.get(state, state)
        down, retry = self.down_s(), self.retry_in_s()
        if down is not None:
            text += f" for {duration(down)}" if state == "waiting" else f" {duration(down)} ago"
            text += ", trying now" if retry is None else f", next try in {math.ceil(retry)} s"
        return text

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form used in stats messages (``down_s``, ``retry_in_s``: ``null`` unless retrying)."""
        down, retry = self.down_s(), self.retry_in_s()
        return {"state": self.state, "reason": self.reason, "reopens": self.reopens,
                "decode_errors": self.decode_errors, "down_s": None if down is None else round(down, 1),
                "retry_in_s": None if retry is None else round(retry, 1)}  # fmt: skip


def duration(seconds: float) -> str:
    """Write a duration for people: ``8 s``, ``2 min 5 s``, ``3 h 10 min``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


class OutputCounters:
    """The JSON-lines output's queue, counted by its sink (:class:`~edgepose.sinks.jsonl.JsonlSink`).

    Attributes:
        dropped: Lines dropped because the reader did not keep up (live sources; files wait instead).
        queued_bytes: Bytes of serialised lines waiting for the writer.
    """

    def __init__(self) -> None:
        self.dropped = 0
        self.queued_bytes = 0

    def to_dict(self) -> dict[str, int]:
        """Return the JSON form used in stats messages."""
        return {"dropped": self.dropped, "queued_bytes": self.queued_bytes}


class InferenceHealth(Protocol):
    """What a backend tells about its own health (the supervised EdgeTPU worker fills these in)."""

    restarts: int
    fallback_reason: str | None

    @property
    def info(self) -> BackendInfo | None:
        """What runs the model now: the CPU's after the EdgeTPU worker fell back (``None``: no backend yet)."""


class _NoBackend:
    restarts = 0
    fallback_reason: str | None = None
    info: BackendInfo | None = None


class PipelineStats:
    """Thread-safe counters updated by the inference loop and read by sinks and health checks.

    Args:
        min_score: Pose score from which a pose counts as a person (``people``).
    """

    def __init__(self, min_score: float = ModelConfig.min_score) -> None:
        self._min_score = min_score
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.frames = 0
        self.dropped = 0
        self.last_frame_at: float | None = None
        self.last_score = 0.0
        #: People (poses scoring at least ``min_score``) in the last processed frame.
        self.people = 0
        #: Set by the MQTT sink: ``True``/``False`` while enabled, ``None`` when MQTT is off.
        self.mqtt_connected: bool | None = None
        #: The source as the capture thread sees it (opening, ok, waiting, reconnecting, ended).
        self.source = SourceState()
        #: Whether the source is a camera or stream (frames arrive in real time).
        self.source_live = False
        #: ``active``, or ``idle`` while nobody is there (idle mode); frames idle mode did not run the model on.
        self.mode = "active"
        #: The backend (for the EdgeTPU worker's restarts and CPU fallback); a stand-in until one is set.
        self.inference: InferenceHealth = _NoBackend()
        self.idle_skipped = 0
        #: The JSON-lines output (``--output``): lines dropped for a slow reader, bytes waiting.
        self.output = OutputCounters()
        self._times: collections.deque[float] = collections.deque(maxlen=WINDOW)
        self._latency = {stage: collections.deque[float](maxlen=WINDOW) for stage in STAGES}

    def record(self, result: PoseResult, dropped: int) -> None:
        """Account for one processed frame; ``dropped`` is the source's running drop count."""
        now = time.monotonic()
        with self._lock:
            self.frames += 1
            self.dropped = dropped
            self.last_frame_at = now
            self.last_score = result.score
            self.people = result.people(self._min_score)
            self._times.append(now)
            for stage, value in result.latency_ms.items():
                if stage in self._latency:
                    self._latency[stage].append(value)

    def saw_frame(self) -> None:
        """Account for a frame idle mode looked at without running the model: the pipeline is alive."""
        now = time.monotonic()
        with self._lock:
            self.last_frame_at = now

    def fps(self) -> float:
        """Frames per second over the last few seconds."""
        with self._lock:
            now = time.monotonic()
            recent = [t for t in self._times if now - t <= FPS_WINDOW_S]
        if len(recent) < 2:
            return 0.0
        span = recent[-1] - recent[0]
        return (len(recent) - 1) / span if span > 0 else 0.0

    def frame_age(self) -> float | None:
        """Seconds since the last processed frame, or ``None`` before the first."""
        with self._lock:
            return None if self.last_frame_at is None else time.monotonic() - self.last_frame_at

    def percentiles(self, quantiles: tuple[int, ...] = (50, 95, 99)) -> dict[str, dict[str, float]]:
        """Return ``{stage: {"p50": ms, ...}}`` over the recent window."""
        with self._lock:
            samples = {stage: list(values) for stage, values in self._latency.items()}
        result: dict[str, dict[str, float]] = {}
        for stage, values in samples.items():
            if values:
                points = np.percentile(np.asarray(values), quantiles)
                result[stage] = {f"p{q}": round(float(v), 3) for q, v in zip(quantiles, points, strict=True)}
        return result

    def backend_info(self, default: BackendInfo) -> BackendInfo:
        """Return what runs the model now (:attr:`inference`'s info, read at each use), else ``default``.

        Sinks report this rather than what they were given at start: after the EdgeTPU worker fell back,
        the CPU runs the model.
        """
        return self.inference.info or default

    def snapshot(self) -> dict[str, Any]:
        """Return a JSON-ready summary for stats messages and health pages."""
        age = self.frame_age()
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "fps": round(self.fps(), 2),
            "people": self.people,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "frame_age_s": None if age is None else round(age, 3),
            "latency_ms": self.percentiles((50, 95)),
            "source": self.source.to_dict(),
            "mode": self.mode,
            "idle_skipped": self.idle_skipped,
            "inference": {"restarts": self.inference.restarts, "fallback": self.inference.fallback_reason},
            "output": self.output.to_dict(),
        }


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


def temperatures(root: Path = Path("/")) -> dict[str, float]:
    """Return ``{zone type: °C}`` from ``/sys/class/thermal``."""
    result: dict[str, float] = {}
    base = root / "sys" / "class" / "thermal"
    for zone in sorted(base.glob("thermal_zone*")) if base.is_dir() else []:
        raw = _read_text(zone / "temp")
        if raw.lstrip("-").isdigit():
            result[_read_text(zone / "type") or zone.name] = int(raw) / 1000.0
    return result


def cpu_temperature(root: Path = Path("/")) -> float | None:
    """Return the CPU's temperature in °C (the first thermal zone, the SoC on a Pi), or ``None``."""
    temps = temperatures(root)
    return round(next(iter(temps.values())), 1) if temps else None
