"""Skeleton drawing shared by the HTTP preview, the screen view and the snapshots.

Pure functions over BGR numpy images: :func:`render` makes the picture a viewer sees for one
:class:`~edgepose.pose.PoseResult` in one privacy mode, :func:`draw_skeleton` draws the edges of
:data:`~edgepose.pose.SKELETON_EDGES` (or BlazePose's 33-point :data:`~edgepose.pose.LANDMARK_EDGES`
when the pose has landmarks) and the joints coloured by score (red → yellow → green).
Keypoints scoring below the threshold are not drawn, nor are the edges that touch them. Each person
gets the edge colour of their place in the result (:data:`PERSON_COLORS`, best pose first).

For the preview, :func:`render` also draws the ``[[zones]]`` (their outlines and names, under the people:
:data:`ZONE_COLOR`, or :data:`SAFE_ZONE_COLOR` for a ``falls = false`` zone) and, with ``labels``, each
tracked person's id and posture above their box (white on black) and a red box (:data:`FALLEN_COLOR`)
around a fallen person.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from edgepose.config import ZoneConfig
from edgepose.config.choices import PREVIEW_MODES
from edgepose.pose import KEYPOINT_NAMES, LANDMARK_EDGES, SKELETON_EDGES, Pose, PoseResult

#: Colour of the skeleton's edges (BGR): cyan, rare in camera pictures.
EDGE_COLOR: tuple[int, int, int] = (255, 255, 0)
#: Edge colours (BGR) of the people in a frame, best pose first (cyan, magenta, orange, blue, white, violet),
#: then again from the start.
PERSON_COLORS: tuple[tuple[int, int, int], ...] = (
    EDGE_COLOR, (255, 0, 255), (0, 140, 255), (255, 120, 0), (255, 255, 255), (200, 80, 150),
)  # fmt: skip
#: Outline and name of a zone (BGR): amber.
ZONE_COLOR: tuple[int, int, int] = (0, 190, 255)
#: Outline and name of a ``falls = false`` zone (a bed, a sofa), where lying is no alarm (BGR): green.
SAFE_ZONE_COLOR: tuple[int, int, int] = (80, 200, 0)
#: The box around a fallen person (BGR): red.
FALLEN_COLOR: tuple[int, int, int] = (0, 0, 255)
#: A person's label: white text on a black band.
LABEL_COLOR: tuple[int, int, int] = (255, 255, 255)
LABEL_BACKGROUND: tuple[int, int, int] = (0, 0, 0)
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


def _text_scale(width: int, height: int) -> tuple[float, int]:
    """Return ``(font scale, thickness)`` of labels for a frame size (legible from 320×240 up)."""
    side = max(1, min(width, height))
    return max(0.35, side / 600), max(1, round(side / 400))


def draw_zones(canvas: np.ndarray, zones: Sequence[ZoneConfig]) -> np.ndarray:
    """Draw each zone's outline and name onto ``canvas`` in place (corners are 0–1 of the frame) and return it."""
    height, width = canvas.shape[:2]
    thickness, _ = sizes(width, height)
    scale, weight = _text_scale(width, height)
    for zone in zones:
        color = ZONE_COLOR if zone.falls else SAFE_ZONE_COLOR
        corners = np.array([(round(x * (width - 1)), round(y * (height - 1))) for x, y in zone.polygon], np.int32)
        cv2.polylines(canvas, [corners], True, color, thickness, cv2.LINE_8)
        (_, text_h), _ = cv2.getTextSize(zone.name, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
        x0, y0 = int(corners[:, 0].min()), int(corners[:, 1].min())
        origin = (x0 + 2 * thickness, min(height - 2, y0 + text_h + 2 * thickness))
        cv2.putText(canvas, zone.name, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, weight, cv2.LINE_AA)
    return canvas


def draw_person(canvas: np.ndarray, pose: Pose, person: dict[str, Any]) -> np.ndarray:
    """Draw a tracked person's label (``<id> <posture>``, ``FALLEN`` when fallen) and, if fallen, a red box.

    Args:
        canvas: BGR uint8 image, modified.
        pose: The person's pose this frame (its box in the canvas's pixels).
        person: Their entry of ``state["people"]`` (``id``, ``posture``, ``fallen``).
    """
    height, width = canvas.shape[:2]
    thickness, radius = sizes(width, height)
    scale, weight = _text_scale(width, height)
    x0, y0, x1, y1 = (round(float(v)) for v in pose.box)
    fallen = bool(person.get("fallen"))
    if fallen:
        pad = radius + thickness
        cv2.rectangle(canvas, (x0 - pad, y0 - pad), (x1 + pad, y1 + pad), FALLEN_COLOR, 2 * thickness, cv2.LINE_8)
    text = f"{person.get('id')} {person.get('posture')}" + (" FALLEN" if fallen else "")
    (text_w, text_h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)
    left = min(max(0, x0), max(0, width - text_w - 4))
    top = max(0, y0 - radius - thickness - text_h - base - 4)
    band = FALLEN_COLOR if fallen else LABEL_BACKGROUND
    cv2.rectangle(canvas, (left, top), (left + text_w + 4, top + text_h + base + 4), band, -1)
    cv2.putText(canvas, text, (left + 2, top + text_h + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, LABEL_COLOR, weight,
                cv2.LINE_AA)  # fmt: skip
    return canvas


def render(
    result: PoseResult, mode: str, min_score: float, zones: Sequence[ZoneConfig] = (), labels: bool = False
) -> np.ndarray:
    """Return the picture for one result: the privacy mode's canvas with the zones and every person drawn.

    A pose with BlazePose's 33 landmarks is drawn from them (x, y and visibility), others from their
    17 keypoints. With ``labels``, a pose whose ``id`` the analytics' ``state["people"]`` lists gets its label
    (and its red box when fallen), drawn after every skeleton so that none hides it.

    Args:
        result: The pose result (keypoints in source pixels).
        mode: One of :data:`~edgepose.config.choices.PREVIEW_MODES`.
        min_score: Keypoints below this score are not drawn.
        zones: The ``[[zones]]`` to outline, under the people.
        labels: Label each tracked person (the preview; snapshots and the screen show the skeletons alone).

    Raises:
        ValueError: Unknown mode.
    """
    canvas = base_image(result, mode)
    draw_zones(canvas, zones)
    poses = result.all_poses
    for index, pose in reversed(list(enumerate(poses))):  # the best pose is drawn last, on top
        color = PERSON_COLORS[index % len(PERSON_COLORS)]
        if pose.landmarks is not None:
            draw_skeleton(canvas, pose.landmarks[:, [0, 1, 3]], min_score, color, LANDMARK_EDGES)
        else:
            draw_skeleton(canvas, pose.keypoints, min_score, color)
    people = {p.get("id"): p for p in (result.state or {}).get("people", ())} if labels else {}
    for pose in poses:
        if pose.id is not None and pose.id in people:
            draw_person(canvas, pose, people[pose.id])
    return canvas
