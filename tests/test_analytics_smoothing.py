"""One-Euro keypoint smoothing: jitter of a still person, lag after a step, resets; the crop low-pass."""

from __future__ import annotations

import math

import numpy as np
import pytest
from stickfigure import FPS, HEIGHT, T0, WIDTH, squat

from edgepose.analytics.smoothing import STEADY, KeypointSmoother, OneEuroFilter
from edgepose.config import Config, SmoothingConfig, validate
from edgepose.errors import ConfigError
from edgepose.inference.families.movenet.model import full_frame_box
from edgepose.inference.families.movenet.tracker import MoveNetCropTracker, crop_region_for

#: Jitter of MoveNet Lightning on a still person in a 640×480 camera picture with sensor noise,
#: measured with the real model (median keypoint std was 2.5 px in x and y).
JITTER_PX = 2.5
DEFAULT = SmoothingConfig()
MIN_CUTOFF, BETA, D_CUTOFF = STEADY
STEADY_CONFIG = SmoothingConfig(min_cutoff=MIN_CUTOFF, beta=BETA, d_cutoff=D_CUTOFF)


def test_defaults_are_movenets_javascript_settings() -> None:
    assert (DEFAULT.min_cutoff, DEFAULT.beta, DEFAULT.d_cutoff) == (2.5, 300.0, 2.5)


def _run(smoother: KeypointSmoother, truth: list[np.ndarray], noise_px: float, seed: int = 0) -> np.ndarray:
    """Smooth a sequence of true keypoints plus Gaussian jitter at 30 fps; return (n, 17, 2) positions."""
    rng = np.random.default_rng(seed)
    out = []
    for i, kps in enumerate(truth):
        noisy = kps.astype(np.float32).copy()
        noisy[:, :2] += rng.normal(0.0, noise_px, (17, 2))
        noisy[:, 2] = 0.8
        out.append(smoother(noisy, 0.8, WIDTH, HEIGHT, T0 + i / FPS)[:, :2])
    return np.array(out)


def _jitter_ratio(config: SmoothingConfig, seed: int) -> float:
    """Std of the raw over the smoothed positions of a still person with JITTER_PX jitter at 30 fps."""
    standing = squat(175.0)
    n = 300
    raw = _run(KeypointSmoother(SmoothingConfig(min_cutoff=1e9, beta=0.0)), [standing] * n, JITTER_PX, seed)
    smooth = _run(KeypointSmoother(config), [standing] * n, JITTER_PX, seed)
    raw_sd = float((raw[30:] - standing[:, :2]).std())
    smooth_sd = float((smooth[30:] - standing[:, :2]).std())
    assert raw_sd == pytest.approx(JITTER_PX, rel=0.1)  # the "no smoothing" filter really passes the noise
    assert np.abs((smooth[30:] - standing[:, :2]).mean(axis=0)).max() < 1.0  # no drift from the person
    return raw_sd / smooth_sd


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_static_jitter_drops_at_least_threefold(seed: int) -> None:
    """The steady setting: a still person's jitter (std of position) drops by 3× or more at 30 fps."""
    assert _jitter_ratio(STEADY_CONFIG, seed) >= 3.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_setting_takes_some_jitter_off(seed: int) -> None:
    """MoveNet's own setting favours following movement: at 30 fps it takes only a little jitter off, and
    its minimum cutoff alone caps that at 2.2× (see the module docstring)."""
    assert 1.05 <= _jitter_ratio(DEFAULT, seed) < 2.2


@pytest.mark.parametrize("config", [DEFAULT, STEADY_CONFIG], ids=["default", "steady"])
@pytest.mark.parametrize("noise_px", [0.0, JITTER_PX])
@pytest.mark.parametrize("step_px", [64.0, -96.0])
def test_step_is_followed_within_five_frames_at_30fps(noise_px: float, step_px: float, config: SmoothingConfig) -> None:
    """A jump of a tenth of the frame or more: within 10 % of it after at most five frames."""
    before, after = squat(175.0, x=300.0), squat(175.0, x=300.0 + step_px)
    truth = [before] * 60 + [after] * 30
    out = _run(KeypointSmoother(config), truth, noise_px)
    error = np.abs(out[60:, :, 0] - after[:, 0]).max(axis=1)  # worst keypoint, per frame after the step
    settled = int(np.argmax(error <= 0.1 * abs(step_px))) + 1  # frames until within 10 % of the step
    assert error[4] <= 0.1 * abs(step_px), error[:6]
    assert 1 <= settled <= 5
    assert error[0] > 0.0 or noise_px == 0.0  # the filter does act on the first frame after a step


