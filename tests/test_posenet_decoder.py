"""PoseNet's decoder and image mapping on small synthetic maps whose right answer is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from edgepose.inference.families.posenet.decoder import (
    NUM_EDGES,
    TREE_EDGES,
    DecoderParams,
    decode_poses,
    logit,
    rescore,
    root_candidates,
)
from edgepose.inference.families.posenet.model import dequantize, letterbox_for, preprocess_into, to_source
from edgepose.pose import KEYPOINT_INDEX

STRIDE = 16
GRID = (31, 41)
BACKGROUND = -6.0  # logit: a keypoint score of 0.0025
SHORT_RADIUS = 40.0  # short-range offsets are learnt within a disk around each keypoint (PersonLab), 0 elsewhere


def skeleton(x: float, y: float, scale: float = 1.0) -> np.ndarray:
    """A standing person's 17 keypoints (x, y input pixels), head at (x, y), off the cell grid on purpose."""
    offsets = np.array([
        (0, 0), (7, -6), (-7, -6), (15, -2), (-15, -2), (26, 34), (-26, 34), (33, 90), (-33, 90),
        (37, 140), (-37, 140), (17, 150), (-17, 150), (19, 230), (-19, 230), (21, 300), (-21, 300),
    ], dtype=np.float64)  # fmt: skip
    return np.array([x, y]) + offsets * scale + 0.37


