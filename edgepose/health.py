"""Pipeline health: frame counts, drops, frame rate, per-stage latency percentiles, frame age; the CPU's temperature.

A leaf the sinks read (stats messages, ``/metrics``, the systemd status) and the pipeline and the capture
thread fill in.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgepose.config import ModelConfig
from edgepose.pose import STAGES, BackendInfo, PoseResult

#: Latency samples kept per stage for percentiles.
WINDOW = 1024
#: Seconds over which the frame rate is measured.
FPS_WINDOW_S = 5.0


class SourceState:
    """What the capture thread knows about the source, shared with health checks and sinks.

    Attributes:
        state: ``opening``, ``ok``, ``reconnecting`` or ``ended``.
        reason: Why the source was last lost (empty while it never was).
        reopens: How many times the source was opened again after a loss.
        decode_errors: Frames of a live source that could not be decoded and were skipped.
    """

    def __init__(self) -> None:
        self.state = "opening"
        self.reason = ""
        self.reopens = 0
        self.decode_errors = 0

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form used in stats messages."""
        return {"state": self.state, "reason": self.reason, "reopens": self.reopens,
                "decode_errors": self.decode_errors}  # fmt: skip


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
        #: The source as the capture thread sees it (opening, ok, reconnecting, ended).
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
