"""Issue 22's three ratios of the real ``edgepose run``, side by side in one run, and optionally against an older tree.

    .venv/bin/python benchmarks/cpu_budget.py [--before DIR] [--rounds 2] [--write benchmarks/RESULTS.md]

1. **CPU per frame, paced**: ``edgepose run --realtime`` on a 640×480 30 fps clip with a person in view (the
   default sinks: JSON lines, analytics, idle mode), its process CPU time per result in the steady state,
   against bare ``invoke()`` paced at the same 30 fps on the same runtime and thread count.
2. **Idle**: ``edgepose run --realtime`` on a static, empty 640×480 30 fps clip once it has gone idle: process
   CPU (share of one core) against the paced run with a person in view.
3. **Saturated**: ``edgepose run`` on the clip read in full (decode included), results per second in the steady
   state, against the best bare ``invoke()`` rate (1…cores threads).

Each run is a real ``python -m edgepose run`` child with its JSON lines piped to this script; CPU time is the
child's (all threads: ``/proc/PID/task/*/schedstat``) between two results well after the start, so start-up
is not counted. Bare ``invoke()`` runs in a child too (``--bare-child``). ``--before DIR`` runs the same
measurements with another source tree first on ``PYTHONPATH`` (e.g. ``git archive main | tar -x -C DIR``),
interleaved round by round with this checkout (ABAB…), so machine noise hits both alike. The clips are built
from testdata/woman_standing.png in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
TESTDATA = Path(os.environ.get("EDGEPOSE_TESTDATA", SHARED / "testdata"))
MIRROR = Path(os.environ.get("EDGEPOSE_MODEL_MIRROR", SHARED / "models"))
WIDTH, HEIGHT, FPS = 640, 480, 30.0
BACKGROUND = (96, 112, 104)
#: Results skipped at the start of each run (model load, first frames, caches).
WARMUP = 60
#: This script's section of benchmarks/RESULTS.md (run_matrix.py keeps it when it rewrites the file).
SECTION = "## Issue 22: CPU per frame, idle and saturated `run`"
#: What the section's tables mean (written under them).
NOTES = [
    "- Each figure is the real `edgepose run` (a child process, default sinks and analytics, Lightning, default "
    "threads); CPU time is the child's, all threads, between its 60th result and its 10th-last, so start-up is "
    "left out. Bare `invoke()` runs in a child of its own each round, on the same runtime and thread count.",
    "- The idle run reads a video file with `--realtime`: FFmpeg decodes inside `grab()` for files (only the colour "
    "conversion is skipped), so decoding 30 frames a second stays in the idle figure, next to the model runs (one a "
    "second on a picture that does not change). A V4L2 camera's `grab()` skips the MJPEG decode, and picamera2 "
    "while idle reads only its 160×120 `lores` Y plane and waits for the frames in between; neither can be "
    "measured on this machine.",
    "- The machine is shared and noisy: bare `invoke()` alone varies by ±30 % between rounds; compare the columns "
    "of one run, and the per-round ratios.",
]
#: Seconds without a person before idle mode starts, for the idle run (the default is 10).
IDLE_AFTER_S = 2.0


def log(message: str) -> None:
    print(f"cpu_budget: {message}", file=sys.stderr, flush=True)


def person_clip(path: Path, frames: int) -> Path:
    """A 640×480 30 fps clip: the standing woman moving left and right while zooming in and out."""
    person = cv2.imread(str(TESTDATA / "woman_standing.png"), cv2.IMREAD_COLOR)
    if person is None:
        raise SystemExit(f"cpu_budget: cannot read {TESTDATA / 'woman_standing.png'} (set EDGEPOSE_TESTDATA)")
    height, width = person.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for index in range(frames):
        phase = (index % 300) / 300
        scale = 0.55 + 0.2 * np.sin(2 * np.pi * phase)
        size = (int(width * scale), int(height * scale))
        small = cv2.resize(person, size, interpolation=cv2.INTER_AREA)
        frame = np.full((HEIGHT, WIDTH, 3), BACKGROUND, dtype=np.uint8)
        x = int((WIDTH - size[0]) * (0.5 + 0.4 * np.sin(4 * np.pi * phase)))
        y = max(0, (HEIGHT - size[1]) // 2)
        frame[y : y + size[1], x : x + size[0]] = small[: HEIGHT - y, : WIDTH - x]
        writer.write(frame)
    writer.release()
    return path


def static_clip(path: Path, frames: int) -> Path:
    """A 640×480 30 fps clip of an empty room: a fixed gradient with a little sensor noise."""
    rng = np.random.default_rng(22)
    base = np.zeros((HEIGHT, WIDTH, 3), dtype=np.int16)
    base[:] = np.linspace(60, 180, WIDTH, dtype=np.int16)[None, :, None]
    base[HEIGHT // 2 :, :] = BACKGROUND
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (WIDTH, HEIGHT))
    for _ in range(frames):
        noise = rng.integers(-2, 3, size=base.shape, dtype=np.int16)
        writer.write(np.clip(base + noise, 0, 255).astype(np.uint8))
    writer.release()
    return path


#: Runs ``edgepose`` with each Python thread's name given to its OS thread, so ``/proc`` tells them apart
#: (threads the runtime and FFmpeg start keep the name of the thread that started them, or their own).
BOOT = """
import ctypes, runpy, sys, threading
libc = ctypes.CDLL(None)
inner = threading.Thread._bootstrap_inner
def named(self):
    libc.prctl(15, ctypes.c_char_p(self.name[-15:].encode()), 0, 0, 0)
    return inner(self)
