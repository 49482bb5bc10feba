"""Still-image accuracy: edgepose's still path (pre-shrink + warp) vs a plain letterbox + INTER_AREA, tta none/flip.

    PYTHONPATH=. .venv/bin/python benchmarks/eval_still.py [--models-dir DIR] [--random-sets 3]

Builds evaluation sets from tests/evalset.py in a temporary folder: the two shared photos with their
truth and a grid of views of them (12 scales × 4 frame aspect ratios), plus ``--random-sets`` sets of
100 random views per photo (scale 0.2-2, aspect, fill, position). Every combination is scored with
edgepose's eval code on the square person crop (``edgepose eval``'s method, margin 0.25) and on the whole
image (what ``edgepose infer`` sees), through one interpreter. Prints Markdown tables: per set and pooled.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from baseline import BaselineEstimator  # noqa: E402
from evalset import default_views, random_views, write_eval_set  # noqa: E402

from edgepose.eval import coco  # noqa: E402
from edgepose.eval.predict import Evaluation, evaluate, predict  # noqa: E402
from edgepose.inference.families.movenet.estimator import MoveNetEstimator  # noqa: E402
from edgepose.inference.runtime.backend import BackendRequest  # noqa: E402
from edgepose.inference.runtime.delegates import open_backend  # noqa: E402
from edgepose.manifest import ModelFiles  # noqa: E402

GRID_SCALES = (0.22, 0.3, 0.37, 0.45, 0.55, 0.63, 0.7, 0.85, 1.0, 1.15, 1.4, 1.7)
PATHS = {"edgepose (pre-shrink + warp)": MoveNetEstimator, "letterbox + INTER_AREA": BaselineEstimator}
MODES = {"person crop, margin 0.25": 0.25, "whole image": None}


def row(name: str, tta: str, evs: list[Evaluation]) -> str:
    """One table row, pooled over evaluations (means weighted by persons)."""
    persons = np.array([e.summary.persons for e in evs], dtype=float)

    def pooled(values: list[float]) -> float:
        return float(np.average(values, weights=persons))

    worst = max((w for e in evs for w in e.summary.worst_keypoints[:1]), key=lambda w: w.error_px)
    return (f"| {name} | {tta} | {int(persons.sum())} | {pooled([e.ap['ap'] for e in evs]):.3f} | "
            f"{pooled([e.summary.mean_oks for e in evs]):.4f} | {pooled([e.summary.pck for e in evs]):.3f} | "
            f"{pooled([e.summary.mean_error_px for e in evs]):.2f} | "
            f"{worst.error_px:.1f} px {worst.keypoint} |")  # fmt: skip


def main() -> int:
    """Build the sets, run every variant, print the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=ROOT.parent / "shared" / "models")
    parser.add_argument("--testdata", type=Path, default=ROOT.parent / "shared" / "testdata")
    parser.add_argument("--random-sets", type=int, default=3)
    args = parser.parse_args()
    model = args.models_dir / "movenet_single_pose_lightning_ptq.tflite"
    backend = open_backend(ModelFiles("lightning", model, None), BackendRequest("ai_edge_litert", "xnnpack", 2))
    results: dict[tuple[str, str, str], list[Evaluation]] = {}
    header = ("| preprocessing | tta | persons | AP | mean OKS | PCK@0.2 | mean error px | worst keypoint |\n"
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"grid": default_views(GRID_SCALES)}
        sets.update({f"random {seed}": random_views(100, seed) for seed in range(1, args.random_sets + 1)})
        for set_name, views in sets.items():
            folder = Path(tmp) / set_name.replace(" ", "_")
            dataset = coco.load(write_eval_set(args.testdata, folder, views))
            for mode, margin in MODES.items():
                print(f"#### {set_name} set, {mode}\n\n{header}")
                for name, kind in PATHS.items():
                    for tta in ("none", "flip"):
                        estimator = kind(backend, tta=tta)
                        still = estimator.still
                        ev = evaluate(dataset, predict(dataset, folder, lambda im, f=still: f(im).keypoints, margin))
                        results.setdefault((mode, name, tta), []).append(ev)
                        print(row(name, tta, [ev]), flush=True)
                print()
    for mode in MODES:
        print(f"#### pooled, {mode}\n\n{header}")
        for name in PATHS:
            for tta in ("none", "flip"):
                print(row(name, tta, results[(mode, name, tta)]))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
