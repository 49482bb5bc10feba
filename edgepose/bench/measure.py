"""``edgepose bench`` measurements: the bare interpreter and the whole pipeline, side by side in one process.

The bare loop fills the input tensor once and times ``invoke()`` alone: the model's speed on this
machine. The pipeline is the real :class:`~edgepose.pipeline.loop.Service` (source, capture thread,
estimator) with the analytics ``edgepose run`` adds by default and a sink that serialises each result's JSON
line, as ``run``'s JSON lines output does, then only records. Both run on the same :class:`Backend` in alternating
rounds (ABAB…), so machine noise hits both alike. A last, paced run feeds frames at the source's
frame rate, like a camera, and measures capture→result when the pipeline is not saturated.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.analytics import Analytics
from edgepose.config import AnalyticsConfig, IdleConfig, SmoothingConfig, SourceConfig
from edgepose.config.choices import RUNTIME_DISTS
from edgepose.errors import SourceError
from edgepose.health import PipelineStats
from edgepose.inference.estimator import Estimator
from edgepose.inference.runtime.backend import Backend
from edgepose.pipeline.loop import Service, ServiceOptions
from edgepose.pose import STAGES, PoseResult
from edgepose.sources.base import Source
from edgepose.sources.synthetic import SyntheticSource

QUANTILES = (50, 95, 99)
#: Distribution names of the interpreter packages, for versions in reports.
#: Invokes before each timed bare round (caches, XNNPACK thread pool).
BARE_WARMUP = 3
#: Frames of the cold-start run that measures the time to the first result.
COLD_FRAMES = 5
#: Per-frame figures derived from ``latency_ms`` (see :func:`stage_percentiles`).
DERIVED = ("capture_to_result", "pre_post", "overhead")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchOptions:
    """How much to measure.

    Attributes:
        frames: Frames for each of the bare loop and the pipeline, split over ``rounds``.
        rounds: Alternating bare/pipeline rounds (0: 3, or 1 below 60 frames).
        live_frames: Frames of the paced capture→result run (0: skip it).
        idle_seconds: Length of the idle-mode run on an empty scene (0: skip it).
    """

    frames: int = 300
    rounds: int = 0
    live_frames: int = 150
    idle_seconds: float = 12.0

    def round_sizes(self) -> list[int]:
        """Split :attr:`frames` into the per-round frame counts."""
        rounds = self.rounds or (3 if self.frames >= 60 else 1)
        rounds = max(1, min(rounds, self.frames))
        base, extra = divmod(self.frames, rounds)
        return [base + (1 if i < extra else 0) for i in range(rounds)]


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """Return ``{"p50": …, "p95": …, "p99": …}`` in the values' unit, rounded to µs for ms values."""
    if not values:
        return {f"p{q}": 0.0 for q in QUANTILES}
    points = np.percentile(np.asarray(values, dtype=np.float64), QUANTILES)
    return {f"p{q}": round(float(v), 3) for q, v in zip(QUANTILES, points, strict=True)}


def process_age_s() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or ``None`` where that is unknown."""
    try:
        stat = Path("/proc/self/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    # Field 22 is the start time in clock ticks after boot; fields 3… follow the ")" of the command name.
    start_ticks = int(stat.rsplit(")", 1)[1].split()[19])
    return max(0.0, uptime - start_ticks / ticks)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (``getrusage`` ``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def runtime_version(runtime: str) -> str:
    """Return the installed version of an interpreter package, or ``"unknown"``."""
    try:
        return importlib.metadata.version(RUNTIME_DISTS.get(runtime, runtime))
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def cpu_seconds() -> float:
    """Return the CPU time this process used so far, all threads, user + system."""
    times = os.times()
    return times.user + times.system


@dataclass
class Timing:
    """Frames, seconds and process CPU seconds summed over rounds, with per-frame samples in milliseconds."""

    frames: int = 0
    seconds: float = 0.0
    samples_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0

    @property
    def fps(self) -> float:
        """Frames per second over all rounds."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_frame(self) -> float:
        """Process CPU time per frame, in ms (user + system, every thread)."""
        return round(1e3 * self.cpu_s / self.frames, 3) if self.frames else 0.0