threading.Thread._bootstrap_inner = named
sys.argv = ["edgepose", *sys.argv[1:]]
runpy.run_module("edgepose", run_name="__main__")
"""
#: What each OS thread of ``run`` is, by the start of its name (the main thread is the loop).
THREAD_KINDS = (("edgepose-reader", "reader (decode)"), ("av:", "FFmpeg decoding threads"),
                ("edgepose-jsonl", "JSON lines writer"), ("dgepose-capture", "capture watchdog"),
                ("python", "interpreter's worker threads"))  # fmt: skip


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds so far per kind of thread of ``pid`` (see :data:`THREAD_KINDS`; ``loop`` is the main thread)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            ns = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        kind = "loop (main thread, its share of invoke() included)" if task.name == str(pid) else next(
            (label for prefix, label in THREAD_KINDS if name.startswith(prefix)), "other")  # fmt: skip
        out[kind] = out.get(kind, 0.0) + ns / 1e9
    return out


def cpu_s(pid: int) -> float:
    """CPU seconds of every thread of ``pid`` so far (``schedstat``: nanoseconds on the CPU)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that just ended
    return total / 1e9


class Child:
    """A ``python -m edgepose run`` child whose JSON lines are counted as they arrive."""

    def __init__(self, tree: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        environ = dict(os.environ, PYTHONPATH=str(tree), EDGEPOSE_MODEL_MIRROR=str(MIRROR), **(env or {}))
        cmd = [sys.executable, "-c", BOOT, "run", "-q", "--models-dir", str(MIRROR), "--model", "lightning",
               *args]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environ, cwd=tree)
        self.lines = 0
        self.marks: dict[int, tuple[float, float]] = {}
        self.threads: dict[int, dict[str, float]] = {}
        self._wanted: set[int] = set()
        self._lock = threading.Lock()
        self.last: dict[str, Any] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def mark_at(self, *lines: int) -> None:
        """Sample (wall time, CPU) when these line counts are reached."""
        self._wanted.update(lines)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines += 1
            if self.lines in self._wanted:
                self.marks[self.lines] = (time.perf_counter(), cpu_s(self.proc.pid))
                self.threads[self.lines] = thread_cpu_s(self.proc.pid)
            if self.lines % 50 == 0:
                self.last = json.loads(raw)

    def sample(self) -> tuple[float, float, int]:
        """Return (wall time, CPU seconds, results so far)."""
        return time.perf_counter(), cpu_s(self.proc.pid), self.lines

    def finish(self, timeout: float = 120.0) -> None:
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        if self.proc.returncode not in (0, -15):
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            raise SystemExit(f"cpu_budget: edgepose run failed ({self.proc.returncode}): {err[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        self.finish()


def paced(tree: Path, clip: Path, frames: int) -> dict[str, float]:
    """CPU per result and share of a core of ``run --realtime`` on the person clip, after :data:`WARMUP`."""
    child = Child(tree, ["--realtime", "--source", str(clip), "--max-frames", str(frames)])
    end = frames - 10
    child.mark_at(WARMUP, end)
    child.finish()
    (w0, c0), (w1, c1) = child.marks[WARMUP], child.marks[end]
    count = end - WARMUP
    before, after = child.threads[WARMUP], child.threads[end]
    threads = {kind: 1e3 * (after[kind] - before.get(kind, 0.0)) / count for kind in after}
    return {"cpu_ms_per_frame": 1e3 * (c1 - c0) / count, "cpu_share": (c1 - c0) / (w1 - w0),
            "fps": count / (w1 - w0), "threads_ms_per_frame": threads}  # fmt: skip


def idle(tree: Path, clip: Path, seconds: float) -> dict[str, float]:
    """Share of a core of ``run --realtime`` on the static clip once idle (after ``IDLE_AFTER_S`` + 3 s)."""
    child = Child(tree, ["--realtime", "--source", str(clip)], {"EDGEPOSE_IDLE_AFTER_S": str(IDLE_AFTER_S)})
    time.sleep(IDLE_AFTER_S + 5.0)
    w0, c0, n0 = child.sample()
    time.sleep(seconds)
    w1, c1, n1 = child.sample()
    child.stop()
    return {"cpu_share": (c1 - c0) / (w1 - w0), "model_runs_per_s": (n1 - n0) / (w1 - w0)}


def saturated(tree: Path, clip: Path, frames: int) -> dict[str, float]:
    """Results per second of ``run`` on the whole clip (decode included), between results 60 and the last 10."""
    child = Child(tree, ["--source", str(clip)])
    end = frames - 10
    child.mark_at(WARMUP, end)
    child.finish()
    (w0, c0), (w1, c1) = child.marks[WARMUP], child.marks[end]
    count = end - WARMUP
    return {"fps": count / (w1 - w0), "cpu_ms_per_frame": 1e3 * (c1 - c0) / count}


def bare(frames: int, paced_frames: int) -> dict[str, Any]:
    """Bare ``invoke()`` in a child of this checkout: paced at 30 fps (default threads), and tight per thread count."""
    cmd = [sys.executable, __file__, "--bare-child", str(frames), str(paced_frames)]
    environ = dict(os.environ, PYTHONPATH=str(ROOT), EDGEPOSE_MODEL_MIRROR=str(MIRROR))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=environ, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"cpu_budget: bare child failed: {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def bare_child(frames: int, paced_frames: int) -> None:
    """In the child: open Lightning as ``run`` does and time bare ``invoke()`` (printed as one JSON object)."""
    from edgepose.bench.measure import Timing, cpu_seconds, time_invokes, time_paced_invokes
    from edgepose.config import ModelConfig
    from edgepose.inference.factory import open_estimator

    out: dict[str, Any] = {"tight_fps": {}}
    cores = os.cpu_count() or 1
    for threads in range(1, min(4, cores) + 1):
        estimator = open_estimator(ModelConfig(name="lightning", models_dir=str(MIRROR), threads=threads))
        timing = Timing()
        time_invokes(estimator.backend, frames, timing)
        out["tight_fps"][threads] = timing.fps
        if threads == min(4, cores):  # the default thread count: what ``run`` uses
            out["threads"] = threads
            cpu = cpu_seconds()
            time_paced_invokes(estimator.backend, paced_frames, FPS)
            out["paced_cpu_ms_per_frame"] = 1e3 * (cpu_seconds() - cpu) / paced_frames
        estimator.close()
    print(json.dumps(out))


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def measure(trees: dict[str, Path], rounds: int, paced_frames: int, idle_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgepose-cpu-") as tmp:
        person = person_clip(Path(tmp) / "person.mp4", max(paced_frames, 900))
        static = static_clip(Path(tmp) / "static.mp4", int(FPS * (IDLE_AFTER_S + idle_s + 15)))
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in [*trees, "bare"]}
        for number in range(rounds):
            order = list(trees.items()) if number % 2 == 0 else list(reversed(trees.items()))
            runs["bare"].append(bare(300, 300))
            for name, tree in order:
                cell = {"paced": paced(tree, person, paced_frames), "idle": idle(tree, static, idle_s),
                        "saturated": saturated(tree, person, 900)}  # fmt: skip
                runs[name].append(cell)
                log(f"round {number + 1}/{rounds} {name}: {json.dumps(cell)}")
            log(f"round {number + 1}/{rounds} bare: {json.dumps(runs['bare'][-1])}")
    bare_paced = median([b["paced_cpu_ms_per_frame"] for b in runs["bare"]])
    best_bare = max(median([b["tight_fps"][t] for b in runs["bare"]]) for t in runs["bare"][0]["tight_fps"])
    summary: dict[str, Any] = {"bare_paced_cpu_ms": bare_paced, "best_bare_fps": best_bare,
                               "threads": runs["bare"][0]["threads"], "trees": {}}  # fmt: skip
    for name in trees:
        cells = runs[name]
        paced_ms = median([c["paced"]["cpu_ms_per_frame"] for c in cells])
        active = median([c["paced"]["cpu_share"] for c in cells])
        idle_share = median([c["idle"]["cpu_share"] for c in cells])
        sat = median([c["saturated"]["fps"] for c in cells])
        summary["trees"][name] = {
            "paced_cpu_ms": paced_ms,
            "paced_ratio": paced_ms / bare_paced,
            "active_cpu_share": active,
            "idle_cpu_share": idle_share,
            "idle_runs_per_s": median([c["idle"]["model_runs_per_s"] for c in cells]),
            "idle_ratio": idle_share / active,
            "saturated_fps": sat,
            "saturated_ratio": sat / best_bare,
            # Each round's saturated rate over the best bare rate measured in that same round (the machine drifts).
            "saturated_ratio_paired": median(
                [c["saturated"]["fps"] / max(b["tight_fps"].values()) for c, b in zip(cells, runs["bare"], strict=True)]
            ),
            "paced_ratio_paired": median(
                [
                    c["paced"]["cpu_ms_per_frame"] / b["paced_cpu_ms_per_frame"]
                    for c, b in zip(cells, runs["bare"], strict=True)
                ]
            ),
            "saturated_cpu_ms": median([c["saturated"]["cpu_ms_per_frame"] for c in cells]),
            "paced_threads_ms": {
                kind: median([c["paced"]["threads_ms_per_frame"].get(kind, 0.0) for c in cells])
                for kind in cells[-1]["paced"]["threads_ms_per_frame"]
            },
        }
    return {"summary": summary, "runs": runs}


def table(summary: dict[str, Any]) -> str:
    names = list(summary["trees"])
    rows = [
        "| figure | " + " | ".join(names) + " | goal |",
        "| --- | " + " | ".join("---" for _ in names) + " | --- |",
    ]
    t = summary["trees"]
    bare_ms = summary["bare_paced_cpu_ms"]
    rows.append("| CPU per frame, `run --realtime` 640×480 30 fps vs bare `invoke()` at the same pace | "
                + " | ".join(f"{t[n]['paced_cpu_ms']:.2f} vs {bare_ms:.2f} ms = **{t[n]['paced_ratio']:.2f}×**"
                             for n in names) + " | ≤ 1.2× |")  # fmt: skip
    rows.append("| idle CPU on a static scene vs the same run with a person in view (share of a core) | "
                + " | ".join(f"{t[n]['idle_cpu_share']:.3f} vs {t[n]['active_cpu_share']:.3f} = "
                             f"**{t[n]['idle_ratio']:.3f}** ({t[n]['idle_runs_per_s']:.1f} model runs/s)"
                             for n in names) + " | ≤ 0.10 |")  # fmt: skip
    rows.append("| saturated `run` on the file (decode included) vs best bare `invoke()` | "
                + " | ".join(f"{t[n]['saturated_fps']:.1f} vs {summary['best_bare_fps']:.1f} fps = "
                             f"**{t[n]['saturated_ratio']:.3f}** (per round {t[n]['saturated_ratio_paired']:.3f})"
                             for n in names) + " | ≥ 0.80 |")  # fmt: skip
    rows += [
        "",
        "CPU per paced frame by thread (ms, process CPU time of each kind of thread):",
        "",
        "| thread | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---" for _ in names) + " |",
    ]
    kinds = sorted(
        {k for n in names for k in t[n]["paced_threads_ms"]},
        key=lambda k: -t[names[-1]]["paced_threads_ms"].get(k, 0.0),
    )
    for kind in kinds:
        rows.append(f"| {kind} | " + " | ".join(f"{t[n]['paced_threads_ms'].get(kind, 0.0):.2f}" for n in names) + " |")
    rows.append(
        "| bare `invoke()` at the same pace, all threads | " + " | ".join(f"{bare_ms:.2f}" for _ in names) + " |"
    )
    return "\n".join(rows)


