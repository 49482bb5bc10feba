"""A COCO keypoint evaluation set built from the shared photos and their reference keypoints.

woman_standing.png has hand-labelled truth; squat.bmp has Coral's Lightning output as pseudo-truth
(keypoints it scores above Coral's own 0.4 are labelled, the rest are not). Each photo is also
rescaled and placed into frames of other sizes, aspect ratios and positions (the surroundings are the
photo's edges, replicated), so resampling and letterboxing are exercised at many scales and phases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from reference import CORAL_MIN_SCORE, coral_reference, woman_truth

from edgepose.eval.coco import Labelled, build
from edgepose.sources.images import load_image


@dataclass(frozen=True)
class Photo:
    """A shared photo with its keypoints ``(17, 3)`` x, y, visibility and a box around the whole person."""

    name: str
    image: np.ndarray
    keypoints: np.ndarray
    bbox: tuple[float, float, float, float]


def person_box(keypoints: np.ndarray, width: int, height: int) -> tuple[float, float, float, float]:
    """A box around the whole body from its keypoints: wider by 10 % a side, the head (20 %) and feet (5 %) added."""
    labelled = keypoints[keypoints[:, 2] > 0]
    x0, y0 = labelled[:, 0].min(), labelled[:, 1].min()
    x1, y1 = labelled[:, 0].max(), labelled[:, 1].max()
    w, h = x1 - x0, y1 - y0
    x0, x1 = max(0.0, x0 - 0.1 * w), min(float(width), x1 + 0.1 * w)
    y0, y1 = max(0.0, y0 - 0.2 * h), min(float(height), y1 + 0.05 * h)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def photos(testdata: Path) -> list[Photo]:
    """The two shared photos with their (pseudo-)truth."""
    woman = load_image(testdata / "woman_standing.png")
    truth = np.column_stack([woman_truth(testdata), np.full(17, 2.0)])
    squat = load_image(testdata / "squat.bmp")
    ref = coral_reference(testdata)
    height, width = squat.shape[:2]
    pseudo = np.column_stack([ref[:, 0] * width, ref[:, 1] * height, np.where(ref[:, 2] > CORAL_MIN_SCORE, 2.0, 0.0)])
    out = []
    for name, image, kps in (("woman_standing", woman, truth), ("squat", squat, pseudo)):
        out.append(Photo(name, image, kps, person_box(kps, image.shape[1], image.shape[0])))
    return out


@dataclass(frozen=True)
class View:
    """One generated image: the photo scaled by ``scale`` in a ``aspect`` (w/h) frame the person fills ``fill`` of."""

    scale: float
    aspect: float
    fill: float
    position: float


#: Scales of the photos, frame aspect ratios, how much of the frame's height the person fills, where across it.
SCALES = (0.3, 0.45, 0.7, 1.0, 1.4)
ASPECTS = (4 / 3, 16 / 9, 3 / 4, 1.0)
FILLS = (0.85, 0.6)
POSITIONS = (0.5, 0.3, 0.7)


def default_views(scales: tuple[float, ...] = SCALES) -> list[View]:
    """Every scale in every aspect ratio; fill and position cycle so neighbours differ."""
    views = []
    for i, scale in enumerate(scales):
        for j, aspect in enumerate(ASPECTS):
            k = i * len(ASPECTS) + j
            views.append(View(scale, aspect, FILLS[k % len(FILLS)], POSITIONS[k % len(POSITIONS)]))
    return views


def random_views(count: int, seed: int) -> list[View]:
    """``count`` views with scales 0.2-2 (log-uniform), random aspect ratio, fill and position (reproducible)."""
    rng = np.random.default_rng(seed)
    aspects = [4 / 3, 16 / 9, 3 / 4, 1.0, 9 / 16]
    return [
        View(float(np.exp(rng.uniform(np.log(0.2), np.log(2.0)))), float(rng.choice(aspects)),
             float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.2, 0.8)))
        for _ in range(count)
    ]  # fmt: skip


def render(photo: Photo, view: View) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Return the generated BGR image, the keypoints and the person box in its pixels."""
    h, w = photo.image.shape[:2]
    size = (max(1, round(w * view.scale)), max(1, round(h * view.scale)))
    method = cv2.INTER_AREA if view.scale < 1 else cv2.INTER_CUBIC
    scaled = photo.image if size == (w, h) else cv2.resize(photo.image, size, interpolation=method)
    sx, sy = size[0] / w, size[1] / h
    bx, by, bw, bh = photo.bbox
    box = ((bx + 0.5) * sx - 0.5, (by + 0.5) * sy - 0.5, bw * sx, bh * sy)
    frame_h = max(round(box[3] / view.fill), round(box[2] / view.fill / view.aspect))
    frame_w = round(frame_h * view.aspect)
    # Integer offset placing the box's centre at ``position`` across and midway down, the box inside the frame.
    cx = min(max(view.position * frame_w, box[2] / 2), frame_w - box[2] / 2)
    ox = round(cx - (box[0] + box[2] / 2))
    oy = round(frame_h / 2 - (box[1] + box[3] / 2))
    pad = (max(0, oy), max(0, frame_h - oy - size[1]), max(0, ox), max(0, frame_w - ox - size[0]))
    padded = cv2.copyMakeBorder(scaled, *pad, borderType=cv2.BORDER_REPLICATE)
    top, left = pad[0] - oy, pad[2] - ox
    frame = np.ascontiguousarray(padded[top : top + frame_h, left : left + frame_w])
    kps = photo.keypoints.copy()
    kps[:, 0] = (kps[:, 0] + 0.5) * sx - 0.5 + ox
    kps[:, 1] = (kps[:, 1] + 0.5) * sy - 0.5 + oy
    return frame, kps, (box[0] + ox, box[1] + oy, box[2], box[3])


def write_eval_set(testdata: Path, folder: Path, views: list[View] | None = None, originals: bool = True) -> Path:
    """Write the photos (if ``originals``) and their views as PNGs into ``folder`` with ``annotations.json``.

    Returns:
        The annotation file's path; image file names are relative to ``folder``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for photo in photos(testdata):
        items = []
        if originals:
            items.append((f"{photo.name}.png", photo.image, photo.keypoints, photo.bbox))
        for n, view in enumerate(default_views() if views is None else views):
            image, kps, box = render(photo, view)
            items.append((f"{photo.name}_{n:02d}_s{view.scale:g}_a{view.aspect:.2f}.png", image, kps, box))
        for file_name, image, kps, box in items:
            cv2.imwrite(str(folder / file_name), image)
            entries.append((file_name, image.shape[1], image.shape[0], [Labelled(kps, box)]))
    path = folder / "annotations.json"
    path.write_text(json.dumps(build(entries)))
    return path