def time_invokes(backend: Backend, frames: int, timing: Timing) -> None:
    """Time ``frames`` bare ``invoke()`` calls on a filled input; add them to ``timing``."""
    tensor = backend.input_tensor()
    tensor[:] = 128
    del tensor  # the interpreter refuses to run while a view of its buffer is alive
    for _ in range(BARE_WARMUP):
        backend.invoke()
    clock = time.perf_counter
    samples = timing.samples_ms
    invoke = backend.invoke
    cpu = cpu_seconds()
    started = clock()
    for _ in range(frames):
        t0 = clock()
        invoke()
        samples.append((clock() - t0) * 1e3)
    timing.seconds += clock() - started
    timing.cpu_s += cpu_seconds() - cpu
    timing.frames += frames


def time_paced_invokes(backend: Backend, frames: int, fps: float) -> list[float]:
    """Time bare ``invoke()`` calls spaced at ``fps``, as a camera would space them; return ms each.

    An interpreter that idles between frames starts each invoke colder than in a tight loop; this is
    the fair reference for the paced pipeline's latency.
    """
    tensor = backend.input_tensor()
    tensor[:] = 128
    del tensor
    samples: list[float] = []
    period = 1.0 / fps if fps > 0 else 0.0
    due = time.perf_counter()
    for _ in range(frames):
        due += period
        time.sleep(max(0.0, due - time.perf_counter()))
        t0 = time.perf_counter()
        backend.invoke()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples


class RecordingSink:
    """A sink that serialises each result's JSON line as ``run`` does, and records when it arrived and its latency."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.latency: list[dict[str, float]] = []
        self.frame_size: tuple[int, int] = (0, 0)
        #: Process CPU seconds the whole run took (set by :func:`run_pipeline`).
        self.cpu_s = 0.0

    def start(self) -> None:
        """Nothing to start."""

    def publish(self, result: PoseResult) -> None:
        """Serialise the line (and drop it); record the arrival time and the latency dict."""
        (json.dumps(result.to_dict()) + "\n").encode()
        self.arrivals.append(time.perf_counter())
        self.latency.append(result.latency_ms)
        self.frame_size = (result.width, result.height)

    def close(self) -> None:
        """Nothing to release."""


def run_analytics() -> Analytics:
    """Return the analytics ``edgepose run`` adds to video by default (smoothing on)."""
    return Analytics(AnalyticsConfig(), SmoothingConfig())


def run_pipeline(source: Source, estimator: Estimator, frames: int, realtime: bool = False) -> RecordingSink:
    """Run the real service for ``frames`` frames (fewer if the source ends) and return what arrived.

    Raises:
        SourceError: The source produced no frame.
    """
    estimator.reset()
    sink = RecordingSink()
    options = ServiceOptions(max_frames=frames, realtime=realtime)
    cpu = cpu_seconds()
    Service(source, estimator, [sink], options, PipelineStats(), analytics=run_analytics()).run(threading.Event())
    sink.cpu_s = cpu_seconds() - cpu
    if not sink.arrivals:
        raise SourceError(f"{source.name} produced no frames to measure")
    return sink


#: Seconds past ``after_s`` that :func:`measure_idle` waits for the pipeline to go idle.
IDLE_WAIT_S = 30.0


def measure_idle(source: Source, estimator: Estimator, seconds: float, after_s: float = 1.0) -> dict[str, Any]:
    """Run idle mode on an empty scene paced at 30 fps; measure CPU once it has gone idle.

    Returns:
        ``cpu_percent`` (process CPU time over wall time while idle, 100 = one core), the model runs
        per second while idle, and how long it took to go idle.
    """
    estimator.reset()
    sink = RecordingSink()
    stats = PipelineStats()
    options = ServiceOptions(realtime=True, idle=IdleConfig(after_s=after_s))
    stop = threading.Event()
    service = Service(source, estimator, [sink], options, stats, analytics=run_analytics())
    runner = threading.Thread(target=service.run, args=(stop,), name="edgepose-bench-idle", daemon=True)
    started = time.perf_counter()
    runner.start()
    # Wait for it to go idle (a slow or busy machine takes longer than after_s), then one idle second more.
    deadline = started + after_s + IDLE_WAIT_S
    while stats.mode != "idle" and time.perf_counter() < deadline and runner.is_alive():
        time.sleep(0.05)
    went_idle = time.perf_counter() - started
    time.sleep(1.0)
    settle = time.perf_counter() - started
    cpu, wall, runs = cpu_seconds(), time.perf_counter(), len(sink.arrivals)
    state = stats.mode
    time.sleep(max(1.0, seconds - settle))
    cpu, wall, runs = cpu_seconds() - cpu, time.perf_counter() - wall, len(sink.arrivals) - runs
    stop.set()
    runner.join(timeout=5)
    return {
        "state": state,
        "seconds": round(wall, 2),
        "cpu_percent": round(100 * cpu / wall, 2),
        "model_runs_per_s": round(runs / wall, 2),
        "went_idle_after_s": round(went_idle, 1),
        "total_s": round(time.perf_counter() - started, 1),
    }


def add_pipeline_round(sink: RecordingSink, timing: Timing, latency: list[dict[str, float]]) -> None:
    """Add a round's steady rate (first arrival to last) and its latencies to the totals."""
    if len(sink.arrivals) >= 2:
        timing.frames += len(sink.arrivals) - 1
        timing.seconds += sink.arrivals[-1] - sink.arrivals[0]
    latency.extend(sink.latency)


