"""Several people downstream of the estimator: the people count in stats and over MQTT (a real mosquitto)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from broker import Broker, Subscriber, retained
from conftest import MIRROR, eventually, model_args, run_cli
from test_posenet_cli import assert_multi_person_schema

from edgepose.health import PipelineStats
from edgepose.pose import Pose, PoseResult


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as b:
        yield b


def _result(scores: list[float]) -> PoseResult:
    keypoints = np.zeros((17, 3), np.float32)
    poses = tuple(Pose.from_keypoints(keypoints, score=s) for s in scores)
    return PoseResult(0, time.time(), 64, 48, keypoints, {"total": 1.0}, None, poses)


def test_stats_count_the_people_scoring_at_least_min_score() -> None:
    stats = PipelineStats(min_score=0.5)
    assert stats.snapshot()["people"] == 0
    stats.record(_result([0.9, 0.7, 0.3]), 0)
    assert stats.people == 2 and stats.snapshot()["people"] == 2
    stats.record(_result([]), 0)
    assert stats.snapshot()["people"] == 0
    single = PoseResult(0, 0.0, 64, 48, np.full((17, 3), 0.6, np.float32))  # MoveNet-style, poses=None
    stats.record(single, 0)
    assert stats.people == 1


@pytest.mark.slow
def test_posenet_over_mqtt_people_count_and_multi_person_pose(
    broker: Broker, posenet_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "1_two.bmp").write_bytes((MIRROR / "posenet" / "test_image.bmp").read_bytes())
    (folder / "2_one.png").write_bytes((MIRROR / "posenet" / "test_image.bmp").read_bytes())
    image = cv2.imread(str(folder / "1_two.bmp"))
    image[:, 320:] = 0  # only the left person is left
    cv2.imwrite(str(folder / "2_one.png"), image)
    cv2.imwrite(str(folder / "3_none.png"), np.zeros_like(image))
    sub = Subscriber(broker.port)
    proc = run_cli("run", "--model", "posenet", "--source", str(folder), "--mqtt", f"mqtt://127.0.0.1:{broker.port}",
                   "--device-id", "room", "--ha-discovery", "--mqtt-max-rate", "1000",  # every still's pose
                   *model_args(posenet_dir))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    base = "edgepose/room"
    assert sub.wait_for(lambda s: s.on(f"{base}/status")[-1:] == [b"offline"] and len(s.on(f"{base}/pose")) >= 3)
    poses = [json.loads(p) for p in sub.on(f"{base}/pose")]
    for pose in poses:
        assert_multi_person_schema(pose)
    assert [len(p["poses"]) for p in poses] == [2, 1, 0]
    counts = [p.decode() for p in sub.on(f"{base}/people")]
    assert [c for i, c in enumerate(counts) if i == 0 or c != counts[i - 1]] == ["2", "1", "0"]
    discovery = json.loads(sub.on("homeassistant/sensor/edgepose_room/people/config")[-1])
    assert discovery["state_topic"] == f"{base}/people" and discovery["state_class"] == "measurement"
    sub.close()
    assert retained(broker.port, f"{base}/people") == b"0"
    assert json.loads(retained(broker.port, f"{base}/stats") or b"{}")["people"] == 0


@pytest.mark.slow
def test_preview_draws_each_person_in_their_own_colour(posenet_dir: Path, tmp_path: Path) -> None:
    from test_preview import Run, free_port, metrics, open_stream, pose, read_parts, wait_until

    from edgepose.sinks.drawing import PERSON_COLORS

    image = cv2.imread(str(MIRROR / "posenet" / "test_image.bmp"))
    clip = tmp_path / "two.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, image.shape[1::-1])
    for _ in range(200):
        writer.write(image)
    writer.release()
    port = free_port()
    run = Run(tmp_path, "--model", "posenet", "--source", str(clip), "--realtime", "--preview", f"127.0.0.1:{port}",
              "--preview-mode", "skeleton", *model_args(posenet_dir))  # fmt: skip
    try:
        wait_until(run, port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(pose(port).get("poses", [])) != 2:
            time.sleep(0.2)
        assert len(pose(port)["poses"]) == 2
        assert eventually(lambda: metrics(port)["edgepose_people"] == 2)  # once both have entered (enter_s)
        assert sorted(p["id"] for p in pose(port)["poses"]) == [1, 2]
        sock, body = open_stream(port)
        (jpeg,) = read_parts(body, 1)
        body.close()
        sock.close()
        picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).astype(int)
        for colour in PERSON_COLORS[:2]:  # cyan and magenta edges; joints are red to green
            near = (np.abs(picture - np.array(colour)).max(axis=2) < 40).sum()
            assert near > 200, (colour, near)
    finally:
        assert run.stop() == 0
