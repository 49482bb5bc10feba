"""Per-frame cost of the supervised inference worker: the same delegate in the worker vs in-process.

There is no EdgeTPU on the build machine, so the worker's child runs the CPU kernels; the difference
is the worker's own cost per frame (two shared-memory copies, a request and a reply on pipes, two
context switches), which an EdgeTPU invoke pays the same way. Run:

    .venv/bin/python benchmarks/worker_overhead.py [--model M.tflite] [--image photo] [--rounds 12]

Contenders run interleaved (the order reversed every round) and each round's median per-frame time is
paired with the other contender's from the same round; the overhead is the median of those paired
differences. Three measurements: ``frame`` (``MoveNetEstimator.track`` on a photo: preprocess, invoke,
decode), ``invoke`` (``invoke()`` + ``output()`` on a ready input), and ``floor`` (``invoke()`` +
``output()`` of a one-op model with the same tensors, so the model costs almost nothing and what is left is
the round trip itself). Prints a Markdown table and one JSON object.
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

from edgepose.inference.families.movenet.estimator import MoveNetEstimator
from edgepose.inference.runtime.backend import Backend, BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.inference.runtime.runtimes import find_runtime
from edgepose.inference.worker.facade import WorkerBackend
from edgepose.inference.worker.policy import WorkerPolicy
from edgepose.inference.worker.process import WorkerSpec
from edgepose.manifest import ModelFiles
from edgepose.pose import BackendInfo
from edgepose.sources.images import load_image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MIRROR = Path(os.environ.get("EDGEPOSE_MODEL_MIRROR", SHARED / "models"))
TESTDATA = Path(os.environ.get("EDGEPOSE_TESTDATA", SHARED / "testdata"))
#: This script's section of benchmarks/RESULTS.md (run_matrix.py keeps it when it rewrites the file).
SECTION = "## Supervised inference worker"
#: What the section's table means (written under it).
NOTES = [
    "- Each row pairs the worker with in-process inference on the same delegate, thread count and input, "
    "interleaved round by round (order reversed every round); the difference column is the median of the "
    "per-round differences of the per-frame medians.",
    "- `floor` is the worker's own cost per invoke: a one-op model (CAST) with MoveNet's input, whose invoke "
    "costs almost nothing, so what remains is the request, the reply and the shared-memory copies (its "
    "442 KB float output is far larger than MoveNet's 204 bytes, so this is an upper bound for the copies).",
    "- `invoke` (`invoke()` + `output()`) and `frame` (`MoveNetEstimator.track`) run Lightning itself. There the "
    "difference also holds scheduling: the parent sleeps while the child runs, and on a shared 2-core machine "
    "each wake-up may wait for a core or land on a cold one, which is what spreads the rounds. Where the "
    "rounds spread far wider than the median difference, that median is noise, not the worker's cost.",
]


def open_pair(model: Path, runtime: str, delegate: str, threads: int) -> tuple[Backend, WorkerBackend]:
    """Open the model in-process and in a worker with the same runtime, delegate and threads."""
    request = BackendRequest(runtime=runtime, delegate=delegate, threads=threads)
    local = open_backend(ModelFiles(model.stem, model, None), request)
    spec = WorkerSpec(local.info.runtime, model, delegate=delegate, threads=threads)
    worker = WorkerBackend(spec, BackendInfo(local.info.runtime, delegate, threads, model.name))
    return local, worker


def per_frame_ms(step: Callable[[], object], frames: int) -> float:
    """Return the median milliseconds of ``frames`` calls of ``step`` (after two warm-up calls)."""
    step()
    step()
    times = []
    for _ in range(frames):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def invoke_step(backend: Backend) -> Callable[[], object]:
    """``invoke()`` then ``output()``: what the estimator pays per model run beyond pre/post-processing."""

    def step() -> object:
        backend.invoke()
        return backend.output()

    return step


def interleaved(steps: dict[str, Callable[[], object]], frames: int, rounds: int) -> dict[str, list[float]]:
    """Run each contender ``rounds`` times, reversing the order every round; return per-round medians."""
    medians: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for index in range(rounds):
        for name in names if index % 2 == 0 else reversed(names):
            medians[name].append(per_frame_ms(steps[name], frames))
    return medians


def summary(label: str, medians: dict[str, list[float]]) -> dict[str, Any]:
    """Median per-frame times and the median of the per-round differences (worker - in-process)."""
    diffs = [w - p for w, p in zip(medians["worker"], medians["in-process"], strict=True)]
    return {
        "measure": label,
        "in_process_ms": statistics.median(medians["in-process"]),
        "worker_ms": statistics.median(medians["worker"]),
        "overhead_ms": statistics.median(diffs),
        "overhead_min_ms": min(diffs),
        "overhead_max_ms": max(diffs),
    }


def restart_s(model: Path, runtime: str, delegate: str, threads: int, count: int) -> dict[str, float]:
    """Time the invokes that meet a dead child: kill, reap, start a new child, load the model, re-run.

    The child is made to abort (the worker's test hook) on every other request; the backoff is zero so
    the figure is the recovery itself. Returns the median and worst seconds, and a normal invoke's.
    """
    aborts = frozenset(range(4, 4 + 2 * count, 2))
    spec = WorkerSpec(runtime, model, delegate=delegate, threads=threads, test_abort_at=aborts)
    policy = WorkerPolicy(backoff_s=0.0, max_failures=count + 1)
    worker = WorkerBackend(spec, BackendInfo(runtime, delegate, threads, model.name), policy=policy)
    recovering, normal = [], []
    try:
        for _ in range(3 + 2 * count):
            before = worker.restarts
            t0 = time.perf_counter()
            worker.invoke()
            took = time.perf_counter() - t0
            (recovering if worker.restarts > before else normal).append(took)
        assert worker.restarts == count and worker.fallback_reason is None
    finally:
        worker.close()
    return {"median_s": statistics.median(recovering), "max_s": max(recovering), "invoke_s": statistics.median(normal)}


def floor_model(folder: Path) -> Path:
    """A one-op model (CAST uint8 → float32) with MoveNet's input shape, built by the tests' helper."""
    sys.path.insert(0, str(ROOT / "tests"))
    from ai_edge_litert import schema_py_generated as schema
    from tflite_builder import one_op_model

    path = folder / "cast_1x192x192x3.tflite"
    types = schema.TensorType
    return one_op_model(path, [1, 192, 192, 3], types.UINT8, types.FLOAT32, schema.BuiltinOperator.CAST)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=MIRROR / "movenet_single_pose_lightning_ptq.tflite")
    parser.add_argument("--image", type=Path, default=TESTDATA / "squat.bmp")
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--delegates", default="cpu,xnnpack")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--frames", type=int, default=100, help="frames per contender and round")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--restarts", type=int, default=5, help="recoveries to time")
    parser.add_argument("--write", type=Path, help="also put the table into this RESULTS.md, replacing its own section")
    args = parser.parse_args()

    runtime = find_runtime(args.runtime)
    start_load = f"{os.getloadavg()[0]:.2f}"
    image = load_image(args.image)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cast = floor_model(Path(tmp))
        for delegate in args.delegates.split(","):
            local, worker = open_pair(args.model, runtime.name, delegate, args.threads)
            try:
                estimators = {"in-process": MoveNetEstimator(local), "worker": MoveNetEstimator(worker)}
                frame = interleaved(
                    {k: (lambda e=e: e.track(image)) for k, e in estimators.items()}, args.frames, args.rounds
                )
                results.append({"delegate": delegate, **summary("frame", frame)})
                invoke = interleaved(
                    {"in-process": invoke_step(local), "worker": invoke_step(worker)}, args.frames, args.rounds
                )
                results.append({"delegate": delegate, **summary("invoke", invoke)})
                assert worker.restarts == 0 and worker.fallback_reason is None
            finally:
                worker.close()
            local, worker = open_pair(cast, runtime.name, delegate, args.threads)
            try:
                floor = interleaved(
                    {"in-process": invoke_step(local), "worker": invoke_step(worker)}, args.frames, args.rounds
                )
                results.append({"delegate": delegate, **summary("floor (one-op model)", floor)})
            finally:
                worker.close()

    restart = restart_s(args.model, runtime.name, "xnnpack", args.threads, args.restarts)
    recovery = (
        f"Recovery: an invoke that meets a dead child (SIGABRT) returns after {restart['median_s']:.2f} s "
        f"(median of {args.restarts}, worst {restart['max_s']:.2f} s; an ordinary invoke "
        f"{restart['invoke_s'] * 1e3:.1f} ms): reaping it, starting a new child (Python, the runtime, the model) "
        "and re-running the frame, with the backoff set to 0 (the default waits 0.5 s first, doubling to 2 s)."
    )
    table = markdown(results) + "\n\n" + recovery
    head = f"{runtime.name} {runtime.version}, {args.threads} thread(s), {args.rounds} rounds × {args.frames} frames"
    print(head)
    print(table)
    about = {"runtime": runtime.name, "version": runtime.version, "threads": args.threads}
    print(json.dumps({**about, "results": results, "restart": restart}))
    if args.write:
        write_section(args.write, head, table, start_load)
    return 0


def markdown(results: list[dict[str, Any]]) -> str:
    """Return the results as a Markdown table."""
    lines = [
        "| delegate | measure | in-process p50 (ms) | worker p50 (ms) | worker − in-process (ms, median of rounds) "
        "| range over rounds (ms) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['delegate']} | {r['measure']} | {r['in_process_ms']:.3f} | {r['worker_ms']:.3f} | "
            f"{r['overhead_ms']:+.3f} | {r['overhead_min_ms']:+.3f} … {r['overhead_max_ms']:+.3f} |"
        )
    return "\n".join(lines)


def write_section(path: Path, head: str, table: str, start_load: str) -> None:
    """Replace (or append) the worker's section of ``path``, leaving the rest of the file alone."""
    end_load = f"{os.getloadavg()[0]:.2f}"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    section = "\n".join([
        SECTION,
        "",
        f"Written by `benchmarks/worker_overhead.py --write` on {when}: {head}; load average (1 min) "
        f"{start_load} at the start, {end_load} at the end.",
        "",
        table,
        "",
        *NOTES,
        "",
    ])  # fmt: skip
    text = path.read_text() if path.exists() else ""
    start = text.find("\n" + SECTION)
    if start < 0:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + (text[end:] if end >= 0 else "")
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
