"""Presence with hysteresis: single-frame dropouts and flashes do not flap the state."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from stickfigure import FPS, HEIGHT, T0, WIDTH, Noise, empty_keypoints, noisy, squat

from edgepose.analytics import Analytics
from edgepose.analytics.body import joined_group
from edgepose.analytics.presence import Presence
from edgepose.config import AnalyticsConfig, Config, PresenceConfig, SmoothingConfig, validate
from edgepose.errors import ConfigError
from edgepose.pose import SKELETON_EDGES, PoseResult

#: (seconds, person in view?) — absent, present, absent, present again, absent.
SCRIPT = [(1.0, False), (4.0, True), (4.0, False), (3.0, True), (3.0, False)]


def _stream(seed: int, dropout_every: int = 9, flash_every: int = 13) -> list[PoseResult]:
    """PoseResults following SCRIPT; a single-frame dropout every few frames while present, and a
    single-frame false detection every few frames while absent."""
    rng = np.random.default_rng(seed)
    out = []
    i = 0
    for seconds, present in SCRIPT:
        for k in range(round(seconds * FPS)):
            person = present != (k % (dropout_every if present else flash_every) == dropout_every // 2)
            kps = noisy(squat(175.0), rng, Noise()) if person else empty_keypoints(rng)
            out.append(PoseResult(frame=i, ts=T0 + i / FPS, width=WIDTH, height=HEIGHT, keypoints=kps))
            i += 1
    return out


def _starts() -> list[float]:
    """When each part of SCRIPT starts, seconds from T0."""
    return [sum(s for s, _ in SCRIPT[:n]) for n in range(len(SCRIPT))]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("smoothing", [None, SmoothingConfig()])
def test_entered_and_left_exactly_once_per_visit(seed: int, smoothing: SmoothingConfig | None) -> None:
    analytics = Analytics(AnalyticsConfig(), smoothing)
    events = []
    states = []
    for result in _stream(seed):
        out = analytics.update(result)
        events += list(out.events)
        assert out.state is not None
        states.append(out.state["present"])
    assert [e["type"] for e in events] == ["person_entered", "person_left", "person_entered", "person_left"]
    starts = _starts()
    # entered enter_s (0.5 s) after the person appears, left leave_s (2 s) after they go; ±2 frames
    expected = [starts[1] + 0.5, starts[2] + 2.0, starts[3] + 0.5, starts[4] + 2.0]
    for event, at in zip(events, expected, strict=True):
        assert abs(event["ts"] - T0 - at) <= 2.5 / FPS, (event, at)
    flips = sum(1 for a, b in itertools.pairwise(states) if a != b)
    assert flips == 4
    assert events[1]["visit_s"] == pytest.approx(5.5, abs=0.1)
    assert events[3]["time_in_view_s"] == pytest.approx(5.5 + 4.5, abs=0.2)
    assert events[2]["entries"] == 2


def test_score_hovering_between_thresholds_changes_nothing() -> None:
    """A score that wanders between leave_score (0.2) and enter_score (0.3) neither enters nor leaves."""
    rng = np.random.default_rng(4)
    for present_first in (False, True):
        presence = Presence(PresenceConfig())
        if present_first:
            for i in range(30):
                presence.update(i / FPS, 0.8)
            assert presence.present
        events = []
        for i in range(30, 330):
            events += presence.update(i / FPS, float(rng.uniform(0.2, 0.2999)))
        assert events == [] and presence.present == present_first


@pytest.mark.parametrize("low_share", [0.1, 0.5, 0.9])
def test_score_flickering_around_the_old_threshold_does_not_flap(low_share: float) -> None:
    """Scores flickering between 0.15 and 0.25 for 20 s (where a single 0.2 threshold flaps hundreds
    of times): at most one change of state, never back and forth."""
    rng = np.random.default_rng(5)
    presence = Presence(PresenceConfig())
    events = []
    for i in range(60):
        events += presence.update(i / FPS, 0.7)
    scores = np.where(rng.random(600) < low_share, 0.15, 0.25)
    single_threshold_flips = int(np.sum(np.diff(scores >= 0.2) != 0))
    for i, score in enumerate(scores, start=60):
        events += presence.update(i / FPS, float(score))
    assert single_threshold_flips > 50
    assert [e["type"] for e in events] in (["person_entered"], ["person_entered", "person_left"])


def test_dropout_longer_than_dropout_s_restarts_the_entry() -> None:
    presence = Presence(PresenceConfig(enter_s=0.5, dropout_s=0.1))
    ts = 0.0
    for _ in range(10):  # 0.3 s seen
        presence.update(ts, 0.8)
        ts += 1 / FPS
    for _ in range(6):  # 0.2 s gone: longer than dropout_s
        presence.update(ts, 0.0)
        ts += 1 / FPS
    entered = None
    for _ in range(30):
        if presence.update(ts, 0.8):
            entered = ts
            break
        ts += 1 / FPS
    assert entered is not None
    assert entered - (16 / FPS) >= 0.5 - 1e-9  # counted from when the person came back


def test_leave_score_above_enter_score_means_no_hysteresis() -> None:
    presence = Presence(PresenceConfig(enter_score=0.3, leave_score=0.5, enter_s=0.0, leave_s=0.0, dropout_s=0.0))
    assert presence.update(0.0, 0.4)[0]["type"] == "person_entered"
    assert presence.update(0.1, 0.35) == []  # 0.35 is below leave_score but not below enter_score: stays
    assert presence.update(0.2, 0.25)[0]["type"] == "person_left"


@pytest.mark.parametrize(
    "bad", [{"enter_s": -1.0}, {"leave_s": float("inf")}, {"dropout_s": float("nan")}, {"enter_score": 1.5}]
)  # fmt: skip
def test_bad_settings_are_config_errors(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="analytics"):
        validate(Config(analytics=AnalyticsConfig(**bad)))


def _largest_group_by_search(seen: list[bool]) -> list[int]:
    """The largest group of seen keypoints joined along the skeleton, by a plain search (the lowest index first)."""
    best: list[int] = []
    done: set[int] = set()
    for start in range(len(seen)):
        if not seen[start] or start in done:
            continue
        group, todo = {start}, [start]
        while todo:
            i = todo.pop()
            for a, b in SKELETON_EDGES:
                for here, there in ((a, b), (b, a)):
                    if here == i and seen[there] and there not in group:
                        group.add(there)
                        todo.append(there)
        done |= group
        if len(group) > len(best):
            best = sorted(group)
    return best


def test_the_joined_group_is_the_largest_connected_one_for_every_pattern_seen() -> None:
    rng = np.random.default_rng(3)
    patterns = [rng.random(17) < p for p in np.linspace(0.1, 0.95, 400)]
    patterns += [np.ones(17, bool), np.zeros(17, bool), np.arange(17) % 2 == 0]
    for seen in patterns * 2:  # twice: the second pass is answered from the per-pattern cache
        keypoints = np.zeros((17, 3), np.float32)
        keypoints[:, 2] = np.where(seen, 0.6, 0.1)
        assert list(joined_group(keypoints, 0.3)) == _largest_group_by_search(seen.tolist())


def test_deciding_holds_from_the_first_body_until_the_person_is_taken_or_forgotten() -> None:
    analytics = Analytics(AnalyticsConfig(), None)
    rng = np.random.default_rng(4)
    seen = [analytics.update(PoseResult(0, T0, WIDTH, HEIGHT, empty_keypoints(rng))) for _ in range(3)]
    assert not analytics.deciding and not any(r.state and r.state["present"] for r in seen)
    deciding = []
    for i in range(round(2 * FPS)):  # a person in view: first a body being decided on, then a person
        result = analytics.update(PoseResult(i, T0 + 1 + i / FPS, WIDTH, HEIGHT, noisy(squat(175.0), rng, Noise())))
        deciding.append((analytics.deciding, bool(result.state and result.state["present"])))
    assert deciding[0] == (True, False), "the first body is followed before presence decides"
    assert deciding[-1] == (False, True), "once entered, nobody is being decided on"
    entered = next(i for i, (_, present) in enumerate(deciding) if present)
    assert all(d for d, _ in deciding[:entered]) and not any(d for d, _ in deciding[entered:])