def stage_percentiles(latency: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-stage percentiles of the frames' ``latency_ms``, plus three derived per frame.

    ``capture_to_result`` is read/decode + ``total``; ``pre_post`` is preprocess + postprocess;
    ``overhead`` is ``capture_to_result`` minus that frame's invoke: what the pipeline adds to the model.
    """
    stages: dict[str, list[float]] = {stage: [] for stage in (*STAGES, *DERIVED)}
    for sample in latency:
        for stage in STAGES:
            if stage in sample:
                stages[stage].append(sample[stage])
        capture_to_result = sample.get("capture", 0.0) + sample.get("total", 0.0)
        stages["capture_to_result"].append(capture_to_result)
        stages["pre_post"].append(sample.get("preprocess", 0.0) + sample.get("postprocess", 0.0))
        stages["overhead"].append(capture_to_result - sample.get("invoke", 0.0))
    return {stage: percentiles(values) for stage, values in stages.items() if values}


def run_bench(
    open_source: Callable[[], Source],
    estimator: Estimator,
    options: BenchOptions,
    progress: Progress = lambda _message: None,
) -> dict[str, Any]:
    """Measure the bare interpreter and the pipeline; return the JSON-ready report.

    Args:
        open_source: Builds a fresh, unopened source for each run.
        estimator: The estimator whose backend both loops use.
        options: How many frames and rounds.
        progress: Called with one line per finished step.

    Raises:
        EdgePoseError: The source failed or produced no frames.
    """
    backend = estimator.backend
    source = open_source()
    source_name = source.name
    cold = run_pipeline(source, estimator, COLD_FRAMES)
    age = process_age_s()
    first_result_s = None if age is None else round(age - (time.perf_counter() - cold.arrivals[0]), 3)
    progress(f"first result {first_result_s} s after start" if first_result_s is not None else "first result")

    bare = Timing()
    pipeline = Timing()
    latency: list[dict[str, float]] = []
    sizes = options.round_sizes()
    pipeline_results = 0  # every result of every round: what the rounds' CPU time was spent on
    for number, frames in enumerate(sizes, 1):
        time_invokes(backend, frames, bare)
        sink = run_pipeline(open_source(), estimator, frames)
        add_pipeline_round(sink, pipeline, latency)
        pipeline.cpu_s += sink.cpu_s
        pipeline_results += len(sink.arrivals)
        progress(f"round {number}/{len(sizes)}: bare invoke {bare.fps:.1f} fps, pipeline {pipeline.fps:.1f} fps")

    live: dict[str, Any] | None = None
    if options.live_frames > 0:
        source = open_source()
        frames = min(options.live_frames, options.frames)
        sink = run_pipeline(source, estimator, frames, realtime=True)
        span = sink.arrivals[-1] - sink.arrivals[0]
        pace = float(getattr(source, "fps", 0.0) or ServiceOptions.pace_fps)
        cpu = cpu_seconds()
        paced_bare = time_paced_invokes(backend, frames, pace)
        paced_bare_cpu_ms = 1e3 * (cpu_seconds() - cpu) / frames
        live = {
            "frames": len(sink.arrivals),
            "fps": round((len(sink.arrivals) - 1) / span, 2) if span > 0 else 0.0,
            "latency_ms": stage_percentiles(sink.latency),
            "bare_invoke_ms": percentiles(paced_bare),
            "cpu_ms_per_frame": round(1e3 * sink.cpu_s / len(sink.arrivals), 3),
            "bare_cpu_ms_per_frame": round(paced_bare_cpu_ms, 3),
            "cpu_percent": round(100 * sink.cpu_s / span, 2) if span > 0 else 0.0,
        }
        progress(f"paced run: capture→result p99 {live['latency_ms']['capture_to_result']['p99']:.1f} ms")

    idle: dict[str, Any] | None = None
    if options.idle_seconds > 0:
        width, height = cold.frame_size
        idle = measure_idle(SyntheticSource(SourceConfig(width=width, height=height), empty=True), estimator,
                            options.idle_seconds)  # fmt: skip
        if live is not None and live["cpu_percent"] > 0:
            idle["active_cpu_percent"] = live["cpu_percent"]
            idle["ratio"] = round(idle["cpu_percent"] / live["cpu_percent"], 3)
        progress(f"idle run: {idle['cpu_percent']:.1f} % CPU, {idle['model_runs_per_s']:.1f} model runs/s")

    info = backend.info
    return {
        "model": info.model,
        "input_size": backend.input_size,
        "input_width": backend.input_shape(0)[2],
        "runtime": info.runtime,
        "runtime_version": runtime_version(info.runtime),
        "delegate": info.delegate,
        "threads": info.threads,
        "cpu_count": os.cpu_count() or 1,
        "source": source_name,
        "frame_size": list(cold.frame_size),
        "frames": pipeline.frames,
        "rounds": len(sizes),
        "bare": {
            "fps": round(bare.fps, 2),
            "latency_ms": percentiles(bare.samples_ms),
            "cpu_ms_per_frame": bare.cpu_ms_per_frame,
        },
        "pipeline": {
            "fps": round(pipeline.fps, 2),
            "latency_ms": stage_percentiles(latency),
            "cpu_ms_per_frame": round(1e3 * pipeline.cpu_s / max(1, pipeline_results), 3),
        },
        "live": live,
        "idle": idle,
        "ratio": round(pipeline.fps / bare.fps, 3) if bare.fps > 0 else 0.0,
        "pre_post_ms": _pre_post(latency),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "first_result_s": first_result_s,
    }


def _pre_post(latency: Sequence[dict[str, float]]) -> float:
    """Median of preprocess + postprocess per frame, in ms."""
    values = [s.get("preprocess", 0.0) + s.get("postprocess", 0.0) for s in latency]
    return round(float(np.median(values)), 3) if values else 0.0
