"""The still path across environments: stability under one grey level, reference deviations, agreement, eval.

    .venv/bin/python benchmarks/still_stability.py [--python .venv-pi/bin/python ...] [--seeds 16]

(models and photos from EDGEPOSE_MODEL_MIRROR and EDGEPOSE_TESTDATA, else ../shared, or --models-dir, --testdata)

Runs in this interpreter and in every ``--python`` (each with edgepose importable, e.g. ``.venv-pi``),
for two still-image rules, each with ``tta`` flip and none: edgepose's (the passes combined by score)
and the one before issue 22 (the better-scoring of two passes, tests/baseline.py's ``PickOneEstimator``).
Per environment: squat.bmp's largest deviation from Coral's reference (tolerance 0.04),
woman_standing.png's L∞ to its truth (21 px), the largest and the mean keypoint move under a ±1
grey-level perturbation (tests/perturb.py; the photos and two crops of each, ``--seeds`` seeds),
``edgepose eval``'s figures on the 42-person set of tests/evalset.py (person crops, margin 0.25) and on
its whole images, and the milliseconds per still (CPU time of one XNNPACK thread, median over the two
photos). Across environments: the largest difference of the photos' keypoints (normalised to the
image) from the first environment's. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from baseline import PickOneEstimator  # noqa: E402
from evalset import write_eval_set  # noqa: E402
from perturb import VIEWS, perturbed, view  # noqa: E402
from reference import coral_reference, coral_worst_error, linf_px, woman_truth  # noqa: E402

from edgepose.eval import coco  # noqa: E402
from edgepose.eval.predict import evaluate, predict  # noqa: E402
from edgepose.inference.families.movenet.estimator import MoveNetEstimator  # noqa: E402
from edgepose.inference.runtime.backend import BackendRequest  # noqa: E402
from edgepose.inference.runtime.delegates import open_backend  # noqa: E402
from edgepose.manifest import ModelFiles  # noqa: E402
from edgepose.sources.images import load_image  # noqa: E402

RULES = {
    "combined (edgepose), flip": (MoveNetEstimator, "flip"),
    "combined (edgepose), none": (MoveNetEstimator, "none"),
    "pick one (before), flip": (PickOneEstimator, "flip"),
    "pick one (before), none": (PickOneEstimator, "none"),
}
PHOTOS = ("squat.bmp", "woman_standing.png")


def measure(models: Path, testdata: Path, seeds: int, folder: Path) -> dict[str, Any]:
    """Every figure for this interpreter, both rules."""
    import cv2

    model = ModelFiles("lightning", models / "movenet_single_pose_lightning_ptq.tflite", None)
    backend = open_backend(model, BackendRequest("ai_edge_litert", "xnnpack", 2))
    timed = open_backend(model, BackendRequest("ai_edge_litert", "xnnpack", 1))  # CPU time of one thread
    dataset = coco.load(folder / "annotations.json")
    images = {name: load_image(testdata / name) for name in PHOTOS}
    out: dict[str, Any] = {"numpy": np.__version__, "opencv": cv2.__version__, "rules": {}}
    for rule, (kind, tta) in RULES.items():
        estimator = kind(backend, tta=tta)
        found = {name: estimator.still(image).keypoints for name, image in images.items()}
        one_thread, times = kind(timed, tta=tta), []
        for image in [*images.values()] * 5:
            started = time.thread_time()
            one_thread.still(image)
            times.append((time.thread_time() - started) * 1e3)
        moves = []  # every keypoint's move, per perturbation
        for image in images.values():
            for fractions in VIEWS.values():
                shown = view(image, fractions)
                base = estimator.still(shown).keypoints
                for seed in range(seeds):
                    moved = estimator.still(perturbed(shown, seed)).keypoints
                    moves.append(np.hypot(*(moved[:, :2] - base[:, :2]).T))
        figures = {}
        for mode, margin in (("crop", 0.25), ("whole", None)):
            ev = evaluate(
                dataset, predict(dataset, folder, lambda image, e=estimator: e.still(image).keypoints, margin)
            )
            figures[mode] = [ev.ap["ap"], ev.summary.mean_oks, ev.summary.mean_error_px]
        out["rules"][rule] = {
            "keypoints": {name: k.tolist() for name, k in found.items()},
            "coral": coral_worst_error(found["squat.bmp"], 500, 610, coral_reference(testdata)),
            "woman_px": linf_px(found["woman_standing.png"], woman_truth(testdata)),
            "ms": float(np.median(times)),
            "largest_move": float(np.max(moves)),
            "mean_move": float(np.mean(moves)),
            "eval": figures,
        }
    return out


def agreement(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest normalised difference of a keypoint both score above 0.3, over the two photos."""
    worst = 0.0
    for name, size in (("squat.bmp", (500, 610)), ("woman_standing.png", (384, 640))):
        ka, kb = np.array(a["keypoints"][name]), np.array(b["keypoints"][name])
        both = (ka[:, 2] > 0.3) & (kb[:, 2] > 0.3)
        worst = max(worst, float((np.abs(ka[both, :2] - kb[both, :2]) / size).max()))
    return worst


def main() -> int:
    """Measure here and in every ``--python``, print the tables."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    shared = ROOT.parent / "shared"
    parser.add_argument("--models-dir", type=Path, default=os.environ.get("EDGEPOSE_MODEL_MIRROR", shared / "models"))
    parser.add_argument("--testdata", type=Path, default=os.environ.get("EDGEPOSE_TESTDATA", shared / "testdata"))
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--python", action="append", default=[], help="another environment's interpreter")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # one environment's figures as JSON
    args = parser.parse_args()
    if args.measure:  # the eval set is written once, by the first environment
        print(json.dumps(measure(args.models_dir, args.testdata, args.seeds, args.measure)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_eval_set(args.testdata, folder)
        envs = [measure(args.models_dir, args.testdata, args.seeds, folder)]
        for python in args.python:
            command = [python, __file__, "--measure", str(folder), "--seeds", str(args.seeds),
                       "--models-dir", str(args.models_dir), "--testdata", str(args.testdata)]  # fmt: skip
            envs.append(json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout))
    print("| rule | numpy | OpenCV | squat.bmp vs Coral (≤ 0.04) | woman L∞ px (≤ 21) | vs first env "
          "| largest move px | mean move px | eval crop: AP / OKS / error px | whole image: AP / OKS / error px "
          "| ms per still |\n| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |")  # fmt: skip
    for rule in RULES:
        for env in envs:
            r = env["rules"][rule]
            crop, whole = (" / ".join(f"{v:.3f}" if i < 2 else f"{v:.2f}" for i, v in enumerate(r["eval"][m]))
                           for m in ("crop", "whole"))  # fmt: skip
            print(f"| {rule} | {env['numpy']} | {env['opencv']} | {r['coral']:.4f} | {r['woman_px']:.1f} | "
                  f"{agreement(r, envs[0]['rules'][rule]):.4f} | {r['largest_move']:.1f} | {r['mean_move']:.2f} | "
                  f"{crop} | {whole} | {r['ms']:.0f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
