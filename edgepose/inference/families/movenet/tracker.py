"""MoveNet's crop-region tracker for video.

From the keypoints of the current frame, pick the square region to run the model on in the
next frame: centred on the hips, big enough for the torso (×1.9) and the whole visible body
(×1.2). When the torso is not visible the person is lost and the tracker resets to the full
frame. This follows the algorithm of TensorFlow's MoveNet tutorial, with each joint's own
score checked in the body-range loop. Like MoveNet's JavaScript tracker, the region can be
low-passed between frames (``alpha`` < 1) so the crop does not jitter with the keypoints.

Still images take :func:`still_region_for`, the same square without its two jumps: a joint's share of the
body range fades in with its score instead of switching at one score, and a person too big for the
crop gets the frame's longer side around the hips instead of the letterboxed full frame.
"""

from __future__ import annotations

import numpy as np

from edgepose.filters import LowPass
from edgepose.inference.families.movenet.model import CropBox, full_frame_box
from edgepose.pose import KEYPOINT_INDEX

#: Keypoints scoring below this do not shape the crop.
MIN_CROP_KEYPOINT_SCORE = 0.2
#: For still images a joint's share of the body range ramps from 0 to 1 over this much either side of
#: :data:`MIN_CROP_KEYPOINT_SCORE` (:func:`still_region_for`).
SOFT_SCORE_BAND = 0.1
#: A crop narrower than this (pixels, half-width) is degenerate: keypoints all in one spot.
MIN_CROP_HALF_PX = 16.0
TORSO_JOINTS = tuple(KEYPOINT_INDEX[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
_LEFT_HIP = KEYPOINT_INDEX["left_hip"]
_RIGHT_HIP = KEYPOINT_INDEX["right_hip"]
_LEFT_SHOULDER = KEYPOINT_INDEX["left_shoulder"]
_RIGHT_SHOULDER = KEYPOINT_INDEX["right_shoulder"]


def torso_visible(keypoints: np.ndarray) -> bool:
    """Return whether at least one hip and one shoulder are confidently visible."""
    scores = keypoints[:, 2]
    hip = scores[_LEFT_HIP] > MIN_CROP_KEYPOINT_SCORE or scores[_RIGHT_HIP] > MIN_CROP_KEYPOINT_SCORE
    shoulder = scores[_LEFT_SHOULDER] > MIN_CROP_KEYPOINT_SCORE or scores[_RIGHT_SHOULDER] > MIN_CROP_KEYPOINT_SCORE
    return bool(hip and shoulder)


def _square(keypoints: np.ndarray, width: int, height: int, body: np.ndarray) -> tuple[float, float, float]:
    """Return the centre (the hips) and half side of the person's square, not past the farthest frame edge.

    Args:
        keypoints: ``(17, 3)`` x, y (source pixels) and score.
        width: Frame width.
        height: Frame height.
        body: Per keypoint, the share (0-1) of its distance from the hips that counts for the body range.
    """
    center_x = float(keypoints[_LEFT_HIP, 0] + keypoints[_RIGHT_HIP, 0]) / 2.0
    center_y = float(keypoints[_LEFT_HIP, 1] + keypoints[_RIGHT_HIP, 1]) / 2.0

    torso = keypoints[list(TORSO_JOINTS)]
    torso_x = float(np.abs(center_x - torso[:, 0]).max())
    torso_y = float(np.abs(center_y - torso[:, 1]).max())

    body_x = float((np.abs(center_x - keypoints[:, 0]) * body).max())
    body_y = float((np.abs(center_y - keypoints[:, 1]) * body).max())

    half = max(torso_x * 1.9, torso_y * 1.9, body_x * 1.2, body_y * 1.2)
    return center_x, center_y, min(half, max(center_x, width - center_x, center_y, height - center_y))


def crop_region_for(keypoints: np.ndarray, width: int, height: int) -> CropBox:
    """Return the region to run the model on next, from keypoints in source pixels.

    Args:
        keypoints: ``(17, 3)`` array of x, y (source pixels) and score.
        width: Frame width.
        height: Frame height.

    Returns:
        A square box around the person, or the full-frame box when the torso is not visible,
        the person fills the frame, or the keypoints collapse into a degenerate crop.
    """
    if not torso_visible(keypoints):
        return full_frame_box(width, height)
    body = (keypoints[:, 2] > MIN_CROP_KEYPOINT_SCORE).astype(np.float32)
    center_x, center_y, half = _square(keypoints, width, height, body)
    if half > max(width, height) / 2.0 or half < MIN_CROP_HALF_PX:
        return full_frame_box(width, height)
    return CropBox(center_x - half, center_y - half, 2.0 * half, 2.0 * half)


def still_region_for(keypoints: np.ndarray, width: int, height: int) -> CropBox:
    """Return the region a still image's passes run on: :func:`crop_region_for`'s square, without its jumps.

    A joint counts for the body range in proportion to its score across
    :data:`MIN_CROP_KEYPOINT_SCORE` ± :data:`SOFT_SCORE_BAND`, and the side is at most the frame's longer
    side, still centred on the hips: a keypoint that moves a little moves the region a little.

    Args:
        keypoints: ``(17, 3)`` array of x, y (source pixels) and score.
        width: Frame width.
        height: Frame height.

    Returns:
        A square box around the person, or the full-frame box when the torso is not visible or the
        keypoints collapse into a degenerate crop.
    """
    if not torso_visible(keypoints):
        return full_frame_box(width, height)
    low = MIN_CROP_KEYPOINT_SCORE - SOFT_SCORE_BAND
    body = np.clip((keypoints[:, 2] - low) / (2.0 * SOFT_SCORE_BAND), 0.0, 1.0)
    center_x, center_y, half = _square(keypoints, width, height, body)
    half = min(half, max(width, height) / 2.0)
    if half < MIN_CROP_HALF_PX:
        return full_frame_box(width, height)
    return CropBox(center_x - half, center_y - half, 2.0 * half, 2.0 * half)


class MoveNetCropTracker:
    """Remembers the crop region between video frames and resets when the person is lost.

    Args:
        alpha: Weight of each new region in a low-pass over the regions (1: no smoothing). A reset to
            the full frame is never smoothed, and the low-pass starts afresh after one.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self._box: CropBox | None = None
        self._size: tuple[int, int] = (0, 0)
        self._low_pass = LowPass(alpha)
        self.resets = 0

    def region(self, width: int, height: int) -> CropBox:
        """Return the region for the next frame of the given size."""
        if self._box is None or self._size != (width, height):
            self._size = (width, height)
            self._box = full_frame_box(width, height)
        return self._box

    def update(self, keypoints: np.ndarray, width: int, height: int) -> None:
        """Derive the next frame's region from this frame's keypoints."""
        self._size = (width, height)
        box = crop_region_for(keypoints, width, height)
        whole = full_frame_box(width, height)
        if box == whole:
            if self._box != box:
                self.resets += 1
            self._low_pass.reset()
        elif self._low_pass.alpha < 1.0:
            if self._box is None or self._box == whole:
                self._low_pass.reset()
            box = CropBox(*(float(v) for v in self._low_pass(np.array([box.x, box.y, box.width, box.height]))))
        self._box = box

    def reset(self) -> None:
        """Forget the person: the next frame is processed whole."""
        self._box = None
        self._low_pass.reset()
