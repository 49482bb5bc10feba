"""Posture per person, and the long lie: lying outside every ``falls = false`` zone for ``long_lie_s``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from clips import FALL_SIZE, render_tilted, write_frames
from conftest import model_args, run_cli
from people import analysed, crowd, events
from stickfigure import T0, segments, sitting, topple

from edgepose.analytics import Analytics
from edgepose.config import AnalyticsConfig, ZoneConfig

#: Where a figure lying with its feet at x=250 lies (its hips at about (0.62, 0.88)).
BED = ZoneConfig("bed", ((0.3, 0.75), (1.0, 0.75), (1.0, 1.0), (0.3, 1.0)), falls=False)


def _postures(results: list) -> list[tuple[float, str]]:  # type: ignore[type-arg]
    """(seconds, posture) at each change of the one person's posture."""
    out: list[tuple[float, str]] = []
    for r in results:
        people = r.state["people"]
        if people and (not out or out[-1][1] != people[0]["posture"]):
            out.append((r.ts - T0, people[0]["posture"]))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stand_sit_stand_lie_gives_those_postures_in_order(seed: int) -> None:
    """Stand 2 s, sit down (1 s), sit 3 s, stand up (1 s), stand 2 s, then lie down slowly on the floor (4 s)."""
    seat = segments((2.0, 0.0, 0.0), (1.0, 0.0, 1.0), (3.0, 1.0, 1.0), (1.0, 1.0, 0.0), (2.0, 0.0, 0.0))
    lie = segments((9.0, 0.0, 0.0), (4.0, 0.0, 88.0), (3.0, 88.0, 88.0))
    out = analysed(
        Analytics(AnalyticsConfig()), crowd([lambda t: sitting(seat(t)) if t < 9.0 else topple(lie(t))], 16.0, seed)
    )
    changes = _postures(out)
    assert [p for _, p in changes if p != "unknown"] == ["standing", "sitting", "standing", "lying"]
    at = dict((p, t) for t, p in reversed(changes))  # the first time of each
    assert 2.0 < at["sitting"] < 3.5 and 9.0 < at["lying"] < 13.5
    assert events(out, "fall", "long_lie") == []  # lying down slowly is no fall, and not long enough


@pytest.mark.parametrize("seed", [0, 1])
def test_lying_from_the_first_frame_is_one_long_lie_and_no_fall(seed: int) -> None:
    """Already on the floor when the camera starts (or the box restarts): lie 14 s, get up (2 s), stand 3 s."""
    angle = segments((14.0, 88.0, 88.0), (2.0, 88.0, 0.0), (3.0, 0.0, 0.0))
    config = AnalyticsConfig(long_lie_s=10.0)
    out = analysed(Analytics(config), crowd([lambda t: topple(angle(t), 250.0)], 19.0, seed))
    alarms = events(out, "fall", "long_lie", "recovered")
    assert [(e["type"], e["person"]) for e in alarms] == [("long_lie", 1), ("recovered", 1)]
    long_lie, recovered = alarms
    # entering (0.5 s) and taking the posture (0.5 s) come first; then long_lie_s of lying
    assert 10.0 <= float(long_lie["ts"]) - T0 <= 11.5  # type: ignore[arg-type]
    assert 0.6 <= float(long_lie["confidence"]) <= 1.0  # type: ignore[arg-type]
    assert 14.0 < float(recovered["ts"]) - T0 < 17.0  # type: ignore[arg-type]
    fallen = [r.state["fallen"] for r in out]  # type: ignore[index]
    assert [f for i, f in enumerate(fallen) if i == 0 or f != fallen[i - 1]] == [False, True, False]
    assert fallen.index(True) == next(i for i, r in enumerate(out) if r.events and r.events[0]["type"] == "long_lie")


def test_lying_in_a_falls_false_zone_is_nothing() -> None:
    out = analysed(
        Analytics(AnalyticsConfig(long_lie_s=5.0), zones=(BED,)), crowd([lambda t: topple(88.0, 250.0)], 10.0)
    )
    assert events(out, "fall", "long_lie") == []
    assert not any(r.state["fallen"] for r in out)  # type: ignore[index]
    assert out[-1].state["people"] == [
        {"id": 1, "present": True, "posture": "lying", "fallen": False, "zones": ["bed"]}
    ]  # type: ignore[index]
    assert [(e["type"], e["zone"]) for e in events(out, "zone_entered", "zone_left")] == [("zone_entered", "bed")]


def _fall_then_lie(t: float) -> float:
    """Stand 3 s, topple (accelerating, 0.6 s), then stay down."""
    return 0.0 if t < 3.0 else min(88.0, 88.0 * ((t - 3.0) / 0.6) ** 2)


def test_a_seen_fall_that_stays_down_is_one_fall_not_also_a_long_lie() -> None:
    out = analysed(
        Analytics(AnalyticsConfig(long_lie_s=4.0)), crowd([lambda t: topple(_fall_then_lie(t), 250.0)], 15.0)
    )
    assert [e["type"] for e in events(out, "fall", "long_lie")] == ["fall"]
    assert out[-1].state["fallen"] is True  # type: ignore[index]


def test_a_fall_onto_a_falls_false_zone_is_no_fall() -> None:
    """The same fall, ending on the bed: nothing (without the zone it is a fall, as above)."""
    out = analysed(Analytics(AnalyticsConfig(long_lie_s=4.0), zones=(BED,)),
                   crowd([lambda t: topple(_fall_then_lie(t), 250.0)], 15.0))  # fmt: skip
    assert events(out, "fall", "long_lie") == []
    assert not any(r.state["fallen"] for r in out)  # type: ignore[index]


@pytest.mark.slow
def test_a_real_long_lie_through_movenet(models_dir: Path, testdata: Path, tmp_path: Path) -> None:
    """The real photo lying on the floor from the first frame (6 s), getting up (1.5 s) and standing (3 s)."""
    person = cv2.imread(str(testdata / "woman_standing.png"), cv2.IMREAD_UNCHANGED)
    tilt = segments((6.0, 88.0, 88.0), (1.5, 88.0, 0.0), (3.0, 0.0, 0.0))
    clip = write_frames(tmp_path / "lie.avi", [render_tilted(person, tilt(i / 15)) for i in range(round(10.5 * 15))])
    assert FALL_SIZE == (320, 240)
    config = tmp_path / "edgepose.toml"
    config.write_text("[analytics]\nlong_lie_s = 3.0\n")
    out = tmp_path / "lie.jsonl"
    proc = run_cli("run", "--config", str(config), "--source", str(clip), "--output", str(out), *model_args(models_dir))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    seen = [(e["type"], e.get("person")) for line in lines for e in line["events"]]
    assert seen == [("person_entered", 1), ("long_lie", 1), ("recovered", 1)]
    lie = next(line for line in lines if any(e["type"] == "long_lie" for e in line["events"]))
    assert 3.0 <= lie["media_s"] <= 5.0 and lie["state"]["fallen"] is True
    assert lie["state"]["people"][0]["posture"] == "lying"
    assert lines[-1]["state"]["fallen"] is False and lines[-1]["state"]["people"][0]["posture"] == "standing"
