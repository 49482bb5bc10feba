"""Skeleton drawing shared by the HTTP preview, the screen view and the snapshots.

Pure functions over BGR numpy images: :func:`render` makes the picture a viewer sees for one
:class:`~edgepose.pose.PoseResult` in one privacy mode, :func:`draw_skeleton` draws the edges of
:data:`~edgepose.pose.SKELETON_EDGES` (or BlazePose's 33-point :data:`~edgepose.pose.LANDMARK_EDGES`
when the pose has landmarks) and the joints coloured by score (red → yellow → green).
Keypoints scoring below the threshold are not drawn, nor are the edges that touch them. Each person
gets the edge colour of their place in the result (:data:`PERSON_COLORS`, best pose first).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edgepose.config.choices import PREVIEW_MODES
from edgepose.pose import KEYPOINT_NAMES, LANDMARK_EDGES, SKELETON_EDGES, PoseResult

#: Colour of the skeleton's edges (BGR): cyan, rare in camera pictures.
EDGE_COLOR: tuple[int, int, int] = (255, 255, 0)
#: Edge colours (BGR) of the people in a frame, best pose first (cyan, magenta, orange, blue, white, violet),
#: then again from the start.
PERSON_COLORS: tuple[tuple[int, int, int], ...] = (
    EDGE_COLOR, (255, 0, 255), (0, 140, 255), (255, 120, 0), (255, 255, 255), (200, 80, 150),
)  # fmt: skip
#: Background of the ``skeleton`` mode (BGR).
CANVAS_COLOR: tuple[int, int, int] = (32, 32, 32)
#: The blur mode shrinks the picture by this factor and scales it back up.
BLUR_FACTOR = 24
#: The privacy modes from the one showing least of the camera's picture (none of it) to the one showing all of it.
PRIVACY_ORDER: tuple[str, ...] = ("skeleton", "blur", "video")


def score_color(score: float) -> tuple[int, int, int]:
    """Return a joint's colour (BGR) for a score: red at 0, yellow at 0.5, green at 1.

    Args:
        score: Keypoint score, clipped to [0, 1].
    """
    s = min(1.0, max(0.0, float(score)))
    red = 255 if s <= 0.5 else round(255 * (1.0 - s) * 2)
    green = 255 if s >= 0.5 else round(255 * s * 2)
    return (0, green, red)


def sizes(width: int, height: int) -> tuple[int, int]:
    """Return ``(line thickness, joint radius)`` in pixels for a frame size."""
    side = max(1, min(width, height))
    return max(1, round(side / 160)), max(3, round(side / 80))


def shows_more(mode: str, than: str) -> bool:
    """Whether pictures drawn in ``mode`` show more of the camera's picture than pictures drawn in ``than``.

    Args:
        mode: One of :data:`~edgepose.config.choices.PREVIEW_MODES`.
        than: Another.
    """
    return PRIVACY_ORDER.index(mode) > PRIVACY_ORDER.index(than)


def base_image(result: PoseResult, mode: str) -> np.ndarray:
    """Return a fresh BGR canvas of the frame's size for a privacy mode.

    Args:
        result: The result whose ``image`` is shown (``video``, ``blur``); a missing image gives a blank canvas.
        mode: One of :data:`~edgepose.config.choices.PREVIEW_MODES`.

    Raises:
        ValueError: Unknown mode.
    """
    if mode not in PREVIEW_MODES:
        raise ValueError(f"unknown preview mode {mode!r}; choose one of {', '.join(PREVIEW_MODES)}")
    image = result.image
    if mode == "skeleton" or image is None:
        canvas = np.empty((result.height, result.width, 3), dtype=np.uint8)
        canvas[:] = CANVAS_COLOR
        return canvas
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if mode == "video":
        copy: np.ndarray = image[:, :, :3].copy()
        return copy
    height, width = image.shape[:2]
    small = cv2.resize(image[:, :, :3], (max(1, width // BLUR_FACTOR), max(1, height // BLUR_FACTOR)),
                       interpolation=cv2.INTER_AREA)  # fmt: skip
    blurred: np.ndarray = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    return blurred


def draw_skeleton(
    canvas: np.ndarray,
    keypoints: np.ndarray,
    min_score: float,
    color: tuple[int, int, int] = EDGE_COLOR,
    edges: Sequence[tuple[int, int]] = SKELETON_EDGES,
) -> np.ndarray:
    """Draw the skeleton onto ``canvas`` in place and return it.

    Args:
        canvas: BGR uint8 image, modified.
        keypoints: ``(N, ≥3)`` x, y in the canvas's pixels, score (17 COCO keypoints, or BlazePose's 33
            landmarks with their visibility as the score).
        min_score: Keypoints scoring below this are not drawn, nor edges touching them.
        color: The edges' colour (BGR).
        edges: Pairs of indices into ``keypoints`` to join.
    """
    height, width = canvas.shape[:2]
    thickness, radius = sizes(width, height)
    if len(keypoints) > len(KEYPOINT_NAMES):  # BlazePose: many close joints (hands, feet, face), smaller dots
        radius = max(2, radius * 2 // 3)
    keypoints = keypoints[:, :3]
    points = [(round(float(x)), round(float(y))) for x, y, _ in keypoints.tolist()]
    visible = [float(s) >= min_score for s in keypoints[:, 2].tolist()]
    for a, b in edges:
        if visible[a] and visible[b]:
            cv2.line(canvas, points[a], points[b], color, thickness, cv2.LINE_AA)
    for (x, y), score, shown in zip(points, keypoints[:, 2].tolist(), visible, strict=True):
        if shown:
            cv2.circle(canvas, (x, y), radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(canvas, (x, y), radius, score_color(score), -1, cv2.LINE_AA)
    return canvas


def render(result: PoseResult, mode: str, min_score: float) -> np.ndarray:
    """Return the picture for one result: the privacy mode's canvas with every person's skeleton drawn.

    A pose with BlazePose's 33 landmarks is drawn from them (x, y and visibility), others from their
    17 keypoints.

    Args:
        result: The pose result (keypoints in source pixels).
        mode: One of :data:`~edgepose.config.choices.PREVIEW_MODES`.
        min_score: Keypoints scoring below this are not drawn.

    Raises:
        ValueError: Unknown mode.
    """
    canvas = base_image(result, mode)
    for index, pose in reversed(list(enumerate(result.all_poses))):  # the best pose is drawn last, on top
        color = PERSON_COLORS[index % len(PERSON_COLORS)]
        if pose.landmarks is not None:
            draw_skeleton(canvas, pose.landmarks[:, [0, 1, 3]], min_score, color, LANDMARK_EDGES)
        else:
            draw_skeleton(canvas, pose.keypoints, min_score, color)
    return canvas
