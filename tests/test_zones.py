"""Zones: ``[[zones]]`` in the config (one-line errors for a bad one), and who is in which zone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli
from people import analysed, crowd, events
from stickfigure import FPS, HEIGHT, T0, WIDTH, Noise, noisy, segments, topple

from edgepose.analytics import Analytics
from edgepose.analytics.zones import inside, zone_point
from edgepose.config import AnalyticsConfig, Config, ZoneConfig, validate
from edgepose.errors import ConfigError
from edgepose.pose import PoseResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DOOR = ZoneConfig("door", ((0.4, 0.0), (0.6, 0.0), (0.6, 1.0), (0.4, 1.0)))
WALK = segments((1.0, 40.0, 40.0), (6.0, 40.0, 560.0), (1.0, 560.0, 560.0))


def test_walking_through_a_zone_gives_zone_entered_then_zone_left() -> None:
    out = analysed(Analytics(AnalyticsConfig(), zones=(DOOR,)), crowd([lambda t: topple(0.0, WALK(t))], 8.0))
    moves = [(e["type"], e["zone"], e["person"]) for e in events(out, "zone_entered", "zone_left")]
    assert moves == [("zone_entered", "door", 1), ("zone_left", "door", 1)]
    inside_door = [r.state["zones"]["door"] for r in out]  # type: ignore[index]
    assert [c for i, c in enumerate(inside_door) if i == 0 or c != inside_door[i - 1]] == [0, 1, 0]
    entered, left = (next(i for i, r in enumerate(out) if any(e["type"] == kind for e in r.events))
                     for kind in ("zone_entered", "zone_left"))  # fmt: skip
    assert out[entered].state["people"][0]["zones"] == ["door"]  # type: ignore[index]
    assert 256 <= WALK(entered / FPS) <= 256 + 0.5 * 180  # hips cross x=0.4·640 (+ zone_s of walking)
    assert 384 <= WALK(left / FPS) <= 384 + 0.5 * 180


def test_leaving_the_picture_inside_a_zone_leaves_the_zone_first() -> None:
    out = analysed(Analytics(AnalyticsConfig(), zones=(DOOR,)),
                   crowd([lambda t: topple(0.0, 280.0) if t < 3.0 else None], 6.0))  # fmt: skip
    assert [e["type"] for e in events(out)] == ["person_entered", "zone_entered", "zone_left", "person_left"]
    assert out[-1].state["zones"] == {"door": 0}  # type: ignore[index]


def test_the_point_is_the_hips_else_the_ankles() -> None:
    rng = np.random.default_rng(0)
    keypoints = noisy(topple(0.0, 300.0), rng, Noise(position_px=0.0, drop_keypoint=0.0))
    hips = zone_point(keypoints, WIDTH, HEIGHT, 0.3)
    keypoints[11:13, 2] = 0.1
    ankles = zone_point(keypoints, WIDTH, HEIGHT, 0.3)
    keypoints[15:17, 2] = 0.1
    assert hips is not None and ankles is not None and zone_point(keypoints, WIDTH, HEIGHT, 0.3) is None
    assert hips[1] < ankles[1] and abs(ankles[1] - keypoints[15, 1] / HEIGHT) < 1e-6
    assert inside((0.5, 0.5), DOOR.polygon) and not inside((0.7, 0.5), DOOR.polygon)
    assert inside((0.5, 0.5), ((0.0, 0.0), (1.0, 0.0), (0.5, 1.0))) and not inside(
        (0.9, 0.9), ((0, 0), (1, 0), (0.5, 1))
    )


def _config(tmp_path: Path, zones: str) -> Path:
    path = tmp_path / "edgepose.toml"
    path.write_text("[analytics]\nlong_lie_s = 30\n\n" + zones)
    return path


@pytest.mark.parametrize(
    ("zones", "needle"),
    [
        ('[[zones]]\nname = "bed"\npolygon = [[0.1, 0.1], [0.9, 0.1]]\n', "zone 'bed'.polygon must be 3 to 256"),
        ('[[zones]]\nname = "bed"\npolygon = [[0.1, 0.1], [1.2, 0.1], [0.5, 0.9]]\n', "corner 2 must lie in the frame"),
        ('[[zones]]\nname = "bed"\npolygon = [[0.1, 0.1], [nan, 0.1], [0.5, 0.9]]\n', "corner 2 must lie in the frame"),
        ('[[zones]]\nname = "bed"\npolygon = [[0.1, 0.1], [0.2, "x"], [0.5, 0.9]]\n', "corner 2 must be two numbers"),
        ('[[zones]]\nname = "bed"\npolygon = [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]\n', "has no area"),
        ('[[zones]]\nname = "a"\npolygon = [[0, 0], [1, 0], [1, 1]]\n' * 2, "two [[zones]] are named 'a'"),
        ('[[zones]]\nname = "Bed"\npolygon = [[0, 0], [1, 0], [1, 1]]\n[[zones]]\nname = "bed"\n'
         'polygon = [[0, 0], [1, 0], [1, 1]]\n', "'Bed' and 'bed' differ only in case or - and _"),
        ('[[zones]]\nname = "a-b"\npolygon = [[0, 0], [1, 0], [1, 1]]\n[[zones]]\nname = "a_b"\n'
         'polygon = [[0, 0], [1, 0], [1, 1]]\n', "one Home Assistant entity (zone_a_b): rename one"),
        ('[[zones]]\nname = "my/bed"\npolygon = [[0, 0], [1, 0], [1, 1]]\n', "zones[1].name must be 1 to 64"),
        ('[[zones]]\npolygon = [[0, 0], [1, 0], [1, 1]]\n', "zones[1].name must be"),
        ('[[zones]]\nname = "bed"\n', "zone 'bed' needs a polygon"),
        ('[[zones]]\nname = "bed"\npolygon = [[0, 0], [1, 0], [1, 1]]\nfalls = "no"\n', "falls must be true or false"),
        ('[[zones]]\nname = "bed"\npolygon = [[0, 0], [1, 0], [1, 1]]\nfall = false\n', "unknown key 'fall'"),
        ('[zones]\nname = "bed"\n', "zones must be a list of [[zones]] tables"),
    ],
)  # fmt: skip
def test_a_bad_zone_is_one_line_naming_it(tmp_path: Path, zones: str, needle: str) -> None:
    proc = run_cli("analyze", "--config", str(_config(tmp_path, zones)), "-", input="")
    assert_one_line_error(proc, 2, needle)


def test_zones_built_in_code_are_held_to_the_same_rules() -> None:
    with pytest.raises(ConfigError, match=r"zone 'bad'\.polygon corner 1 must lie in the frame"):
        validate(Config(zones=(DOOR, ZoneConfig("bad", ((-0.1, 0.0), (1.0, 0.0), (1.0, 1.0))))))
    with pytest.raises(ConfigError, match="two"):
        validate(Config(zones=(DOOR, DOOR)))
    assert validate(Config(zones=(DOOR,))).zones == (DOOR,)


def test_print_config_shows_the_zones_and_they_parse_back(tmp_path: Path) -> None:
    bed = '[[zones]]\nname = "bed"\npolygon = [[0.55, 0.6], [0.95, 0.6], [0.95, 0.95], [0.55, 0.95]]\nfalls = false\n'
    path = _config(tmp_path, bed + '[[zones]]\nname = "door"\npolygon = [[0, 0], [0.2, 0], [0.2, 1]]\n')
    proc = run_cli("infer", "--config", str(path), "--print-config", "x.jpg")
    assert proc.returncode == 0, proc.stderr
    printed = tomllib.loads(proc.stdout)
    assert printed["zones"] == [
        {"name": "bed", "polygon": [[0.55, 0.6], [0.95, 0.6], [0.95, 0.95], [0.55, 0.95]], "falls": False},
        {"name": "door", "polygon": [[0.0, 0.0], [0.2, 0.0], [0.2, 1.0]], "falls": True},
    ]
    again = tmp_path / "again.toml"
    again.write_text(proc.stdout)
    assert run_cli("infer", "--config", str(again), "--print-config", "x.jpg").stdout == proc.stdout


def test_analyze_reads_zones_and_analytics_from_its_config(tmp_path: Path) -> None:
    path = _config(tmp_path, '[[zones]]\nname = "door"\npolygon = [[0.4, 0], [0.6, 0], [0.6, 1], [0.4, 1]]\n')
    path.write_text(path.read_text().replace("long_lie_s = 30", "zone_s = 0.0"))
    rng = np.random.default_rng(1)
    lines = []
    for i in range(round(8 * FPS)):
        keypoints = noisy(topple(0.0, WALK(i / FPS)), rng, Noise())
        lines.append(json.dumps(PoseResult(i, T0 + i / FPS, WIDTH, HEIGHT, keypoints).to_dict()))
    proc = run_cli("analyze", "--config", str(path), "-", input="\n".join(lines) + "\n")
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    moves = [(e["type"], e.get("zone")) for o in out for e in o["events"]]
    assert moves == [("person_entered", None), ("zone_entered", "door"), ("zone_left", "door")]
    assert set(out[-1]["state"]["zones"]) == {"door"}
    entered = next(i for i, o in enumerate(out) if any(e["type"] == "zone_entered" for e in o["events"]))
    assert 250 <= WALK(entered / FPS) <= 266  # zone_s = 0 from the file: at once (hips: ankles ± noise)
