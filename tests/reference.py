"""Comparisons against the reference outputs in ../shared/testdata, with the references' own tolerances."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

#: Coral's check: for keypoints scoring above this in both outputs …
CORAL_MIN_SCORE = 0.4
#: … |dx| and |dy| (normalised to the image) must not exceed this.
CORAL_TOLERANCE = 0.04
#: The TensorFlow Raspberry Pi example's L∞ bound per keypoint for woman_standing.png, in pixels.
WOMAN_TOLERANCE_PX = 21.0


def coral_reference(testdata: Path, name: str = "movenet_single_pose_lightning_ptq_reference.csv") -> np.ndarray:
    """Return Coral's reference as ``(17, 3)``: x, y normalised, score."""
    with (testdata / name).open() as fh:
        rows = list(csv.DictReader(fh))
    return np.array([[float(r["keypoint_x"]), float(r["keypoint_y"]), float(r["keypoint_score"])] for r in rows])


def coral_worst_error(keypoints: np.ndarray, width: int, height: int, reference: np.ndarray) -> float:
    """Largest normalised |dx| or |dy| over keypoints scoring > 0.4 in both (Coral's own check)."""
    both = (keypoints[:, 2] > CORAL_MIN_SCORE) & (reference[:, 2] > CORAL_MIN_SCORE)
    assert both.sum() >= 8, "too few confident keypoints to compare"
    dx = np.abs(keypoints[both, 0] / width - reference[both, 0])
    dy = np.abs(keypoints[both, 1] / height - reference[both, 1])
    return float(max(dx.max(), dy.max()))


def woman_truth(testdata: Path) -> np.ndarray:
    """The woman_standing truth, ``(17, 2)`` pixels."""
    with (testdata / "woman_standing_truth.csv").open() as fh:
        row = list(csv.reader(fh))[1]
    return np.array(row, dtype=np.float64).reshape(17, 2)


def linf_px(keypoints: np.ndarray, truth: np.ndarray) -> float:
    """Largest per-coordinate pixel distance over all 17 keypoints."""
    return float(np.abs(keypoints[:, :2] - truth).max())
