"""The still path is steady: an input one grey level different moves no keypoint far.

It used to keep whichever of two passes scored better, so one grey level of resampling difference
(another OpenCV) could swap one pass's answer for the other's and move a hip by 0.06 of the image. It
now combines every pass by score (edgepose/inference/families/movenet/flip.py) on a region that follows
the keypoints without jumps (edgepose/inference/families/movenet/tracker.py: still_region_for).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from perturb import VIEWS, largest_move, perturbed, view
from reference import woman_truth

from edgepose.inference.families.movenet.estimator import MoveNetEstimator, still_invokes
from edgepose.inference.families.movenet.flip import combine
from edgepose.inference.families.movenet.model import CropBox
from edgepose.inference.families.movenet.tracker import MIN_CROP_KEYPOINT_SCORE, crop_region_for, still_region_for
from edgepose.inference.runtime.backend import BackendRequest
from edgepose.inference.runtime.delegates import open_backend
from edgepose.manifest import ModelFiles
from edgepose.pose import KEYPOINT_INDEX
from edgepose.sources.images import load_image

#: Seeds of the ±1 grey-level perturbations.
SEEDS = (0, 1, 2, 3)
#: Largest move of any keypoint, pixels (the views are 460-640 px tall). Measured with these seeds: 7.4 px
#: (numpy 2 + OpenCV 5.0) and 9.8 px (numpy 1.24 + OpenCV 4.11, the Pi's); when the path kept the
#: better-scoring pass, 29 px and 15 px.
MAX_MOVE_PX = 12.0


@pytest.fixture(scope="module")
def estimator(lightning_path: Path) -> MoveNetEstimator:
    request = BackendRequest(runtime="ai_edge_litert", delegate="xnnpack", threads=2)
    return MoveNetEstimator(open_backend(ModelFiles("lightning", lightning_path, None), request))


def test_perturbation_moves_every_value_by_one_grey_level(testdata: Path) -> None:
    image = load_image(testdata / "squat.bmp")
    difference = perturbed(image, 0).astype(int) - image
    assert set(np.unique(difference)) <= {-1, 0, 1}
    assert (difference != 0).mean() > 0.99  # 0 only where the value was clipped at 0 or 255
    assert not np.array_equal(perturbed(image, 0), perturbed(image, 1))


@pytest.mark.slow
@pytest.mark.parametrize("photo", ["squat.bmp", "woman_standing.png"])
def test_one_grey_level_moves_no_keypoint_far(estimator: MoveNetEstimator, testdata: Path, photo: str) -> None:
    image = load_image(testdata / photo)
    moves = {}
    for name, fractions in VIEWS.items():
        shown = view(image, fractions)
        base = estimator.still(shown).keypoints
        for seed in SEEDS:
            moved = estimator.still(perturbed(shown, seed)).keypoints
            moves[name, seed] = largest_move(base, moved)
    print(f"{photo}: largest keypoint move per view and seed (px): "
          + ", ".join(f"{n}/{s} {m:.1f}" for (n, s), m in moves.items()))  # fmt: skip
    assert max(moves.values()) <= MAX_MOVE_PX, moves


def _woman_keypoints(testdata: Path) -> np.ndarray:
    return np.column_stack([woman_truth(testdata), np.full(17, 0.9)]).astype(np.float32)


def _jump(a: CropBox, b: CropBox) -> float:
    return float(np.abs(np.subtract([a.x, a.y, a.width], [b.x, b.y, b.width])).max())


def test_still_region_does_not_jump_when_a_joint_crosses_the_score_threshold(testdata: Path) -> None:
    """The video rule counts a joint for the body range above 0.2 and not at all below it; stills fade it in."""
    keypoints = _woman_keypoints(testdata)
    still_jumps, video_jumps = [], []
    for index in range(17):
        if index in (KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["right_hip"]):
            continue  # the hips are the centre, whatever their score
        below, above = keypoints.copy(), keypoints.copy()
        below[index, 2] = MIN_CROP_KEYPOINT_SCORE - 0.001
        above[index, 2] = MIN_CROP_KEYPOINT_SCORE + 0.001
        still_jumps.append(_jump(still_region_for(below, 384, 640), still_region_for(above, 384, 640)))
        video_jumps.append(_jump(crop_region_for(below, 384, 640), crop_region_for(above, 384, 640)))
    assert max(still_jumps) < 1.0, still_jumps
    assert max(video_jumps) > 10.0, video_jumps  # the case is a real one: the video rule jumps here


def test_still_region_grows_into_the_frame_without_a_jump(testdata: Path) -> None:
    """A person growing past the crop's limit: the video rule jumps to the letterboxed frame, stills do not."""
    keypoints = _woman_keypoints(testdata)  # in a 600×640 frame: off-centre, a third of the way across
    hips = keypoints[[KEYPOINT_INDEX["left_hip"], KEYPOINT_INDEX["right_hip"]], :2].mean(axis=0)
    still, video = [], []
    for scale in np.linspace(0.8, 1.2, 201):  # the woman's region reaches the frame's longer side near 1.0
        grown = keypoints.copy()
        grown[:, :2] = hips + (keypoints[:, :2] - hips) * scale
        still.append(still_region_for(grown, 600, 640))
        video.append(crop_region_for(grown, 600, 640))
    still_steps = [_jump(a, b) for a, b in itertools.pairwise(still)]
    video_steps = [_jump(a, b) for a, b in itertools.pairwise(video)]
    assert max(still_steps) < 3.0, max(still_steps)  # each 0.2 % step of growth moves it about a pixel
    assert max(video_steps) > 50.0, max(video_steps)
    assert still[-1].width == 640.0  # at most the frame's longer side


def test_combine_weights_positions_by_squared_score() -> None:
    sure = np.tile([10.0, 20.0, 0.9], (17, 1))
    lost = np.tile([20.0, 40.0, 0.1], (17, 1))
    both = combine([sure, lost])
    assert both[0].tolist() == pytest.approx([(0.81 * 10 + 0.01 * 20) / 0.82, (0.81 * 20 + 0.01 * 40) / 0.82, 0.5])
    three = combine([sure, sure, lost])
    assert three[0, 2] == pytest.approx((0.9 + 0.9 + 0.1) / 3)
    zero = combine([np.tile([10.0, 20.0, 0.0], (17, 1)), np.tile([20.0, 40.0, 0.0], (17, 1))])
    assert zero[0].tolist() == pytest.approx([15.0, 30.0, 0.0])


class _Counting:
    """A backend that counts its invokes."""

    def __init__(self, backend: object) -> None:
        self._backend = backend
        self.invokes = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._backend, name)

    def invoke(self) -> None:
        self.invokes += 1
        self._backend.invoke()  # type: ignore[attr-defined]


@pytest.mark.parametrize("tta", ["flip", "none"])
def test_a_still_always_costs_the_same_passes(estimator: MoveNetEstimator, testdata: Path, tta: str) -> None:
    """Person or not, every still runs still_invokes passes: no pass is skipped or chosen."""
    counting = _Counting(estimator.backend)
    counted = MoveNetEstimator(counting, tta=tta)  # type: ignore[arg-type]
    for image in (load_image(testdata / "squat.bmp"), np.zeros((480, 640, 3), dtype=np.uint8)):
        before = counting.invokes
        counted.still(image)
        assert counting.invokes - before == still_invokes(tta)
    assert still_invokes("flip") == 2 * still_invokes("none") - 1  # one whole-frame pass, then each shift ×2
