"""Snapshots of events: a fall (the real photo falling, the real model, a real mosquitto) gives one JPEG on
``<base>/snapshot``, in the folder and on the preview; its pixels in each privacy mode are checked against the
source frame; the folder's caps, a folder that cannot be written, the snapshot thread that never holds up the
loop, and the Home Assistant ``image`` and ``button`` discovery configs field by field.
"""

from __future__ import annotations

import http.client
import json
import logging
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from broker import Broker, Subscriber, retained
from browser import DevTools, needs_chromium
from clips import BACKGROUND, write_fall_clip
from conftest import ROOT, eventually, model_args, run_cli

from edgepose.config import Config, ModelConfig, MqttConfig, PreviewConfig, SnapshotConfig
from edgepose.health import PipelineStats
from edgepose.pose import KEYPOINT_INDEX, BackendInfo, PoseResult
from edgepose.sinks.drawing import CANVAS_COLOR, EDGE_COLOR, render
from edgepose.sinks.mqtt.homeassistant import discovery_configs
from edgepose.sinks.mqtt.topics import Topics
from edgepose.sinks.snapshot import sink as snapshot_module
from edgepose.sinks.snapshot.folder import SnapshotFolder, file_name
from edgepose.sinks.snapshot.sink import Snapshot, SnapshotSink, attach_snapshots

INFO = BackendInfo("ai_edge_litert", "xnnpack", 2, "m.tflite")
MIN_SCORE = ModelConfig.min_score


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with Broker(tmp_path / "broker") as b:
        yield b


@pytest.fixture(scope="module")
def fall_clip(tmp_path_factory: pytest.TempPathFactory, testdata: Path) -> Path:
    """The woman_standing photo (its alpha as the mask) standing, falling, lying, getting up and leaving."""
    person = cv2.imread(str(testdata / "woman_standing.png"), cv2.IMREAD_UNCHANGED)
    return write_fall_clip(tmp_path_factory.mktemp("fall") / "fall.avi", person)


