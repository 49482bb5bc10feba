"""Several people: each pose gets a stable id, and each person's analytics see only their own keypoints."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import paste, write_frames
from conftest import model_args, run_cli
from people import Figure, analysed, crowd, events, id_near
from stickfigure import T0, segments, topple

from edgepose.analytics import Analytics
from edgepose.config import AnalyticsConfig, ZoneConfig

BED = ZoneConfig("bed", ((0.3, 0.75), (1.0, 0.75), (1.0, 1.0), (0.3, 1.0)), falls=False)


def _standing(x: float) -> np.ndarray:
    return topple(0.0, x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_falls_while_the_other_stands_one_fall_for_the_right_id(seed: int) -> None:
    """A stands at x=80 throughout; B stands at x=300, falls after 3 s, lies, gets up."""
    fall = segments((3.0, 0.0, 0.0), (0.6, 0.0, 88.0), (4.0, 88.0, 88.0), (2.5, 88.0, 0.0), (3.0, 0.0, 0.0))
    out = analysed(
        Analytics(AnalyticsConfig()), crowd([_standing_at(80.0), lambda t: topple(fall(t), 300.0)], 13.1, seed)
    )
    a, b = id_near(out[20], 80.0), id_near(out[20], 300.0)
    assert {a, b} == {1, 2}
    assert [(e["type"], e["person"]) for e in events(out, "fall", "recovered", "long_lie")] == [
        ("fall", b),
        ("recovered", b),
    ]
    assert all(id_near(r, 80.0) == a for r in out[20:])  # A keeps their id while B falls next to them
    fallen = [r for r in out if r.state and r.state["fallen"]]
    assert fallen and all({p["id"]: p["fallen"] for p in r.state["people"]} == {a: False, b: True} for r in fallen)  # type: ignore[index]
    assert [len(r.state["people"]) for r in out[20:]] == [2] * len(out[20:])  # type: ignore[index]


def _standing_at(x: float) -> Figure:
    return lambda t: _standing(x)


@pytest.mark.parametrize("zones", [(BED,), ()], ids=["bed", "no-zone"])
def test_the_one_standing_leaves_while_the_other_lies_in_a_bed_zone(zones: tuple[ZoneConfig, ...]) -> None:
    """B lies on the bed from the start; A stands, then walks out of the picture to the left: nothing happens.

    Without the zone, the same scene is a long lie for B (the test can fail)."""
    walk = segments((3.0, 80.0, 80.0), (2.0, 80.0, -300.0), (10.0, -300.0, -300.0))
    a = lambda t: _standing(walk(t)) if walk(t) > -250.0 else None  # noqa: E731
    b = lambda t: topple(88.0, 250.0)  # noqa: E731
    config = AnalyticsConfig(long_lie_s=5.0)
    out = analysed(Analytics(config, zones=zones), crowd([a, b], 12.0, seed=3))
    first_a, first_b = out[30].state["people"]  # type: ignore[index]
    alarms = [(e["type"], e["person"]) for e in events(out, "fall", "long_lie")]
    left = [e["person"] for e in events(out, "person_left")]
    lying_id = id_near(out[30], 250.0)
    assert left == [id_near(out[30], 80.0)] and lying_id in (first_a["id"], first_b["id"])
    last = out[-1].state
    assert last is not None and [p["id"] for p in last["people"]] == [lying_id]
    assert last["people"][0]["posture"] == "lying"
    if zones:
        assert alarms == [] and not any(r.state and r.state["fallen"] for r in out)
        assert last["people"][0]["zones"] == ["bed"] and last["zones"] == {"bed": 1}
    else:
        assert alarms == [("long_lie", lying_id)]


@pytest.mark.parametrize("seed", [0, 1])
def test_ids_stay_with_their_people_through_a_short_occlusion(seed: int) -> None:
    """A walks from x=60 to x=560 past B (at x=300), hiding B for 0.8 s: afterwards both keep their ids."""
    walk = segments((1.0, 60.0, 60.0), (5.0, 60.0, 560.0), (2.0, 560.0, 560.0))
    a = lambda t: _standing(walk(t))  # noqa: E731
    b = lambda t: None if abs(walk(t) - 300.0) < 60.0 else _standing(300.0)  # noqa: E731
    out = analysed(Analytics(AnalyticsConfig()), crowd([a, b], 8.0, seed))
    hidden = [i for i in range(len(out)) if abs(walk(i / 30) - 300.0) < 60.0]
    assert len(hidden) >= 20  # 0.8 s at 30 fps
    id_a, id_b = id_near(out[25], walk(25 / 30)), id_near(out[25], 300.0)
    assert {id_a, id_b} == {1, 2}
    for i, result in enumerate(out[25:], start=25):
        assert id_near(result, walk(i / 30), within=30.0) == id_a, i
        if i not in hidden and abs(walk(i / 30) - 300.0) > 80.0:
            assert id_near(result, 300.0, within=30.0) == id_b, i
    assert [e["type"] for e in events(out, "person_entered", "person_left")] == ["person_entered"] * 2


def test_ids_are_never_reused_and_a_lone_pose_keeps_the_one_track() -> None:
    """One person (as MoveNet sees one): a jump across the picture keeps the id; a new visit gets a new one."""

    def figure(t: float) -> np.ndarray | None:
        if 3.0 <= t < 6.5:
            return None  # gone for longer than leave_s
        return _standing(100.0 if t < 2.0 else 500.0)

    out = analysed(Analytics(AnalyticsConfig()), crowd([figure], 9.0))
    seen = [(e["type"], e["person"]) for e in events(out, "person_entered", "person_left")]
    assert seen == [("person_entered", 1), ("person_left", 1), ("person_entered", 2)]
    assert {r.poses[0].id for r in out[20:90] if r.poses} == {1}  # type: ignore[index]  # the jump at 2 s
    assert [e["entries"] for e in events(out, "person_entered")] == [1, 2]


def test_person_and_people_never_disagree() -> None:
    """Two people come and go at different times: ``present`` is true exactly when someone in ``people`` is."""
    a = lambda t: _standing(100.0) if 1.0 <= t < 6.0 else None  # noqa: E731
    b = lambda t: _standing(450.0) if 3.0 <= t < 9.0 else None  # noqa: E731
    out = analysed(Analytics(AnalyticsConfig()), crowd([a, b], 12.0))
    counts = []
    for result in out:
        state = result.state
        assert state is not None
        present = [p for p in state["people"] if p["present"]]
        assert state["present"] == bool(present) and result.people(0.2) == len(present)
        counts.append(len(present))
    changes = [c for i, c in enumerate(counts) if i == 0 or c != counts[i - 1]]
    assert changes == [0, 1, 2, 1, 0]


@pytest.mark.slow
def test_posenet_end_to_end_two_people_two_stable_ids(posenet_dir: Path, testdata: Path, tmp_path: Path) -> None:
    """Two scaled copies of the real photo side by side, walking towards each other; PoseNet sees both."""
    person = cv2.imread(str(testdata / "woman_standing.png"), cv2.IMREAD_UNCHANGED)
    room = np.full((480, 640, 3), (96, 112, 104), np.uint8)
    frames = [paste(paste(room, person, 0.62, 40 + 2 * i, 50), person, 0.62, 430 - 2 * i, 50) for i in range(60)]
    clip = write_frames(tmp_path / "two.avi", frames)
    out = tmp_path / "two.jsonl"
    proc = run_cli("run", "--model", "posenet", "--source", str(clip), "--output", str(out), *model_args(posenet_dir))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    entered = [(e["type"], e["person"]) for line in lines for e in line["events"]]
    assert sorted(entered) == [("person_entered", 1), ("person_entered", 2)]
    sides = {}
    for line in lines[10:]:
        assert len(line["poses"]) == 2 and [p["id"] for p in line["state"]["people"]] == [1, 2]
        for pose in line["poses"]:
            side = "left" if (pose["box"][0] + pose["box"][2]) / 2 < 350 else "right"  # centres: <= 277, >= 431
            assert sides.setdefault(pose["id"], side) == side  # each id stays with its person
    assert sorted(sides.values()) == ["left", "right"]
    assert all(line["state"]["present"] and line["state"]["people"][0]["posture"] == "standing" for line in lines[20:])
    analyzed = run_cli("analyze", str(out))
    assert analyzed.returncode == 0, analyzed.stderr
    again = [json.loads(line) for line in analyzed.stdout.splitlines()]
    assert [a["events"] for a in again] == [line["events"] for line in lines]
    assert [a["state"] for a in again] == [line["state"] for line in lines]
    assert [[p["id"] for p in a["poses"]] for a in again] == [[p["id"] for p in line["poses"]] for line in lines]
    assert abs(lines[-1]["media_s"] - 59 / 15) < 1e-3 and T0 > 0


def test_a_pose_carries_its_id_from_the_frame_its_person_enters() -> None:
    """Still images enter at once (no delays): the very first frame's poses carry their ids."""
    config = AnalyticsConfig(enter_s=0.0, leave_s=0.0, dropout_s=0.0, posture_s=0.0, zone_s=0.0)
    out = analysed(Analytics(config), crowd([_standing_at(100.0), _standing_at(450.0)], 0.1))
    first = out[0]
    assert sorted(p.id for p in first.poses or ()) == [1, 2]  # type: ignore[type-var]
    assert [(e["type"], e["person"]) for e in first.events] == [("person_entered", 1), ("person_entered", 2)]
    assert {p["posture"] for p in first.state["people"]} == {"standing"}  # type: ignore[index]