def test_filter_follows_timestamps_not_frame_count() -> None:
    """The same motion sampled at 15 and at 60 fps ends up equally close after the same time."""
    errors = []
    for fps in (15.0, 60.0):
        f = OneEuroFilter(*STEADY)
        ts = np.arange(0.0, 1.0, 1.0 / fps)
        last = 0.0
        for t in ts:
            last = float(f(np.array([0.5 if t >= 0.5 else 0.4]), t)[0])
        errors.append(abs(last - 0.5))
    assert errors[0] < 0.01 and errors[1] < 0.01
    assert errors[0] == pytest.approx(errors[1], abs=0.005)


def test_repeated_timestamp_keeps_the_output() -> None:
    f = OneEuroFilter(*STEADY)
    f(np.array([1.0]), 0.0)
    first = f(np.array([2.0]), 0.1)
    again = f(np.array([5.0]), 0.1)
    assert again == pytest.approx(first)


def test_lost_person_resets_the_filter() -> None:
    smoother = KeypointSmoother(SmoothingConfig())
    here, there = squat(175.0, x=200.0).astype(np.float32), squat(175.0, x=450.0).astype(np.float32)
    for i in range(30):
        smoother(here, 0.8, WIDTH, HEIGHT, i / FPS)
    lost = smoother(here, 0.05, WIDTH, HEIGHT, 30 / FPS)
    assert np.array_equal(lost, here)  # passes unchanged while lost
    back = smoother(there, 0.8, WIDTH, HEIGHT, 31 / FPS)
    assert np.allclose(back, there)  # no memory of the old place
    assert smoother.resets == 1


def test_gap_and_new_frame_size_reset_the_filter() -> None:
    smoother = KeypointSmoother(SmoothingConfig(max_gap_s=0.5))
    a, b = squat(175.0, x=200.0).astype(np.float32), squat(175.0, x=450.0).astype(np.float32)
    smoother(a, 0.8, WIDTH, HEIGHT, 0.0)
    assert np.allclose(smoother(b, 0.8, WIDTH, HEIGHT, 2.0), b)
    assert np.allclose(smoother(a, 0.8, 1280, 720, 2.03), a)
    assert smoother.resets == 2


def test_scores_pass_unchanged() -> None:
    smoother = KeypointSmoother(SmoothingConfig())
    kps = squat(175.0).astype(np.float32)
    kps[:, 2] = np.linspace(0.3, 0.9, 17)
    smoother(kps, 0.6, WIDTH, HEIGHT, 0.0)
    out = smoother(kps + np.float32([5, 5, 0]), 0.6, WIDTH, HEIGHT, 1 / FPS)
    assert np.array_equal(out[:, 2], kps[:, 2])


@pytest.mark.parametrize(
    "bad",
    [{"mode": "sometimes"}, {"min_cutoff": 0.0}, {"beta": math.nan}, {"d_cutoff": math.inf}, {"crop_alpha": 1.5},
     {"lost_score": -0.1}, {"max_gap_s": 0.0}],
)  # fmt: skip
def test_bad_settings_are_config_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="smoothing"):
        validate(Config(smoothing=SmoothingConfig(**bad)))  # type: ignore[arg-type]


def test_auto_mode_smooths_video_only() -> None:
    assert SmoothingConfig().enabled(video=True)
    assert not SmoothingConfig().enabled(video=False)
    assert SmoothingConfig(mode="on").enabled(video=False)
    assert not SmoothingConfig(mode="off").enabled(video=True)


def _torso(cx: float, cy: float) -> np.ndarray:
    """Keypoints of a person standing at (cx, cy) (hip centre), everything confident."""
    kps = squat(175.0, x=cx).astype(np.float32)
    kps[:, 1] += cy - kps[11, 1]
    kps[:, 2] = 0.9
    return kps


def test_crop_tracker_low_pass_smooths_the_region_but_not_a_reset() -> None:
    plain, smooth = MoveNetCropTracker(), MoveNetCropTracker(alpha=0.5)
    for tracker in (plain, smooth):
        tracker.update(_torso(300.0, 280.0), WIDTH, HEIGHT)
        tracker.update(_torso(340.0, 280.0), WIDTH, HEIGHT)
    moved = plain.region(WIDTH, HEIGHT)
    halfway = smooth.region(WIDTH, HEIGHT)
    first = crop_region_for(_torso(300.0, 280.0), WIDTH, HEIGHT)
    assert halfway.x == pytest.approx((first.x + moved.x) / 2)  # alpha 0.5: half of the move
    assert halfway.width == pytest.approx(moved.width)
    lost = np.zeros((17, 3), np.float32)
    smooth.update(lost, WIDTH, HEIGHT)
    assert smooth.region(WIDTH, HEIGHT) == full_frame_box(WIDTH, HEIGHT)  # a reset is never smoothed
    smooth.update(_torso(100.0, 280.0), WIDTH, HEIGHT)
    assert smooth.region(WIDTH, HEIGHT) == crop_region_for(_torso(100.0, 280.0), WIDTH, HEIGHT)  # starts afresh
