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


#: BlazePose reference (mediapipe 0.10.21 itself): landmarks more visible than this …
BLAZEPOSE_MIN_VISIBILITY = 0.5
#: … must match in normalised x and y within this.
BLAZEPOSE_TOLERANCE = 0.02


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


def blazepose_reference(testdata: Path, image: str) -> np.ndarray:
    """MediaPipe's own BlazePose landmarks for one photo, ``(33, 4)``: x, y normalised, z, visibility."""
    with (testdata / "blazepose_full_reference.csv").open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["image"] == image]
    rows.sort(key=lambda r: int(r["landmark_id"]))
    assert len(rows) == 33, f"{image}: {len(rows)} reference rows"
    return np.array([[float(r["x"]), float(r["y"]), float(r["z"]), float(r["visibility"])] for r in rows])


def blazepose_worst_error(landmarks: np.ndarray, width: int, height: int, reference: np.ndarray) -> float:
    """Largest normalised |dx| or |dy| over the landmarks the reference sees (visibility > 0.5)."""
    seen = reference[:, 3] > BLAZEPOSE_MIN_VISIBILITY
    assert seen.sum() >= 17, "too few visible reference landmarks to compare"
    dx = np.abs(landmarks[seen, 0] / width - reference[seen, 0])
    dy = np.abs(landmarks[seen, 1] / height - reference[seen, 1])
    return float(max(dx.max(), dy.max()))
