"""BlazePose's pure parts: anchors, weighted NMS, rotated ROIs, heatmap refinement, the COCO mapping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgepose.inference.families.blazepose.detector import (
    POSE_DETECTOR_ANCHORS,
    decode_detections,
    letterbox_to_frame,
    ssd_anchors,
    weighted_nms,
)
from edgepose.inference.families.blazepose.landmarks import COCO_FROM_BLAZEPOSE, coco_keypoints, refine_from_heatmap
from edgepose.inference.families.blazepose.roi import (
    RotatedRoi,
    input_to_frame_matrix,
    letterbox_roi,
    normalize_radians,
    roi_from_alignment,
    to_frame,
)
from edgepose.pose import KEYPOINT_NAMES, LANDMARK_NAMES


def test_anchors_match_the_models_2254_outputs() -> None:
    anchors = ssd_anchors()
    # Stride 8: 28×28 cells × 2; stride 16: 14×14 × 2; the three stride-32 layers share 7×7 cells × 6.
    assert anchors.shape == (28 * 28 * 2 + 14 * 14 * 2 + 7 * 7 * 6, 4) == (2254, 4)
    assert anchors[0].tolist() == pytest.approx([0.5 / 28, 0.5 / 28, 1.0, 1.0])
    assert anchors[1].tolist() == anchors[0].tolist(), "two anchors per stride-8 cell"
    assert anchors[2].tolist() == pytest.approx([1.5 / 28, 0.5 / 28, 1.0, 1.0]), "x varies fastest"
    assert anchors[1568].tolist() == pytest.approx([0.5 / 14, 0.5 / 14, 1.0, 1.0])
    assert anchors[-1].tolist() == pytest.approx([6.5 / 7, 6.5 / 7, 1.0, 1.0])
    assert POSE_DETECTOR_ANCHORS.fixed_anchor_size and np.all(anchors[:, 2:] == 1.0)


def test_decoding_offsets_from_anchors_and_sigmoid_scores() -> None:
    anchors = np.array([[0.25, 0.5, 1.0, 1.0], [0.75, 0.5, 1.0, 1.0]], dtype=np.float32)
    raw = np.zeros((1, 2, 12), dtype=np.float32)
    raw[0, 0, :4] = (22.4, -11.2, 44.8, 22.4)  # x, y, w, h in input pixels (224)
    raw[0, 0, 4:6] = (0.0, 22.4)  # keypoint 0
    scores = np.array([[[2.0], [-2.0]]], dtype=np.float32)
    kept, boxes, keypoints = decode_detections(raw, scores, anchors, min_score=0.5)
    assert kept.tolist() == pytest.approx([1 / (1 + math.exp(-2.0))]), "the second anchor scores 0.12"
    assert boxes[0].tolist() == pytest.approx([0.25, 0.40, 0.45, 0.50])
    assert keypoints[0, 0].tolist() == pytest.approx([0.25, 0.6])


def test_weighted_nms_merges_overlaps_by_score() -> None:
    scores = np.array([0.6, 0.9, 0.8])
    boxes = np.array([[0.0, 0.0, 0.2, 0.2], [0.5, 0.5, 0.7, 0.7], [0.52, 0.5, 0.72, 0.7]])
    keypoints = np.zeros((3, 4, 2))
    keypoints[1, 0] = (0.6, 0.6)
    keypoints[2, 0] = (0.7, 0.6)
    found = weighted_nms(scores, boxes, keypoints)
    assert [d.score for d in found] == [0.9, 0.6], "best first; the overlapping 0.8 merged into the 0.9"
    assert found[0].keypoints[0].tolist() == pytest.approx([(0.6 * 0.9 + 0.7 * 0.8) / 1.7, 0.6])
    assert found[0].box[0] == pytest.approx((0.5 * 0.9 + 0.52 * 0.8) / 1.7)
    assert found[1].box == pytest.approx((0.0, 0.0, 0.2, 0.2))


def test_alignment_points_give_an_upright_square() -> None:
    upright = roi_from_alignment(np.array([100.0, 200.0]), np.array([100.0, 120.0]))
    assert (upright.cx, upright.cy) == (100.0, 200.0)
    assert upright.size == pytest.approx(2 * 80 * 1.25)
    assert upright.rotation == pytest.approx(0.0)
    # Head to the right (a person lying down): turned a quarter clockwise, and the top of the model
    # input lands on the head's side.
    lying = roi_from_alignment(np.array([100.0, 200.0]), np.array([180.0, 200.0]))
    assert lying.rotation == pytest.approx(math.pi / 2)
    top_centre = to_frame(np.array([[0.5, 0.0]]), lying)[0]
    assert top_centre.tolist() == pytest.approx([100.0 + lying.size / 2, 200.0], abs=1e-3)
    assert normalize_radians(3 * math.pi / 2) == pytest.approx(-math.pi / 2)


def test_warp_matrix_and_point_map_agree() -> None:
    roi = RotatedRoi(320.0, 240.0, 300.0, 0.7)
    matrix = input_to_frame_matrix(roi, 256)
    points = np.array([[0.0, 0.0], [0.5, 0.5], [1.0, 0.25], [0.3, 0.9]])
    by_matrix = (matrix[:, :2] @ (points * 256).T).T + matrix[:, 2]
    assert by_matrix == pytest.approx(to_frame(points, roi), abs=1e-3)
    assert to_frame(np.array([[0.5, 0.5]]), roi)[0].tolist() == pytest.approx([320.0, 240.0])


def test_letterbox_removal() -> None:
    box = letterbox_roi(640, 480)
    assert (box.size, box.rotation) == (640.0, 0.0)
    corners = letterbox_to_frame(np.array([[0.0, 0.125], [1.0, 0.875]]), box)
    assert corners == pytest.approx(np.array([[0.0, 0.0], [640.0, 480.0]])), "the pad bands are 1/8 of the input"


def test_heatmap_refinement_moves_confident_landmarks_only() -> None:
    heatmap = np.full((64, 64, 39), -10.0, dtype=np.float32)
    heatmap[20, 30, 0] = 10.0  # a sharp peak near landmark 0
    heatmap[20, 30, 1] = 0.0  # landmark 1's window peaks at 0.5: still refined (MediaPipe's >=)
    heatmap[20, 31, 2] = -0.1  # landmark 2's window peaks below 0.5: kept
    xy = np.full((39, 2), 0.5)
    xy[:3] = (30.4 / 64, 21.9 / 64)
    xy[3] = (-0.2, 0.5)  # outside the map: kept
    refined = refine_from_heatmap(xy, heatmap)
    assert refined[0].tolist() == pytest.approx([30 / 64, 20 / 64], abs=1e-4)
    assert refined[1, 0] != xy[1, 0]
    assert refined[2].tolist() == xy[2].tolist()
    assert refined[3].tolist() == xy[3].tolist()


def test_coco_keypoints_are_the_same_named_landmarks() -> None:
    assert [LANDMARK_NAMES[i] for i in COCO_FROM_BLAZEPOSE] == list(KEYPOINT_NAMES)
    landmarks = np.zeros((33, 5), dtype=np.float32)
    landmarks[:, 0] = np.arange(33)
    landmarks[:, 3] = np.arange(33) / 100
    keypoints = coco_keypoints(landmarks)
    assert keypoints.shape == (17, 3)
    assert keypoints[:, 0].tolist() == list(COCO_FROM_BLAZEPOSE)
    assert keypoints[:, 2].tolist() == pytest.approx([i / 100 for i in COCO_FROM_BLAZEPOSE])