def synth(
    people: list[np.ndarray], peaks: list[float], mid_error: tuple[float, float] = (0.0, 0.0), root_boost: int = -1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build heatmaps, short and mid offsets as PoseNet would for these people.

    Each cell belongs to the nearest person (by x of the head). Short-range offsets point exactly at that
    person's keypoints from within :data:`SHORT_RADIUS` of them; the mid-range displacements are the exact
    vectors between the keypoints of each edge, off by ``mid_error`` (y, x) pixels. Every cell
    within one cell of a keypoint gets that person's peak logit (so peaks are plateaus: duplicate roots).
    """
    heat = np.full((*GRID, 17), BACKGROUND, dtype=np.float32)
    short = np.zeros((*GRID, 34), dtype=np.float32)
    mid = np.zeros((*GRID, 4 * NUM_EDGES), dtype=np.float32)
    cy, cx = np.mgrid[0 : GRID[0], 0 : GRID[1]] * STRIDE
    owner = np.argmin([np.abs(cx - p[0, 0]) for p in people], axis=0)
    for index, (person, peak) in enumerate(zip(people, peaks, strict=True)):
        mine = owner == index
        for k, (x, y) in enumerate(person):
            near = (np.abs(cx - x) <= STRIDE) & (np.abs(cy - y) <= STRIDE)
            heat[near, k] = np.maximum(heat[near, k], peak + (1.0 if k == root_boost else 0.0))
            disk = mine & ((cx - x) ** 2 + (cy - y) ** 2 <= SHORT_RADIUS**2)
            short[disk, k] = y - cy[disk]
            short[disk, 17 + k] = x - cx[disk]
        for e, (parent, child) in enumerate(TREE_EDGES):
            dy, dx = person[child, 1] - person[parent, 1], person[child, 0] - person[parent, 0]
            mid[mine, e], mid[mine, NUM_EDGES + e] = dy + mid_error[0], dx + mid_error[1]
            mid[mine, 2 * NUM_EDGES + e], mid[mine, 3 * NUM_EDGES + e] = -dy + mid_error[0], -dx + mid_error[1]
    return heat, short, mid


def sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


@pytest.mark.parametrize("root", ["nose", "left_eye", "left_ankle", "right_wrist"])
def test_one_person_is_decoded_exactly_from_any_root(root: str) -> None:
    person = skeleton(300.0, 80.0)
    k = KEYPOINT_INDEX[root]
    heat, short, mid = synth([person], [3.0], mid_error=(6.0, -7.0), root_boost=k)
    assert len(root_candidates(heat, logit(0.2), 1)) > 17, "plateaus give several candidates per keypoint"
    poses = decode_poses(heat, short, mid, DecoderParams())
    assert len(poses) == 1, "candidates on the same keypoint are suppressed"
    np.testing.assert_allclose(poses[0].keypoints[:, :2], person, atol=1e-3)
    expected = np.full(17, sigmoid(3.0))
    expected[k] = sigmoid(4.0)
    np.testing.assert_allclose(poses[0].keypoints[:, 2], expected, atol=1e-5)
    assert poses[0].score == pytest.approx(expected.mean(), abs=1e-5)


def test_without_short_range_refinement_the_mid_range_error_stays() -> None:
    person = skeleton(300.0, 80.0)
    heat, short, mid = synth([person], [3.0], mid_error=(6.0, -7.0), root_boost=KEYPOINT_INDEX["nose"])
    (pose,) = decode_poses(heat, short, mid, DecoderParams(refine_steps=0))
    error = pose.keypoints[:, :2] - person
    np.testing.assert_allclose(error[KEYPOINT_INDEX["nose"]], 0.0, atol=1e-3)
    # one edge away from the nose: off by exactly the displacement error (x, y)
    np.testing.assert_allclose(error[KEYPOINT_INDEX["left_eye"]], (-7.0, 6.0), atol=1e-3)


def test_two_people_best_first_and_max_people() -> None:
    weak, strong = skeleton(150.0, 60.0), skeleton(480.0, 90.0, scale=0.9)
    heat, short, mid = synth([weak, strong], [1.5, 4.0])
    poses = decode_poses(heat, short, mid, DecoderParams())
    assert len(poses) == 2
    np.testing.assert_allclose(poses[0].keypoints[:, :2], strong, atol=1e-3)
    np.testing.assert_allclose(poses[1].keypoints[:, :2], weak, atol=1e-3)
    assert poses[0].score == pytest.approx(sigmoid(4.0), abs=1e-5)
    assert poses[1].score == pytest.approx(sigmoid(1.5), abs=1e-5)
    (only,) = decode_poses(heat, short, mid, DecoderParams(max_people=1))
    np.testing.assert_allclose(only.keypoints[:, :2], strong, atol=1e-3)


def test_nothing_above_the_threshold_gives_no_pose() -> None:
    person = skeleton(300.0, 80.0)
    heat, short, mid = synth([person], [logit(0.19)])
    assert len(root_candidates(heat, logit(0.2), 1)) == 0
    assert decode_poses(heat, short, mid, DecoderParams()) == []
    assert len(decode_poses(heat, short, mid, DecoderParams(score_threshold=0.18))) == 1


def test_a_pose_whose_mean_score_is_below_the_threshold_is_dropped() -> None:
    person = skeleton(300.0, 80.0)
    heat, short, mid = synth([person], [BACKGROUND])
    nose = KEYPOINT_INDEX["nose"]
    heat[5, 19, nose] = 3.0  # one confident keypoint: (0.95 + 16 × 0.0025) / 17 < 0.2
    assert len(root_candidates(heat, logit(0.2), 1)) == 1
    assert decode_poses(heat, short, mid, DecoderParams()) == []


def test_root_candidates_are_local_maxima_with_ties_kept() -> None:
    heat = np.full((5, 6, 17), -5.0, dtype=np.float32)
    heat[1, 1, 0] = 2.0
    heat[1, 2, 0] = 1.0  # beaten by its neighbour
    heat[3, 4, 0] = 2.5
    heat[3, 5, 0] = 2.5  # a tie: both stay
    heat[4, 0, 3] = 3.0
    heat[0, 5, 2] = -2.0  # a maximum, below the threshold
    rows = root_candidates(heat, logit(0.2), 1).tolist()
    assert rows == [[4, 0, 3], [3, 4, 0], [3, 5, 0], [1, 1, 0]], "best first, ties by position"
    wide = root_candidates(heat, logit(0.2), 3).tolist()
    assert wide == [[4, 0, 3], [3, 4, 0], [3, 5, 0]], "within 3 cells, (1, 1) is beaten by (3, 4)"


def test_rescore_drops_keypoints_shared_with_a_better_pose() -> None:
    first = np.stack([np.arange(17.0), np.zeros(17)], axis=1)
    second = first.copy()
    second[5:, 1] += 5.0  # keypoints 5..16 five cells away; 0..4 on top of the first pose's
    scores = [np.full(17, 0.9), np.full(17, 0.8)]
    radius_sq = (10.0 / STRIDE) ** 2
    poses = rescore([second, first], scores[::-1], radius_sq, DecoderParams())
    assert [round(p.score, 6) for p in poses] == [0.9, round(0.8 * 12 / 17, 6)]
    np.testing.assert_allclose(poses[0].keypoints[:, 0], first[:, 1] * STRIDE)
    np.testing.assert_allclose(poses[1].keypoints[:, 1], second[:, 0] * STRIDE)
    assert len(rescore([second, first], scores[::-1], radius_sq, DecoderParams(score_threshold=0.6))) == 1


def test_dequantize_uses_scale_and_zero_point() -> None:
    raw = np.array([[[[0, 128, 255]]]], dtype=np.uint8)
    np.testing.assert_allclose(dequantize(raw, (0.5, 128)), [[[-64.0, 0.0, 63.5]]])
    floats = np.array([[[[1.5]]]], dtype=np.float32)
    np.testing.assert_array_equal(dequantize(floats, (0.0, 0)), [[[1.5]]])


def test_letterbox_keeps_the_aspect_ratio_and_maps_back() -> None:
    box = letterbox_for(500, 610, 641, 481)  # squat.bmp: taller than the input
    assert box.top == 0 and box.left == (641 - 394) // 2
    assert box.scale_x == pytest.approx(box.scale_y, rel=0.005)
    frame = np.zeros((610, 500, 3), dtype=np.uint8)
    frame[..., 0] = 200  # blue in BGR
    dst = np.full((481, 641, 3), 7, dtype=np.uint8)
    preprocess_into(frame, box, dst)
    assert (dst[:, : box.left] == 0).all() and (dst[:, box.left + 394 :] == 0).all()
    assert (dst[:, box.left : box.left + 394] == (0, 0, 200)).all(), "RGB order, no band inside the frame"
    corners = np.array([[box.left - 0.5, -0.5, 1.0], [box.left + 393.5, 480.5, 1.0]], dtype=np.float32)
    np.testing.assert_allclose(to_source(corners, box)[:, :2], [[-0.5, -0.5], [499.5, 609.5]], atol=1e-3)
    same = letterbox_for(640, 480, 641, 481)  # Coral's test image fills the input
    assert (same.left, same.top) == (0, 0)
