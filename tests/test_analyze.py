"""``edgepose analyze`` as a subprocess over recorded pose JSON lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli
from stickfigure import FPS, HEIGHT, T0, WIDTH, Noise, empty_keypoints, noisy, rep_cycle, segments, squat, topple

from edgepose.pose import PoseResult


def _lines(poses: Iterable[np.ndarray | None], seed: int = 0) -> list[str]:
    """JSON lines as ``edgepose run`` prints them; ``None`` is a frame without a person."""
    rng = np.random.default_rng(seed)
    out = []
    for i, kps in enumerate(poses):
        keypoints = empty_keypoints(rng) if kps is None else noisy(kps, rng, Noise())
        result = PoseResult(frame=i, ts=T0 + i / FPS, width=WIDTH, height=HEIGHT, keypoints=keypoints,
                            latency_ms={"total": 12.5})  # fmt: skip
        out.append(json.dumps(result.to_dict()))
    return out


def _squat_session(reps: int = 3) -> list[str]:
    """1 s empty room, a person doing ``reps`` squats, then 3 s empty room."""
    plan = [(1.0, 0.0, 0.0)] + [p for _ in range(reps) for p in rep_cycle(0.0, 1.0)]
    phase = segments(*plan)
    n = round(sum(p[0] for p in plan) * FPS)
    empty = [None] * round(FPS)
    return _lines([*empty, *(squat(175.0 - 95.0 * phase(i / FPS)) for i in range(n)), *[None] * round(3 * FPS)])


def _write(tmp_path: Path, lines: list[str], name: str = "poses.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _parse(stdout: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_every_line_is_echoed_with_state_and_events(tmp_path: Path) -> None:
    lines = _squat_session(3)
    proc = run_cli("analyze", "--exercise", "squat", str(_write(tmp_path, lines)))
    assert proc.returncode == 0, proc.stderr
    out = _parse(proc.stdout)
    assert len(out) == len(lines)
    for given, got in zip(lines, out, strict=True):
        expected = json.loads(given)
        assert list(got)[: len(expected)] == list(expected)  # the input's fields, in order, then the new two
        poses = got["poses"]
        assert all(set(p) == {"id", "score", "box", "keypoints"} for p in poses)  # type: ignore[attr-defined]
        got["poses"] = [{k: v for k, v in p.items() if k != "id"} for p in poses]  # type: ignore[attr-defined]
        assert {k: v for k, v in got.items() if k not in ("state", "events")} == expected
        assert set(got["state"]) == {"present", "fallen", "exercise", "reps", "people", "zones"}  # type: ignore[arg-type]
        assert isinstance(got["events"], list)
    events = [e for o in out for e in o["events"]]  # type: ignore[attr-defined]
    assert [e["type"] for e in events] == ["person_entered", "rep", "rep", "rep", "person_left"]
    reps = [e for e in events if e["type"] == "rep"]
    assert [e["count"] for e in reps] == [1, 2, 3]
    assert all(e["exercise"] == "squat" and 0.5 < e["duration_s"] < 2.5 for e in reps)
    assert out[-1]["state"] == {"present": False, "fallen": False, "exercise": "squat", "reps": 3, "people": [],
                                "zones": {}}  # fmt: skip
    assert sum(1 for o in out if o["events"]) == 5  # events sit on single frames; most frames have none


@pytest.mark.slow
def test_stdin_gives_the_same_output(tmp_path: Path) -> None:
    lines = _squat_session(2)
    from_file = run_cli("analyze", "--exercise", "squat", str(_write(tmp_path, lines)))
    from_stdin = run_cli("analyze", "--exercise", "squat", "-", input="\n".join(lines) + "\n")
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout


@pytest.mark.slow
def test_timing_comes_from_ts_only(tmp_path: Path) -> None:
    """Frame numbers, latencies and the order of keys do not matter; the result is the same every run."""
    lines = _squat_session(2)
    changed = []
    for line in lines:
        obj = json.loads(line)
        obj.pop("frame")
        obj["latency_ms"] = {"total": 999.0}
        changed.append(json.dumps(dict(reversed(list(obj.items())))))
    a = _parse(run_cli("analyze", "--exercise", "squat", str(_write(tmp_path, lines, "a.jsonl"))).stdout)
    b = _parse(run_cli("analyze", "--exercise", "squat", str(_write(tmp_path, changed, "b.jsonl"))).stdout)
    assert [o["events"] for o in a] == [o["events"] for o in b]
    assert [o["state"] for o in a] == [o["state"] for o in b]


def _retimed(lines: list[str], wall: Callable[[int], float] | None) -> list[str]:
    """The lines with ``media_s`` (their old ``ts`` from T0) and the wall clock ``wall(i)`` as ``ts``; ``None``: as
    they are, a recording made before ``media_s`` existed."""
    if wall is None:
        return lines
    out = []
    for i, line in enumerate(lines):
        obj = json.loads(line)
        out.append(json.dumps({"ts": round(wall(i), 6), "media_s": round(obj.pop("ts") - T0, 6), **obj}))
    return out


def _timeline(stdout: str) -> list[tuple[int, str, object]]:
    """(line, type, visit_s or count) of every event."""
    out = _parse(stdout)
    return [(i, e["type"], e.get("visit_s", e.get("count"))) for i, o in enumerate(out) for e in o["events"]]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "wall",
    [lambda i: T0 + i / FPS - (3600.0 if i > 60 else 0.0), lambda i: T0 + i / FPS + (3600.0 if i > 60 else 0.0),
     lambda i: T0 + i / (10 * FPS)],
    ids=["ntp-back-1h", "ntp-on-1h", "read-10x-fast"],
)  # fmt: skip
def test_media_s_times_the_analytics_and_ts_is_a_label(tmp_path: Path, wall: Callable[[int], float]) -> None:
    """A recording whose wall clock stepped, or that was read faster than it plays, replays by its media time."""
    old = _squat_session(3)
    expected = run_cli("analyze", "--exercise", "squat", str(_write(tmp_path, old, "old.jsonl")))
    lines = _retimed(old, wall)
    proc = run_cli("analyze", "--exercise", "squat", str(_write(tmp_path, lines)))
    assert proc.returncode == 0, proc.stderr
    assert _timeline(proc.stdout) == _timeline(expected.stdout)
    assert [e[1] for e in _timeline(proc.stdout)] == ["person_entered", "rep", "rep", "rep", "person_left"]
    for line, out in zip(lines, _parse(proc.stdout), strict=True):
        given = json.loads(line)
        assert all(e["ts"] == given["ts"] and e["media_s"] == given["media_s"] for e in out["events"])  # type: ignore[attr-defined]


def test_an_old_recording_without_media_s_is_timed_by_ts(tmp_path: Path) -> None:
    """Without ``media_s`` a line is timed by its ``ts``: the same answers as with it, and no ``media_s`` made up."""
    old = _squat_session(2)
    new = _retimed(old, lambda i: T0 + i / FPS)
    from_old = run_cli("analyze", "--exercise", "squat", str(_write(tmp_path, old, "old.jsonl")))
    from_new = run_cli("analyze", "--exercise", "squat", str(_write(tmp_path, new, "new.jsonl")))
    assert from_old.returncode == 0 and from_new.returncode == 0, from_old.stderr + from_new.stderr
    assert _timeline(from_old.stdout) == _timeline(from_new.stdout)
    old_events = [e for o in _parse(from_old.stdout) for e in o["events"]]  # type: ignore[attr-defined]
    new_events = [e for o in _parse(from_new.stdout) for e in o["events"]]  # type: ignore[attr-defined]
    assert len(old_events) == 4 and not any("media_s" in e for e in old_events)
    assert [e["media_s"] for e in new_events] == [round(e["ts"] - T0, 6) for e in old_events]


def test_without_exercise_reps_stay_zero(tmp_path: Path) -> None:
    proc = run_cli("analyze", str(_write(tmp_path, _squat_session(2))))
    out = _parse(proc.stdout)
    assert all(o["state"]["reps"] == 0 and o["state"]["exercise"] is None for o in out)  # type: ignore[index]
    assert not any(e["type"] == "rep" for o in out for e in o["events"])  # type: ignore[attr-defined]


def test_fall_and_recovery(tmp_path: Path) -> None:
    angle = segments((3.0, 0.0, 0.0), (0.6, 0.0, 88.0), (4.0, 88.0, 88.0), (2.5, 88.0, 0.0), (3.0, 0.0, 0.0))
    lines = _lines(topple(angle(i / FPS)) for i in range(round(13.1 * FPS)))
    out = _parse(run_cli("analyze", str(_write(tmp_path, lines))).stdout)
    events = [e for o in out for e in o["events"]]  # type: ignore[attr-defined]
    assert [e["type"] for e in events] == ["person_entered", "fall", "recovered"]
    assert 0.0 <= events[1]["confidence"] <= 1.0
    fallen = [o["state"]["fallen"] for o in out]  # type: ignore[index]
    assert fallen.index(True) == next(i for i, o in enumerate(out) if any(e["type"] == "fall" for e in o["events"]))


def test_config_file_and_smoothing_flag(tmp_path: Path) -> None:
    config = tmp_path / "edgepose.toml"
    config.write_text('[analytics]\nexercise = "squat"\nleave_s = 1.0\n\n[smoothing]\nmin_cutoff = 0.5\n')
    lines = _squat_session(2)
    proc = run_cli("analyze", "--config", str(config), "--smoothing", "on", str(_write(tmp_path, lines)))
    assert proc.returncode == 0, proc.stderr
    out = _parse(proc.stdout)
    events = [(i, e) for i, o in enumerate(out) for e in o["events"]]  # type: ignore[attr-defined]
    assert [e["type"] for _, e in events] == ["person_entered", "rep", "rep", "person_left"]
    left_at = events[-1][0]
    assert abs(left_at - (len(lines) - 3 * FPS + FPS)) <= 3  # leave_s = 1 s after the person went


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a pose object"),
        ('{"width": 640, "height": 480, "keypoints": []}', "missing 'ts'"),
        ('{"ts": 1.0, "width": 640, "height": 480, "keypoints": [1, 2]}', "list of 17 keypoints"),
        ('{"ts": NaN, "width": 640, "height": 480, "keypoints": []}', "'ts' must be a finite number"),
        ('{"ts": 1.0, "media_s": "0.5", "width": 640, "height": 480, "keypoints": []}', "'media_s' must be a finite"),
        ('{"ts": 1.0, "width": 0, "height": 480, "keypoints": []}', "'width' must be a positive whole number"),
    ],
)
def test_invalid_line_is_one_error_naming_the_line(tmp_path: Path, bad: str, needle: str) -> None:
    lines = _squat_session(1)[:5]
    lines[2] = bad
    proc = run_cli("analyze", str(_write(tmp_path, lines)))
    assert_one_line_error(proc, 2, "line 3")
    assert needle.lower() in proc.stderr.lower(), proc.stderr
    assert len(proc.stdout.splitlines()) == 2  # the good lines before it were answered


def test_bad_keypoint_is_named(tmp_path: Path) -> None:
    lines = _squat_session(1)[:3]
    obj = json.loads(lines[1])
    obj["keypoints"][7]["y"] = "high"
    lines[1] = json.dumps(obj)
    proc = run_cli("analyze", str(_write(tmp_path, lines)))
    assert_one_line_error(proc, 2, "line 2: keypoint 'left_elbow'")


@pytest.mark.slow
def test_missing_file_and_bad_config(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("analyze", str(tmp_path / "gone.jsonl")), 2, "cannot read")
    config = tmp_path / "bad.toml"
    config.write_text("[analytics]\nenter_s = -1.0\n")
    proc = run_cli("analyze", "--config", str(config), str(_write(tmp_path, _squat_session(1))))
    assert_one_line_error(proc, 2, "analytics.enter_s")
    assert_one_line_error(run_cli("analyze", "--exercise", "burpee", "-", input=""), 2, "burpee")


def test_blank_lines_are_skipped_and_empty_input_is_fine(tmp_path: Path) -> None:
    lines = _squat_session(1)[:4]
    proc = run_cli("analyze", "-", input="\n".join([lines[0], "", lines[1], "   "]) + "\n")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2
    empty = run_cli("analyze", "-", input="")
    assert empty.returncode == 0 and empty.stdout == ""


@pytest.mark.slow
def test_run_smoothing_flag_and_still_images(models_dir: Path, testdata: Path, tmp_path: Path) -> None:
    """run smooths video by default (--smoothing off leaves the keypoints raw); a still image is judged alone."""
    import cv2
    from clips import default_script, write_clip

    person = np.ascontiguousarray(cv2.imread(str(testdata / "woman_standing.png"))[:, :, :3])
    clip = write_clip(tmp_path / "walk.avi", person, default_script()[:16])
    outputs = {}
    for mode in ("auto", "off"):
        out = tmp_path / f"{mode}.jsonl"
        proc = run_cli("run", "--source", str(clip), "--smoothing", mode, "--output", str(out),
                       "--models-dir", str(models_dir))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        outputs[mode] = [np.array([[k["x"], k["y"]] for k in json.loads(line)["keypoints"]])
                         for line in out.read_text().splitlines()]  # fmt: skip
    smoothed, raw = outputs["auto"], outputs["off"]
    assert np.array_equal(smoothed[0], raw[0])  # the first frame passes unchanged
    moved = [float(np.abs(s - r).max()) for s, r in zip(smoothed[1:], raw[1:], strict=True)]
    assert max(moved) > 0.5, moved  # the filter acts on a walking person ...
    assert max(moved) < 15.0, moved  # ... without dragging it behind (MoveNet's own, light setting)
    still = run_cli("run", "--source", str(testdata / "woman_standing.png"), "--models-dir", str(models_dir))
    assert still.returncode == 0, still.stderr
    (line,) = still.stdout.splitlines()
    record = json.loads(line)
    assert record["state"]["present"] is True and [e["type"] for e in record["events"]] == ["person_entered"]


def test_a_reader_that_goes_away_ends_it_quietly(tmp_path: Path) -> None:
    """``analyze … | head -1``: exit 0 and no error once the reader has closed the pipe."""
    import subprocess
    import sys

    from conftest import cli_env

    path = _write(tmp_path, _squat_session(3) * 40)
    proc = subprocess.Popen([sys.executable, "-m", "edgepose", "analyze", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=cli_env())  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert json.loads(first)["state"]["present"] is False
    assert "error" not in err and "Traceback" not in err


def test_lines_with_poses_are_several_people_tracked_as_run_does(tmp_path: Path) -> None:
    """``poses`` (several people, in any order) without a top-level ``keypoints``: each gets an id and a state."""
    rng = np.random.default_rng(2)
    lines = []
    for i in range(round(3 * FPS)):
        people = [noisy(squat(175.0, x), rng, Noise()) for x in ((120.0, 480.0) if i % 2 else (480.0, 120.0))]
        poses = [{"score": 0.7, "keypoints": PoseResult(0, 0, WIDTH, HEIGHT, k).to_dict()["keypoints"]} for k in people]
        lines.append(json.dumps({"ts": T0 + i / FPS, "width": WIDTH, "height": HEIGHT, "poses": poses}))
    proc = run_cli("analyze", str(_write(tmp_path, lines)))
    assert proc.returncode == 0, proc.stderr
    out = _parse(proc.stdout)
    entered = [(e["type"], e["person"]) for o in out for e in o["events"]]  # type: ignore[attr-defined]
    assert entered == [("person_entered", 1), ("person_entered", 2)]
    by_side = {}
    for o in out[20:]:
        assert [p["id"] for p in o["state"]["people"]] == [1, 2]  # type: ignore[index]
        for pose in o["poses"]:  # type: ignore[attr-defined]
            side = sorted(k["x"] for k in pose["keypoints"])[8] < 300  # the median: dropped keypoints stray
            assert by_side.setdefault(pose["id"], side) == side
    assert len(by_side) == 2


@pytest.mark.parametrize(
    ("poses", "needle"),
    [('"one"', "'poses' must be a list"), ("[1]", "pose 1 is not an object"),
     ('[{"score": 0.5, "keypoints": [1]}]', "line 2: pose 1: 'keypoints' must be a list of 17")],
)  # fmt: skip
def test_bad_poses_are_named(tmp_path: Path, poses: str, needle: str) -> None:
    lines = _squat_session(1)[:3]
    lines[1] = '{"ts": 1.0, "width": 640, "height": 480, "poses": ' + poses + "}"
    assert_one_line_error(run_cli("analyze", str(_write(tmp_path, lines))), 2, needle)