def write_section(path: Path, head: str, body: str) -> None:
    """Replace (or append) this script's section of ``path``, leaving the rest of the file alone."""
    section = f"{SECTION}\n\n{head}\n\n{body}\n\n" + "\n".join(NOTES) + "\n"
    text = path.read_text() if path.exists() else ""
    start = text.find("\n" + SECTION)
    if start < 0:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + section + (text[end:] if end >= 0 else "")
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="an older source tree to measure side by side (PYTHONPATH)")
    parser.add_argument("--before-name", default="before")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--paced-frames", type=int, default=450)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--write", type=Path, help="put the table into this RESULTS.md, replacing its own section")
    parser.add_argument("--raw", type=Path, help="also write every measurement as JSON to this file")
    parser.add_argument("--bare-child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        bare_child(*args.bare_child)
        return 0
    trees = {args.before_name: args.before.resolve()} if args.before else {}
    trees["this checkout"] = ROOT
    load = f"{os.getloadavg()[0]:.2f}"
    result = measure(trees, max(1, args.rounds), args.paced_frames, args.idle_seconds)
    summary = result["summary"]
    text = table(summary)
    print(text)
    print(json.dumps(summary))
    if args.raw:
        args.raw.write_text(json.dumps(result, indent=1))
    if args.write:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        head = (f"Written by `benchmarks/cpu_budget.py` on {when}: Lightning INT8, {summary['threads']} threads, "
                f"medians of {args.rounds} interleaved rounds; load average (1 min) {load} at the start, "
                f"{os.getloadavg()[0]:.2f} at the end.")  # fmt: skip
        write_section(args.write, head, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
