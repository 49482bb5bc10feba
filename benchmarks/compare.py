"""One runtime, side by side in one process: bare invoke(), edgepose's pipeline and the simplest straight loop.

Run it with the Python of the venv whose runtime you want to measure (``run_matrix.py`` does):

    .venv/bin/python benchmarks/compare.py --video clip.mp4 --model models/movenet_single_pose_lightning_ptq.tflite

For each thread count it opens one edgepose backend (used by both the bare loop and the pipeline) and
one plain interpreter for the straight loop, then measures all of them round-robin, reversing the order
every round (ABC…CBA), so machine noise hits every contender alike. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgepose.bench.measure import (
    Timing,
    add_pipeline_round,
    peak_rss_mb,
    percentiles,
    run_pipeline,
    runtime_version,
    stage_percentiles,
    time_invokes,
)
from edgepose.config import SourceConfig
from edgepose.inference.families.movenet.estimator import MoveNetEstimator
from edgepose.inference.runtime.backend import BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.inference.runtime.runtimes import find_runtime
from edgepose.manifest import ModelFiles
from edgepose.sources import open_source


def straight_loop(interpreter: Any, video: str, frames: int, timing: Timing) -> None:
    """What users would otherwise write: read → cv2.resize → cvtColor → set_tensor → invoke → get_tensor.

    Timed from the first result to the last (the pipeline's steady rate is measured the same way).
    """
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    size = int(inp["shape"][1])
    capture = cv2.VideoCapture(video)
    done = 0
    first = last = 0.0
    while done < frames:
        ok, frame = capture.read()
        if not ok:
            break
        image = cv2.resize(frame, (size, size))
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        interpreter.set_tensor(inp["index"], np.expand_dims(image, 0))
        interpreter.invoke()
        interpreter.get_tensor(out["index"])
        last = time.perf_counter()
        if done == 0:
            first = last
        done += 1
    capture.release()
    if done >= 2:
        timing.frames += done - 1
        timing.seconds += last - first


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", required=True)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--threads", default="1,2,4")
    parser.add_argument("--frames", type=int, default=150, help="frames per measurement and round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    runtime = find_runtime(args.runtime)
    threads = [int(t) for t in args.threads.split(",")]
    files = ModelFiles(args.model.stem, args.model, None)
    cfg = SourceConfig()
    contenders: list[tuple[str, int, Any]] = []
    estimators: dict[int, MoveNetEstimator] = {}
    for count in threads:
        backend = open_backend(files, BackendRequest(runtime=runtime.name, delegate="xnnpack", threads=count))
        estimators[count] = MoveNetEstimator(backend)
        plain = runtime.module.Interpreter(model_path=str(args.model), num_threads=count)
        plain.allocate_tensors()
        contenders += [("bare", count, backend), ("pipeline", count, estimators[count]), ("straight", count, plain)]

    timings = {(kind, count): Timing() for kind, count, _ in contenders}
    latency: dict[int, list[dict[str, float]]] = {count: [] for count in threads}
    round_ratios: dict[int, list[float]] = {count: [] for count in threads}
    straight_ratios: dict[int, list[float]] = {count: [] for count in threads}
    for number in range(args.rounds):
        order = contenders if number % 2 == 0 else contenders[::-1]
        this_round: dict[tuple[str, int], float] = {}
        for kind, count, thing in order:
            timing = Timing()
            if kind == "bare":
                time_invokes(thing, args.frames, timing)
            elif kind == "pipeline":
                sink = run_pipeline(open_source(args.video, cfg), thing, args.frames)
                add_pipeline_round(sink, timing, latency[count])
            else:
                straight_loop(thing, args.video, args.frames, timing)
            total = timings[(kind, count)]
            total.frames += timing.frames
            total.seconds += timing.seconds
            total.samples_ms += timing.samples_ms
            this_round[(kind, count)] = timing.fps
        for count in threads:
            if this_round[("bare", count)] > 0:
                round_ratios[count].append(this_round[("pipeline", count)] / this_round[("bare", count)])
                straight_ratios[count].append(this_round[("straight", count)] / this_round[("bare", count)])
        print(f"compare: {runtime.name} round {number + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    report: dict[str, Any] = {
        "runtime": runtime.name,
        "runtime_version": runtime_version(runtime.name),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "python": sys.version.split()[0],
        "model": args.model.name,
        "input_size": estimators[threads[0]].backend.input_size,
        "cpu_count": os.cpu_count() or 1,
        "frames_per_round": args.frames,
        "rounds": args.rounds,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "threads": {},
    }
    for count in threads:
        bare = timings[("bare", count)]
        pipeline = timings[("pipeline", count)]
        straight = timings[("straight", count)]
        report["threads"][str(count)] = {
            "bare_fps": round(bare.fps, 2),
            "bare_ms": percentiles(bare.samples_ms),
            "pipeline_fps": round(pipeline.fps, 2),
            "straight_fps": round(straight.fps, 2),
            "pipeline_round_ratios": [round(r, 4) for r in round_ratios[count]],
            "straight_round_ratios": [round(r, 4) for r in straight_ratios[count]],
            "stages_ms": stage_percentiles(latency[count]),
            "stages_mean_ms": {
                stage: round(float(np.mean([sample[stage] for sample in latency[count]])), 3)
                for stage in ("capture", "preprocess", "invoke", "postprocess")
            },
        }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
