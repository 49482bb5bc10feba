"""Falls on stick-figure sequences: a fall fires once and recovers; sitting and lying down slowly do not."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from stickfigure import Noise, frames, segments, sitting, topple, total

from edgepose.analytics import Analytics
from edgepose.analytics.falls import FallDetector
from edgepose.config import AnalyticsConfig, Config, FallConfig, SmoothingConfig, validate
from edgepose.config.validation import _validate_analytics
from edgepose.errors import ConfigError

NOISE = Noise(position_px=3.0, score_sd=0.1, drop_keypoint=0.06, drop_frame=0.02)
Pose = Callable[[float], np.ndarray]


def _fall(drop_s: float = 0.7) -> tuple[Pose, float, float]:
    """Stand 3 s, topple (accelerating) in ``drop_s``, lie 4 s, get up over 2.5 s, stand 3 s."""
    up = segments((3.0, 0.0, 0.0))

    def angle(t: float) -> float:
        if t < 3.0:
            return up(t)
        if t < 3.0 + drop_s:
            return 88.0 * ((t - 3.0) / drop_s) ** 2
        return segments((4.0, 88.0, 88.0), (2.5, 88.0, 0.0), (3.0, 0.0, 0.0))(t - 3.0 - drop_s)

    return (lambda t: topple(angle(t))), 3.0 + drop_s + 9.5, 3.0 + drop_s


def _sit_down(sit_s: float) -> tuple[Pose, float]:
    plan = ((2.0, 0.0, 0.0), (sit_s, 0.0, 1.0), (4.0, 1.0, 1.0), (1.0, 1.0, 0.0), (2.0, 0.0, 0.0))
    amount = segments(*plan)
    return (lambda t: sitting(amount(t))), total(*plan)


def _lie_down_slowly() -> tuple[Pose, float]:
    """Stand, sit on a bed (1.5 s), lie back over 4 s, lie 5 s, sit up (2 s), stand up (1.5 s)."""
    seat = segments((2.0, 0.0, 0.0), (1.5, 0.0, 1.0), (11.0, 1.0, 1.0), (1.5, 1.0, 0.0), (2.0, 0.0, 0.0))
    back = segments((3.5, 0.0, 0.0), (4.0, 0.0, 95.0), (5.0, 95.0, 95.0), (2.0, 95.0, 0.0), (4.0, 0.0, 0.0))
    return (lambda t: sitting(seat(t), back(t))), 18.0


def _slow_topple() -> tuple[Pose, float]:
    """The fall's own path, but over 5 s: someone lowering themselves to the floor."""
    angle = segments((2.0, 0.0, 0.0), (5.0, 0.0, 88.0), (4.0, 88.0, 88.0), (3.0, 88.0, 0.0), (2.0, 0.0, 0.0))
    return (lambda t: topple(angle(t))), 16.0


def _stumble() -> tuple[Pose, float]:
    """A fast lurch to 70° and straight back up within a second."""
    angle = segments((2.0, 0.0, 0.0), (0.4, 0.0, 70.0), (0.3, 70.0, 70.0), (0.6, 70.0, 0.0), (3.0, 0.0, 0.0))
    return (lambda t: topple(angle(t))), 6.3


def _events(
    pose: Pose, duration: float, seed: int, smoothing: SmoothingConfig | None = None
) -> list[dict[str, object]]:
    analytics = Analytics(AnalyticsConfig(), smoothing)
    out: list[dict[str, object]] = []
    for result in frames(pose, duration, seed=seed, noise=NOISE):
        out += [e for e in analytics.update(result).events if e["type"] in ("fall", "recovered")]
    return out


@pytest.mark.parametrize("smoothing", [None, SmoothingConfig()])
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("drop_s", [0.5, 0.8])
def test_fall_fires_once_then_recovered(seed: int, drop_s: float, smoothing: SmoothingConfig | None) -> None:
    pose, duration, impact = _fall(drop_s)
    events = _events(pose, duration, seed, smoothing)
    assert [e["type"] for e in events] == ["fall", "recovered"]
    fall, recovered = events
    confidence = float(fall["confidence"])  # type: ignore[arg-type]
    assert 0.5 <= confidence <= 1.0
    t0 = 1_700_000_000.0
    delay = float(fall["ts"]) - t0 - impact  # type: ignore[arg-type]
    assert 1.5 <= delay <= 2.5, delay  # fires after staying down for down_s (2 s) from reaching 60°
    assert float(recovered["ts"]) - t0 >= impact + 4.0 + 1.0  # only once upright again  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("sit_s", [0.4, 0.8, 1.5])
def test_sitting_down_is_not_a_fall(seed: int, sit_s: float) -> None:
    pose, duration = _sit_down(sit_s)
    assert _events(pose, duration, seed) == []
    assert _events(pose, duration, seed, SmoothingConfig()) == []


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("scenario", [_lie_down_slowly, _slow_topple, _stumble])
def test_lying_down_slowly_or_a_stumble_is_not_a_fall(seed: int, scenario: Callable[[], tuple[Pose, float]]) -> None:
    pose, duration = scenario()
    assert _events(pose, duration, seed) == []
    assert _events(pose, duration, seed, SmoothingConfig()) == []


def test_fallen_state_follows_the_events() -> None:
    pose, duration, _ = _fall()
    analytics = Analytics(AnalyticsConfig(), None)
    fallen = []
    for result in frames(pose, duration, seed=3, noise=NOISE):
        out = analytics.update(result)
        assert out.state is not None
        if not fallen or fallen[-1] != out.state["fallen"]:
            fallen.append(out.state["fallen"])
    assert fallen == [False, True, False]


def test_lying_out_of_sight_after_the_fall_still_fires() -> None:
    """The torso vanishes (hidden behind furniture) right after the fall: the fall still fires."""
    pose, _, impact = _fall()
    detector = FallDetector(FallConfig())
    events: list[dict[str, object]] = []
    for result in frames(pose, impact + 3.0, seed=0, noise=Noise()):
        kps = result.keypoints.copy()
        if result.ts - 1_700_000_000.0 > impact + 0.3:
            kps[:, 2] = 0.05
        events += detector.update(result.ts, kps)
    assert [e["type"] for e in events] == ["fall"]


@pytest.mark.parametrize(
    "bad",
    [{"fall_window_s": 0.0}, {"fall_drop": float("nan")}, {"fall_upright_deg": 50.0}, {"fall_down_s": -1.0},
     {"keypoint_score": 2.0}],
)  # fmt: skip
def test_bad_settings_are_config_errors(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="analytics"):
        validate(Config(analytics=AnalyticsConfig(**bad)))


def test_the_tilt_thresholds_must_nest() -> None:
    """Their ranges in LIMITS nest already; the rule across them holds even if those ever overlap."""
    with pytest.raises(ConfigError, match=r"fall_upright_deg < analytics\.fall_down_deg <= analytics\.fall_lying_deg"):
        _validate_analytics(AnalyticsConfig(fall_upright_deg=50.0))