@pytest.fixture(scope="module")
def photo(testdata: Path, models_dir: Path) -> PoseResult:
    """The standing photo on a detailed background (8 px checks), with the real model's pose of it."""
    from edgepose.inference.factory import open_estimator

    rgba = cv2.imread(str(testdata / "woman_standing.png"), cv2.IMREAD_UNCHANGED)
    height, width = rgba.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width]
    checks = np.where((((yy // 8) + (xx // 8)) % 2 == 0)[..., None], (70, 90, 80), (150, 170, 160))
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    frame = np.ascontiguousarray((rgba[:, :, :3] * alpha + checks * (1 - alpha)).round().astype(np.uint8))
    estimator = open_estimator(ModelConfig(models_dir=str(models_dir)))
    try:
        keypoints = estimator.still(frame).keypoints
    finally:
        estimator.close()
    assert keypoints[:, 2].mean() > 0.4, "the model sees her"
    return PoseResult(7, 1_800_000_000.25, width, height, keypoints, {}, frame)


def fall_event(frame: int = 3, kind: str = "fall") -> PoseResult:
    """A small result whose events include ``kind``."""
    image = np.full((48, 64, 3), 90, np.uint8)
    keypoints = np.tile(np.array([[20.0, 20.0, 0.9]], np.float32), (17, 1))
    return PoseResult(frame, 1_800_000_000.0 + frame, 64, 48, keypoints, {}, image, state={"fallen": True},
                      events=({"type": kind, "ts": 1.0, "confidence": 0.9},))  # fmt: skip


def plain(frame: int = 1) -> PoseResult:
    """A result with no event."""
    return PoseResult(frame, 1_800_000_000.0 + frame, 64, 48, fall_event().keypoints, {}, fall_event().image)


class Viewer:
    """Collects the snapshots handed to it."""

    def __init__(self) -> None:
        self.got: list[Snapshot] = []

    def __call__(self, snapshot: Snapshot) -> None:
        self.got.append(snapshot)


def snapshot_sink(mode: str = "skeleton", **cfg: Any) -> tuple[SnapshotSink, Viewer]:
    sink = SnapshotSink(SnapshotConfig(mode=mode, **cfg), MIN_SCORE)
    viewer = Viewer()
    sink.subscribe(viewer)
    sink.start()
    return sink, viewer


def snap_of(result: PoseResult, mode: str) -> np.ndarray:
    """The snapshot the sink makes of ``result`` on request, decoded (BGR, int)."""
    sink, viewer = snapshot_sink(mode)
    try:
        sink.request()
        sink.publish(result)
        assert eventually(lambda: len(viewer.got) == 1, 10)
    finally:
        sink.close()
    snapshot = viewer.got[0]
    assert (snapshot.reason, snapshot.frame, snapshot.mode) == ("request", result.frame, mode)
    return decode(snapshot.jpeg)


def decode(jpeg: bytes) -> np.ndarray:
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None, "a JPEG"
    return picture.astype(np.int32)


def strokes_of(result: PoseResult, grow: int = 7) -> np.ndarray:
    """Where the skeleton is drawn (from the keypoints alone, on a blank canvas), grown by ``grow`` px."""
    blank = PoseResult(result.frame, result.ts, result.width, result.height, result.keypoints)
    drawn = (render(blank, "skeleton", MIN_SCORE) != CANVAS_COLOR).any(axis=2).astype(np.uint8)
    return cv2.dilate(drawn, np.ones((grow, grow), np.uint8)) > 0


def equal_blocks(
    a: np.ndarray, b: np.ndarray, where: np.ndarray, size: int = 8, min_std: float = 0.0
) -> tuple[int, int]:
    """``(blocks equal, blocks compared)``: ``size``² blocks with a quarter of their pixels in ``where`` (and
    those of ``b`` varying by ``min_std`` grey levels), equal when those pixels differ by less than 10 levels
    on average."""
    equal = compared = 0
    height, width = where.shape
    b_grey = grey(b)
    for y in range(0, height - size + 1, size):
        for x in range(0, width - size + 1, size):
            m = where[y : y + size, x : x + size]
            if m.sum() < size * size // 4 or b_grey[y : y + size, x : x + size][m].std() < min_std:
                continue
            compared += 1
            equal += bool(np.abs(a[y : y + size, x : x + size][m] - b[y : y + size, x : x + size][m]).mean() < 10)
    return equal, compared


def grey(picture: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(picture.astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float64)


def detail(picture: np.ndarray, where: np.ndarray) -> float:
    """Mean absolute Laplacian (fine detail) of the picture over ``where``."""
    return float(np.abs(cv2.Laplacian(grey(picture), cv2.CV_64F))[where].mean())


def clip_frame(clip: Path, index: int) -> np.ndarray:
    """Frame ``index`` of the clip as OpenCV decodes it (as ``run`` did)."""
    cap = cv2.VideoCapture(str(clip))
    try:
        for _ in range(index + 1):
            ok, frame = cap.read()
            assert ok, index
    finally:
        cap.release()
    return np.asarray(frame)


def result_of_line(line: dict[str, Any], image: np.ndarray | None = None) -> PoseResult:
    keypoints = np.array([[k["x"], k["y"], k["score"]] for k in line["keypoints"]], np.float32)
    return PoseResult(line["frame"], line["ts"], line["width"], line["height"], keypoints, {}, image)


# --- the fall, end to end --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_fall_gives_one_skeleton_snapshot_with_no_part_of_the_frame(
    broker: Broker, fall_clip: Path, models_dir: Path, tmp_path: Path
) -> None:
    base = "edgepose/snap"
    sub = Subscriber(broker.port, (f"{base}/#", "homeassistant/#"))
    out, folder = tmp_path / "poses.jsonl", tmp_path / "snapshots"
    proc = run_cli("run", "--source", str(fall_clip), "--mqtt", f"mqtt://127.0.0.1:{broker.port}", "--device-id",
                   "snap", "--ha-discovery", "--snapshot-folder", str(folder), "--output", str(out),
                   *model_args(models_dir))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sub.wait_for(lambda s: s.on(f"{base}/status")[-1:] == [b"offline"])
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    falls = [line for line in lines for e in line["events"] if e["type"] == "fall"]
    assert len(falls) == 1, [e for line in lines for e in line["events"]]
    fall = falls[0]

    # one snapshot, of the fall's frame: on MQTT (retained), in the folder, the same bytes
    sent = sub.on(f"{base}/snapshot")
    assert len(sent) == 1, "one snapshot for one fall"
    jpeg = sent[0]
    assert retained(broker.port, f"{base}/snapshot") == jpeg, "retained: Home Assistant gets it after a restart"
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [file_name(fall["ts"], fall["frame"], "fall")]
    assert files[0].read_bytes() == jpeg
    assert f"snapshot 1: frame {fall['frame']}, fall" in proc.stderr
    image = json.loads(sub.on("homeassistant/image/edgepose_snap/snapshot/config")[-1])
    assert image["image_topic"] == f"{base}/snapshot"
    sub.close()

    # its pixels: the skeleton on the blank canvas, nothing of the frame
    snap = decode(jpeg)
    frame = clip_frame(fall_clip, fall["frame"])
    assert snap.shape == frame.shape == (240, 320, 3)
    frame_i = frame.astype(np.int32)
    result = result_of_line(fall)
    near = strokes_of(result)
    off = np.abs(snap[~near] - np.array(CANVAS_COLOR)).max(axis=1)
    assert off.mean() < 2 and np.percentile(off, 99) <= 8, "away from the skeleton: the blank canvas"
    person = np.abs(frame_i - np.array(BACKGROUND)).sum(axis=2) > 40
    assert person.sum() > 2000, "she is in the frame"
    free = person & ~near  # her pixels that the skeleton does not cover
    equal, compared = equal_blocks(snap, frame_i, free)
    assert compared >= 10 and equal == 0, (equal, compared)
    r = np.corrcoef(grey(snap)[person], grey(frame_i)[person])[0, 1]
    assert abs(r) < 0.25, r
    assert grey(snap)[free].std() < 4, "flat where she is and the skeleton is not"
    # the same checks see the frame in the full picture of the same result: they can fail
    full = decode(cv2.imencode(".jpg", render(result_of_line(fall, frame), "video", MIN_SCORE))[1].tobytes())
    equal_full, _ = equal_blocks(full, frame_i, free)
    assert equal_full == compared
    assert np.corrcoef(grey(full)[free], grey(frame_i)[free])[0, 1] > 0.9


# --- the privacy modes -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_three_modes_show_what_they_say(photo: PoseResult) -> None:
    assert photo.image is not None
    frame = photo.image.astype(np.int32)
    near = strokes_of(photo)
    everywhere = np.ones(near.shape, bool)
    nose, eye = photo.keypoints[KEYPOINT_INDEX["nose"]], photo.keypoints[KEYPOINT_INDEX["left_eye"]]
    span = max(12, round(3 * abs(float(nose[1] - eye[1]) + abs(float(nose[0] - eye[0])))))
    face = np.zeros(near.shape, bool)
    face[int(nose[1]) - span : int(nose[1]) + span, int(nose[0]) - span : int(nose[0]) + span] = True

    full = snap_of(photo, "full")
    equal, compared = equal_blocks(full, frame, everywhere & ~near)
    assert compared > 1000 and equal >= 0.97 * compared, (equal, compared)
    shoulder, hip = photo.keypoints[KEYPOINT_INDEX["left_shoulder"]], photo.keypoints[KEYPOINT_INDEX["left_hip"]]
    x, y = (round(float(shoulder[0] + hip[0]) / 2), round(float(shoulder[1] + hip[1]) / 2))
    assert np.abs(full[y, x] - np.array(EDGE_COLOR)).max() < 40, "the skeleton is drawn on it"

    blurred = snap_of(photo, "blurred")
    equal, compared = equal_blocks(blurred, frame, ~near, min_std=20)  # textured: a smooth picture cannot pass
    assert compared > 200 and equal == 0, (equal, compared)
    assert detail(blurred, ~near) < 0.05 * detail(frame, ~near), "no detail left"
    assert detail(blurred, face & ~near) < 0.1 * detail(frame, face & ~near), "no face"
    small = (photo.width // 32, photo.height // 32)
    coarse = np.abs(cv2.resize(blurred.astype(np.uint8), small, interpolation=cv2.INTER_AREA).astype(np.int32)
                    - cv2.resize(photo.image, small, interpolation=cv2.INTER_AREA).astype(np.int32))  # fmt: skip
    assert coarse.mean() < 12, "still the picture, seen from far away"

    skeleton = snap_of(photo, "skeleton")
    off = np.abs(skeleton[~near] - np.array(CANVAS_COLOR)).max(axis=1)
    assert off.mean() < 2 and np.percentile(off, 99) <= 8
    assert equal_blocks(skeleton, frame, ~near, min_std=20)[0] == 0
    assert np.abs(skeleton[y, x] - np.array(EDGE_COLOR)).max() < 40


# --- triggers and the thread -------------------------------------------------------------------------------


def test_falls_long_lies_and_requests_each_take_one_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    sink, viewer = snapshot_sink()
    try:
        sink.publish(plain(1))
        sink.publish(fall_event(2, "recovered"))
        sink.publish(fall_event(3, "fall"))
        assert eventually(lambda: len(viewer.got) == 1, 10)
        sink.publish(fall_event(4, "long_lie"))
        assert eventually(lambda: len(viewer.got) == 2, 10)
        sink.request()
        sink.request()  # two requests before a frame: one snapshot
        sink.publish(plain(5))
        sink.publish(plain(6))
        assert eventually(lambda: len(viewer.got) == 3, 10)
        sink.request()
        sink.publish(fall_event(7))  # the fall's snapshot answers the request too
        sink.publish(plain(8))
        assert eventually(lambda: len(viewer.got) == 4, 10)
        monkeypatch.setattr(snapshot_module, "REQUEST_WAIT_S", -1.0)  # every request is too old
        sink.request()
        sink.publish(plain(9))
        sink.publish(plain(10))
    finally:
        sink.close()
    assert [(s.seq, s.frame, s.reason) for s in viewer.got] == [
        (1, 3, "fall"), (2, 4, "long_lie"), (3, 5, "request"), (4, 7, "fall")]  # fmt: skip
    assert sink.latest is viewer.got[-1]
    assert (sink.counters.made, sink.counters.expired, sink.counters.replaced) == (4, 1, 0)


def test_publish_never_waits_for_the_picture() -> None:
    entered, release = threading.Event(), threading.Event()
    sink, viewer = snapshot_sink()

    def stuck(snapshot: Snapshot) -> None:  # a viewer (or a disk) that hangs
        entered.set()
        release.wait(30)

    sink.subscribe(stuck)
    try:
        sink.publish(fall_event(0))
        assert entered.wait(10)
        publisher = threading.Thread(target=lambda: [sink.publish(fall_event(i)) for i in range(1, 50)])
        publisher.start()
        publisher.join(10)
        assert not publisher.is_alive(), "the loop went on while the snapshot thread was stuck"
        assert sink.counters.replaced == 48, "newest wins: one waits, the others were replaced"
        release.set()
        assert eventually(lambda: len(viewer.got) == 2, 10)
    finally:
        release.set()
        sink.close()
    assert [s.frame for s in viewer.got] == [0, 49]


# --- the folder ----------------------------------------------------------------------------------------------


def test_the_folder_keeps_the_newest_within_its_caps(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "holiday.jpg").write_bytes(b"x" * 5000)
    folder = SnapshotFolder(tmp_path, max_files=3, max_bytes=10_000)
    names = [file_name(1_800_000_000.0 + i, i, "fall") for i in range(5)]
    for name in names:
        assert folder.save(b"j" * 1000, name) == tmp_path / name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names[2:], "notes.txt", "holiday.jpg"])
    assert (folder.saved, folder.removed, folder.errors) == (5, 2, 0)
    assert not list(tmp_path.glob(".*")), "no partial files"

    by_size = SnapshotFolder(tmp_path, max_files=100, max_bytes=2500)
    big = file_name(1_800_000_100.0, 100, "request")
    by_size.save(b"j" * 1500, big)
    assert sorted(p.name for p in tmp_path.glob("2*Z-*.jpg")) == [names[4], big], "1000 + 1500 bytes fit in 2500"
    bigger = file_name(1_800_000_200.0, 200, "long_lie")
    by_size.save(b"j" * 4000, bigger)
    assert [p.name for p in tmp_path.glob("2*Z-*.jpg")] == [bigger], "the newest stays, even alone over the cap"
    assert (tmp_path / "holiday.jpg").exists() and (tmp_path / "notes.txt").exists(), "other files left alone"


def test_a_folder_that_cannot_be_written_is_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    sink, viewer = snapshot_sink(folder=str(blocker / "snapshots"))
    caplog.set_level(logging.INFO, logger="edgepose.sinks.snapshot.folder")
    try:
        for i in range(3):
            sink.publish(fall_event(i))
            assert eventually(lambda i=i: len(viewer.got) == i + 1, 10), "the viewers still get every snapshot"
        assert sink.folder is not None and eventually(lambda: sink.folder is not None and sink.folder.errors == 3)
        blocker.unlink()  # the folder can be made now
        sink.publish(fall_event(3))
        assert eventually(lambda: sink.folder is not None and sink.folder.saved == 1, 10)
    finally:
        sink.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot keep snapshots" in warnings[0].getMessage(), caplog.text
    assert any("again after 3 failure(s)" in r.getMessage() for r in caplog.records)
    assert [p.name for p in (blocker / "snapshots").iterdir()] == [file_name(fall_event(3).ts, 3, "fall")]


def test_a_full_disk_is_one_warning_and_leaves_no_partial_file(tmp_path: Path) -> None:
    # The file size limit makes every write beyond 1000 bytes fail as a full disk does, mid-write
    # (Python ignores SIGXFSZ, so the write returns EFBIG).
    script = textwrap.dedent(f"""
        import json, logging, resource
        from pathlib import Path
        from edgepose.sinks.snapshot.folder import SnapshotFolder
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        folder = SnapshotFolder(Path({str(tmp_path / "snaps")!r}), 10, 10**6)
        small = folder.save(b"j" * 500, "20270101T000000.000Z-f1-fall.jpg")
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        big = [folder.save(b"j" * 5000, f"20270101T00000{{i}}.000Z-f{{i}}-fall.jpg") for i in (2, 3, 4)]
        print(json.dumps({{"small": str(small), "big": [str(b) for b in big], "errors": folder.errors}}))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout)
    assert outcome == {"small": str(tmp_path / "snaps" / "20270101T000000.000Z-f1-fall.jpg"),
                       "big": ["None"] * 3, "errors": 3}  # fmt: skip
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 1 and "File too large" in warnings[0], proc.stderr
    assert [p.name for p in (tmp_path / "snaps").iterdir()] == ["20270101T000000.000Z-f1-fall.jpg"]


# --- Home Assistant -------------------------------------------------------------------------------------------

#: Every option of Home Assistant's MQTT image (its "MQTT Image" integration page), and ``origin`` (the
#: discovery payload's origin, from the MQTT discovery page).
IMAGE_OPTIONS = {
    "availability", "availability_mode", "availability_template", "availability_topic", "content_type", "device",
    "enabled_by_default", "encoding", "entity_category", "icon", "image_encoding", "image_topic",
    "json_attributes_template", "json_attributes_topic", "name", "object_id", "unique_id", "url_template",
    "url_topic", "origin",
}  # fmt: skip
#: Every option of Home Assistant's MQTT button (its "MQTT Button" integration page), and ``origin``.
BUTTON_OPTIONS = {
    "availability", "availability_mode", "availability_template", "availability_topic", "command_template",
    "command_topic", "device", "device_class", "enabled_by_default", "encoding", "entity_category", "icon",
    "json_attributes_template", "json_attributes_topic", "name", "object_id", "payload_available",
    "payload_not_available", "payload_press", "qos", "retain", "unique_id", "origin",
}  # fmt: skip


def test_discovery_announces_the_snapshot_image_and_button_as_home_assistant_documents() -> None:
    topics = Topics("edgepose", "cam1")
    without = dict(discovery_configs(topics, INFO, 30.0))
    configs = {t: json.loads(p) for t, p in discovery_configs(topics, INFO, 30.0, snapshots=True)}
    assert set(configs) - set(without) == {"homeassistant/image/edgepose_cam1/snapshot/config",
                                           "homeassistant/button/edgepose_cam1/snapshot_button/config"}  # fmt: skip
    image = configs["homeassistant/image/edgepose_cam1/snapshot/config"]
    assert set(image) <= IMAGE_OPTIONS, set(image) - IMAGE_OPTIONS
    assert image["image_topic"] == "edgepose/cam1/snapshot"  # raw image bytes arrive here
    assert "url_topic" not in image and "url_template" not in image, "url_topic excludes image_topic"
    assert image["content_type"] == "image/jpeg"  # what the payload is (the docs: set it to match image_topic)
    assert "image_encoding" not in image, "unset: the payload is raw binary data (b64 would need base64)"
    assert "encoding" not in image, "the image topic is read as bytes whatever encoding says"
    button = configs["homeassistant/button/edgepose_cam1/snapshot_button/config"]
    assert set(button) <= BUTTON_OPTIONS, set(button) - BUTTON_OPTIONS
    assert button["command_topic"] == "edgepose/cam1/set/snapshot"
    assert button["payload_press"] == "PRESS" and button["qos"] == 1
    assert button["retain"] is False, "a retained press would take a snapshot at every reconnect"
    assert "device_class" not in button, "none of identify, restart, update fits"
    for entity in (image, button):
        assert entity["name"] == "Snapshot" and entity["availability"] == [
            {"topic": "edgepose/cam1/status", "payload_available": "online", "payload_not_available": "offline"}
        ]
        assert entity["device"]["identifiers"] == ["edgepose_cam1"] and entity["origin"]["name"] == "edgepose"
    unique = [c["unique_id"] for c in configs.values()]
    assert len(unique) == len(set(unique)) == 9
    assert {image["unique_id"], button["unique_id"]} == {"edgepose_cam1_snapshot", "edgepose_cam1_snapshot_button"}


@pytest.mark.slow
def test_a_requested_snapshot_is_published_retained_and_announced(broker: Broker, tmp_path: Path) -> None:
    from edgepose.sinks.mqtt.client import MqttSink

    base = "edgepose/cam5"
    sub = Subscriber(broker.port, (f"{base}/snapshot", "homeassistant/#"))
    stats = PipelineStats(MIN_SCORE)
    cfg = MqttConfig(url=f"mqtt://127.0.0.1:{broker.port}", device_id="cam5", ha_discovery=True)
    snapshots = SnapshotSink(SnapshotConfig(), MIN_SCORE)
    mqtt = MqttSink(cfg, stats, INFO, MIN_SCORE, environ={})
    built: list[Any] = []
    for sink in (snapshots, mqtt):  # as `run` builds and starts them
        attach_snapshots(built, sink)
        sink.start()
        built.append(sink)
    try:
        assert mqtt.snapshots is snapshots, "the button's command reaches request() through the MQTT sink"
        assert sub.wait_for(lambda s: bool(s.on("homeassistant/button/edgepose_cam5/snapshot_button/config")))
        sink_result = plain(41)
        mqtt.snapshots.request()  # what the dispatcher does for PRESS on <base>/set/snapshot
        for sink in built:
            sink.publish(sink_result)
        assert sub.wait_for(lambda s: len(s.on(f"{base}/snapshot")) == 1)
    finally:
        for sink in reversed(built):
            sink.close()
    assert snapshots.latest is not None and sub.on(f"{base}/snapshot") == [snapshots.latest.jpeg]
    assert retained(broker.port, f"{base}/snapshot") == snapshots.latest.jpeg
    sub.close()


# --- the preview -----------------------------------------------------------------------------------------------


def _get(address: tuple[str, int], path: str) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read()
    finally:
        conn.close()


def _preview_with(snapshot_mode: str, preview_mode: str) -> tuple[SnapshotSink, Any]:
    from edgepose.sinks.preview.sink import PreviewSink

    snapshots = SnapshotSink(SnapshotConfig(mode=snapshot_mode), MIN_SCORE)
    preview = PreviewSink(PreviewConfig(listen="127.0.0.1:0", mode=preview_mode), PipelineStats(MIN_SCORE), INFO,
                          MIN_SCORE, 5.0)  # fmt: skip
    attach_snapshots([snapshots], preview)
    snapshots.start()
    preview.start()
    return snapshots, preview


@pytest.mark.slow
def test_the_preview_serves_the_last_snapshot_over_http() -> None:
    snapshots, preview = _preview_with("skeleton", "video")
    try:
        address = preview.address
        assert address is not None
        assert _get(address, "/snapshot.jpg")[::2] == (404, b"no snapshot yet\n")
        for frame in (1, 2):
            snapshots.request()
            for sink in (snapshots, preview):
                sink.publish(plain(frame))
            assert eventually(lambda f=frame: snapshots.latest is not None and snapshots.latest.frame == f, 10)
        status, content_type, body = _get(address, "/snapshot.jpg")
        assert (status, content_type) == (200, "image/jpeg")
        assert snapshots.latest is not None and body == snapshots.latest.jpeg, "the last one"
        info = json.loads(_get(address, "/pose")[2])["snapshot"]
        assert {k: info[k] for k in ("id", "reason", "frame", "mode")} == {"id": 2, "reason": "request", "frame": 2,
                                                                             "mode": "skeleton"}  # fmt: skip
        page = _get(address, "/")[2].decode()
        assert 'id="snapshot"' in page and "snapshot.jpg" in page
    finally:
        preview.close()
        snapshots.close()


@pytest.mark.slow
@needs_chromium
def test_the_page_shows_the_last_snapshot(tmp_path: Path) -> None:
    snapshots, preview = _preview_with("skeleton", "skeleton")
    try:
        address = preview.address
        assert address is not None
        for sink in (snapshots, preview):
            sink.publish(plain(1))
        browser = DevTools(tmp_path / "chrome")
        try:
            browser.open(f"http://127.0.0.1:{address[1]}/")
            browser.wait_for(
                "document.getElementById('live') !== null && document.getElementById('live').className === 'dot on'"
            )
            assert browser.evaluate("document.getElementById('snapshot-box').hidden") is True, "none yet"
            snapshots.publish(fall_event(2))
            ready = ("!document.getElementById('snapshot-box').hidden && document.getElementById('snapshot').complete"
                     " && document.getElementById('snapshot').naturalWidth > 0")  # fmt: skip
            browser.wait_for(ready)
            shown = browser.evaluate("[document.getElementById('snapshot').naturalWidth, "
                                     "document.getElementById('snapshot').naturalHeight, "
                                     "document.getElementById('snapshot-info').textContent]")  # fmt: skip
        finally:
            browser.close()
    finally:
        preview.close()
        snapshots.close()
    assert shown[:2] == [64, 48] and "fall" in shown[2] and "frame 2" in shown[2], shown


@pytest.mark.slow
def test_the_preview_never_shows_a_snapshot_that_shows_more_than_its_mode() -> None:
    snapshots, preview = _preview_with("full", "skeleton")
    try:
        address = preview.address
        assert address is not None
        snapshots.request()
        for sink in (snapshots, preview):
            sink.publish(plain(1))
        assert eventually(lambda: snapshots.latest is not None, 10)
        status, _, body = _get(address, "/snapshot.jpg")
        assert status == 404 and b"snapshot.mode full shows more than preview.mode skeleton" in body
        assert json.loads(_get(address, "/pose")[2])["snapshot"] is None
    finally:
        preview.close()
        snapshots.close()


def test_snapshots_are_made_only_when_something_shows_or_keeps_them(tmp_path: Path) -> None:
    from edgepose.commands.run import SINKS

    def built(**sections: Any) -> object:
        config = Config(**sections)
        return SINKS["snapshot"](config, PipelineStats(MIN_SCORE), INFO, threading.Event())

    assert next(iter(SINKS)) == "snapshot", "built first: MQTT and the preview are attached to it before they start"
    assert built() is None, "no MQTT, no preview, no folder"
    assert isinstance(built(mqtt=MqttConfig(url="mqtt://127.0.0.1")), SnapshotSink)
    assert isinstance(built(preview=PreviewConfig(listen="127.0.0.1:0")), SnapshotSink)
    assert isinstance(built(snapshot=SnapshotConfig(folder=str(tmp_path))), SnapshotSink)
    assert built(mqtt=MqttConfig(url="mqtt://127.0.0.1"), snapshot=SnapshotConfig(enabled=False)) is None
