"""What ``edgepose run`` spends per video frame besides the model, stage by stage, without a profiler's overhead.

    .venv/bin/python benchmarks/frame_costs.py [--video clip.mp4] [--frames 300]

Decodes the frames first, then runs each stage of the loop's per-frame work on them as ``run`` does
(Lightning, the default analytics and smoothing, the JSON line) and reports each stage's CPU time per frame
(``time.thread_time``; for decoding every thread's,
FFmpeg's own included; median of 5 passes over the frames): decode (``read()``: decode + colour conversion)
and ``grab()`` alone, preprocess, decode of the output + crop tracker, the analytics, the JSON line, the
loop's health counters and idle mode's motion check. ``PYTHONPATH=OLD_TREE`` measures another tree the same
way. Without ``--video`` it builds the 640×480 person clip of ``cpu_budget.py`` in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2

from edgepose.analytics import Analytics
from edgepose.config import AnalyticsConfig, IdleConfig, ModelConfig, SmoothingConfig, SourceConfig
from edgepose.health import PipelineStats
from edgepose.inference.factory import open_estimator
from edgepose.pipeline.idle import MotionDetector
from edgepose.pose import PoseResult
from edgepose.sources.opencv import OpenCVSource

MIRROR = Path(os.environ.get("EDGEPOSE_MODEL_MIRROR", Path(__file__).resolve().parents[2] / "shared" / "models"))
PASSES = 5


def process_cpu_s() -> float:
    """CPU seconds of every thread of this process (FFmpeg decodes in threads of its own)."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total / 1e9


def per_frame_ms(frames: int, run: Callable[[], None], clock: Callable[[], float] = time.thread_time) -> float:
    """CPU ms per frame for ``run`` (which handles ``frames`` frames), by ``clock``: the median of the passes."""
    samples = []
    for _ in range(PASSES):
        t0 = clock()
        run()
        samples.append((clock() - t0) * 1e3 / frames)
    return round(statistics.median(samples), 4)


def measure(video: Path, count: int) -> dict[str, Any]:
    cv2.setNumThreads(1)  # as the loop sets it
    source = OpenCVSource(str(video), SourceConfig(), live=False)
    images = []
    source.open()
    while len(images) < count and (image := source.read()) is not None:
        images.append(image)
    source.close()
    n = len(images)

    opened: list[OpenCVSource] = []  # closed at the end: FFmpeg's threads end with them, taking their CPU time along

    def decode() -> None:
        src = OpenCVSource(str(video), SourceConfig(), live=False)
        src.open()
        opened.append(src)
        for _ in range(n):
            src.read()

    def grab() -> None:
        src = OpenCVSource(str(video), SourceConfig(), live=False)
        src.open()
        opened.append(src)
        for _ in range(n):
            src.grab()

    costs: dict[str, float] = {"decode (read), all threads": per_frame_ms(n, decode, process_cpu_s),
                               "grab() only, all threads": per_frame_ms(n, grab, process_cpu_s)}  # fmt: skip
    for src in opened:
        src.close()
    estimator = open_estimator(ModelConfig(name="lightning", models_dir=str(MIRROR)))
    results: list[PoseResult] = []

    def track() -> None:
        estimator.reset()
        results.clear()
        for index, image in enumerate(images):
            estimate = estimator.track(image)
            latency = {"capture": 1.0, "preprocess": estimate.preprocess_ms, "invoke": estimate.invoke_ms,
                       "postprocess": estimate.postprocess_ms, "total": 9.0}  # fmt: skip
            results.append(PoseResult(index, 1.7e9 + index / 30, image.shape[1], image.shape[0], estimate.keypoints,
                                      latency, image, estimate.poses, media_s=index / 30))  # fmt: skip

    # Preprocess and postprocess: the estimator's own timers, without the invoke between them.
    track()
    samples = [r.latency_ms for r in results]
    costs["preprocess (wall)"] = round(statistics.median(s["preprocess"] for s in samples), 4)
    costs["postprocess + tracker (wall)"] = round(statistics.median(s["postprocess"] for s in samples), 4)
    analysed: list[PoseResult] = []

    def analytics() -> None:
        stage = Analytics(AnalyticsConfig(), SmoothingConfig())
        analysed.clear()
        analysed.extend(stage.update(r) for r in results)

    costs["analytics"] = per_frame_ms(n, analytics)

    def json_line() -> None:
        for r in analysed:
            (json.dumps(r.to_dict()) + "\n").encode()

    costs["JSON line"] = per_frame_ms(n, json_line)

    def health() -> None:
        stats = PipelineStats()
        for r in analysed:
            stats.record(r, 0)

    costs["health counters"] = per_frame_ms(n, health)

    def motion() -> None:
        detector = MotionDetector(IdleConfig().motion_threshold, 0.05)
        for image in images:
            detector.moved(image)

    costs["motion check (idle only)"] = per_frame_ms(n, motion)
    estimator.close()
    return {"frames": n, "ms_per_frame": costs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path)
    parser.add_argument("--frames", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgepose-costs-") as tmp:
        video = args.video
        if video is None:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from cpu_budget import person_clip

            video = person_clip(Path(tmp) / "person.mp4", args.frames)
        result = measure(video, args.frames)
    for stage, ms in result["ms_per_frame"].items():
        print(f"| {stage} | {ms:.3f} |")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
