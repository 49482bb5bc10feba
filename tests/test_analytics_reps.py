"""Exercise repetitions counted on stick-figure sequences with position noise, score noise and dropouts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from stickfigure import Noise, frames, jumping_jack, pushup, rep_cycle, segments, squat, total

from edgepose.analytics import Analytics
from edgepose.analytics.reps import ZONES, RepCounter
from edgepose.config import AnalyticsConfig, Config, RepConfig, SmoothingConfig, validate
from edgepose.config.choices import EXERCISES
from edgepose.errors import ConfigError

#: Each exercise's figure as a function of its phase p: 0 = rest, 1 = the full work position.
FIGURES: dict[str, Callable[[float], np.ndarray]] = {
    "squat": lambda p: squat(175.0 - 95.0 * p),  # knee 175° → 80°
    "pushup": lambda p: pushup(170.0 - 95.0 * p),  # elbow 170° → 75°
    "jumping_jack": lambda p: jumping_jack(10.0 + 150.0 * p, 3.0 + 15.0 * p),  # arms 10° → 160°, legs 6° → 36°
}
PARTIAL = 0.45  # a repetition that stops less than halfway
NOISY = Noise(position_px=3.0, score_sd=0.1, drop_keypoint=0.08, drop_frame=0.02)


def _count(exercise: str, phase: Callable[[float], float], duration: float, seed: int,
           noise: Noise = NOISY) -> list[dict[str, object]]:  # fmt: skip
    counter = RepCounter(RepConfig(exercise=exercise))
    events: list[dict[str, object]] = []
    for result in frames(lambda t: FIGURES[exercise](phase(t)), duration, seed=seed, noise=noise):
        events += counter.update(result.ts, result.keypoints)
    assert counter.count == len(events)
    return events


def _reps(n: int, **kw: float) -> list[tuple[float, float, float]]:
    return [(1.0, 0.0, 0.0)] + [piece for _ in range(n) for piece in rep_cycle(0.0, 1.0, **kw)]


@pytest.mark.parametrize("exercise", list(FIGURES))
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_exact_count_with_noise_and_dropouts(exercise: str, seed: int) -> None:
    plan = _reps(3) + _reps(2, down_s=0.5, up_s=0.5, hold_s=0.1, pause_s=0.3) + _reps(2, down_s=1.5, up_s=1.2)
    events = _count(exercise, segments(*plan), total(*plan) + 0.5, seed)
    assert [e["count"] for e in events] == [1, 2, 3, 4, 5, 6, 7]
    assert all(e["type"] == "rep" and e["exercise"] == exercise for e in events)
    durations = [float(e["duration_s"]) for e in events]  # type: ignore[arg-type]
    assert all(0.6 <= d <= 2.2 for d in durations[:3]), durations  # 0.8 + 0.2 + 0.8 s a rep
    assert all(0.4 <= d <= 1.2 for d in durations[3:5]), durations  # the quick ones
    assert all(1.5 <= d <= 3.0 for d in durations[5:]), durations  # the slow ones


@pytest.mark.parametrize("exercise", list(FIGURES))
@pytest.mark.parametrize("seed", [0, 1])
def test_partial_reps_do_not_count(exercise: str, seed: int) -> None:
    plan = [(1.0, 0.0, 0.0)]
    for full in (True, False, True, False, False, True):
        plan += rep_cycle(0.0, 1.0 if full else PARTIAL)
    events = _count(exercise, segments(*plan), total(*plan) + 0.5, seed)
    assert len(events) == 3


@pytest.mark.parametrize("exercise", list(FIGURES))
@pytest.mark.parametrize("seed", [0, 1])
def test_noisy_hold_is_not_double_counted(exercise: str, seed: int) -> None:
    """Hold the bottom for 4 s wobbling ±15 % of the range, then the top likewise: one repetition."""
    rng = np.random.default_rng(100 + seed)
    wobble = rng.uniform(-0.15, 0.15, 400)
    base = segments((1.0, 0.0, 0.0), (0.8, 0.0, 0.9), (4.0, 0.9, 0.9), (0.8, 0.9, 0.0), (4.0, 0.0, 0.0))
    events = _count(exercise, lambda t: min(1.0, max(0.0, base(t) + wobble[int(t * 30) % 400])), 10.6, seed,
                    Noise(position_px=5.0, score_sd=0.12, drop_keypoint=0.1, drop_frame=0.03))  # fmt: skip
    assert len(events) == 1


def test_hold_across_the_work_threshold_counts_once() -> None:
    """Knee angle hovering around the squat's 110° threshold for 3 s is one squat, not many."""
    rng = np.random.default_rng(7)
    counter = RepCounter(RepConfig(exercise="squat"))
    events: list[dict[str, object]] = []
    path = segments((1.0, 175.0, 175.0), (0.8, 175.0, 110.0), (3.0, 110.0, 110.0), (0.8, 110.0, 175.0), (1.0, 175, 175))
    for result in frames(lambda t: squat(path(t) + rng.uniform(-12.0, 12.0)), 6.6, noise=Noise(position_px=1.0)):
        events += counter.update(result.ts, result.keypoints)
    assert len(events) == 1


def test_starting_at_the_bottom_does_not_count_the_first_rise() -> None:
    plan = [(0.5, 1.0, 1.0), (0.8, 1.0, 0.0), (0.5, 0.0, 0.0), *rep_cycle(0.0, 1.0)]
    events = _count("squat", segments(*plan), total(*plan) + 0.5, seed=0)
    assert len(events) == 1


def test_unseen_joints_change_nothing() -> None:
    """Legs out of the picture (scores low) during a squat: no count, no crash; seen again: counts."""
    plan = _reps(2)
    counter = RepCounter(RepConfig(exercise="squat"))
    count_hidden = 0
    for result in frames(lambda t: squat(175.0 - 95.0 * segments(*plan)(t)), total(*plan), noise=Noise()):
        kps = result.keypoints.copy()
        kps[11:, 2] = 0.05
        count_hidden += len(counter.update(result.ts, kps))
    assert count_hidden == 0 and counter.phase is None


@pytest.mark.parametrize("exercise", list(FIGURES))
@pytest.mark.parametrize("smoothing", [None, SmoothingConfig()])
def test_through_the_analytics_stage(exercise: str, smoothing: SmoothingConfig | None) -> None:
    """The same counts with the One-Euro filter in front, and the state carries them."""
    plan = _reps(4)
    path = segments(*plan)
    analytics = Analytics(AnalyticsConfig(exercise=exercise), smoothing)
    reps = []
    last = None
    for result in frames(lambda t: FIGURES[exercise](path(t)), total(*plan) + 0.5, seed=5, noise=NOISY):
        last = analytics.update(result)
        reps += [e for e in last.events if e["type"] == "rep"]
    assert [e["count"] for e in reps] == [1, 2, 3, 4]
    assert last is not None and last.state == {"present": True, "fallen": False, "exercise": exercise, "reps": 4}


def test_unknown_exercise_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"analytics\.exercise must be one of squat, pushup, jumping_jack"):
        validate(Config(analytics=AnalyticsConfig(exercise="burpee")))
    with pytest.raises(ConfigError, match="rep_confirm_frames"):
        validate(Config(analytics=AnalyticsConfig(rep_confirm_frames=0)))


def test_every_exercise_of_the_schema_has_zones() -> None:
    assert tuple(ZONES) == EXERCISES
