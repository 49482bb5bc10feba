"""The HTTP preview, end to end: `edgepose run --preview` as a real subprocess, real HTTP, real Chromium."""

from __future__ import annotations

import http.client
import http.server
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from browser import DevTools, loaded_page, needs_chromium
from conftest import assert_one_line_error, cli_env, model_args, run_cli
from prometheus_client.parser import text_string_to_metric_families

from edgepose.config import PreviewConfig
from edgepose.config.preview_access import is_loopback, parse_listen
from edgepose.errors import ConfigError
from edgepose.health import PipelineStats
from edgepose.pose import SKELETON_EDGES, BackendInfo, PoseResult
from edgepose.sinks.drawing import EDGE_COLOR, score_color
from edgepose.sinks.preview.page import IMAGE_OFFSET
from edgepose.sinks.preview.sink import PreviewSink

BACKGROUND = (128, 128, 128)


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Run:
    """`edgepose run` as a background process with stdout and stderr captured to files."""

    def __init__(self, tmp: Path, *args: str, env: dict[str, str] | None = None, python: str = "-m edgepose") -> None:
        self.out = (tmp / f"run-{id(self)}.out").open("w+")
        self.err = (tmp / f"run-{id(self)}.err").open("w+")
        self.proc = subprocess.Popen([sys.executable, *python.split(" ", 1), "run", *args], stdout=self.out,
                                     stderr=self.err, env=cli_env(env))  # fmt: skip

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stdout(self) -> str:
        self.out.seek(0)
        return self.out.read()

    def stderr(self) -> str:
        self.err.seek(0)
        return self.err.read()


def start(
    runs: list[Run], tmp: Path, *args: str, env: dict[str, str] | None = None, python: str = "-m edgepose"
) -> Run:
    run = Run(tmp, *args, env=env, python=python)
    runs.append(run)
    return run


def get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 5) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_until(run: Run, port: int, path: str = "/healthz", status: int = 200, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        assert run.proc.poll() is None, f"edgepose exited {run.proc.returncode}: {run.stderr()}"
        try:
            code, body = get(port, path, timeout=2)
            if code == status:
                return body
            last = (code, body)
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"{path} never answered {status}: {last}; stderr: {run.stderr()}")


def pose(port: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    code, body = get(port, "/pose", headers)
    assert code == 200, body
    data: dict[str, Any] = json.loads(body)
    return data


def read_parts(sock_file: Any, count: int) -> list[bytes]:
    """Read ``count`` JPEG parts from an open multipart/x-mixed-replace response body."""
    parts = []
    while len(parts) < count:
        line = sock_file.readline()
        assert line, "stream ended"
        if not line.startswith(b"--"):
            continue
        headers = {}
        while (line := sock_file.readline().strip()) != b"":
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        assert headers["content-type"] == "image/jpeg"
        parts.append(sock_file.read(int(headers["content-length"])))
    return parts


def open_stream(port: int, path: str = "/stream.mjpg", rcvbuf: int | None = None) -> tuple[socket.socket, Any]:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock, sock.makefile("rb")


def metrics(port: int) -> dict[str, float]:
    code, body = get(port, "/metrics")
    assert code == 200
    values = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


@pytest.fixture(scope="module")
def person(testdata: Path) -> np.ndarray:
    """woman_standing.png on a grey background, BGR 384×640."""
    rgba = cv2.imread(str(testdata / "woman_standing.png"), cv2.IMREAD_UNCHANGED)
    alpha = rgba[:, :, 3:4].astype(np.float32) / 255.0
    frame = rgba[:, :, :3].astype(np.float32) * alpha + np.array(BACKGROUND, np.float32) * (1 - alpha)
    return np.ascontiguousarray(frame.round().astype(np.uint8))


@pytest.fixture(scope="module")
def clip(person: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20 s clip (15 fps) of the still person: poses settle, so the page and /pose agree."""
    path = tmp_path_factory.mktemp("clip") / "woman.avi"
    height, width = person.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (width, height))
    assert writer.isOpened()
    for _ in range(300):
        writer.write(person)
    writer.release()
    return path


# ---------------------------------------------------------------- pure helpers


def test_parse_listen_and_loopback() -> None:
    assert parse_listen("8080") == ("127.0.0.1", 8080)
    assert parse_listen("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen(":9000") == ("0.0.0.0", 9000)
    assert parse_listen("camera.lan:80") == ("camera.lan", 80) and parse_listen("[fe80::1%eth0]:1")[0] == "fe80::1%eth0"
    for bad in ("127.0.0.1:http", "8080x", "::1:80", "my host:80", "999.1.1.1:80", "[127.0.0.1]:80", "[name]:80",
                "-camera:80", "a..b:80", "127.0.0.1:65536"):  # fmt: skip
        with pytest.raises(ConfigError, match="--preview"):
            parse_listen(bad)
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("camera.lan")


def test_bad_listen_is_a_one_line_error(models_dir: Path) -> None:
    proc = run_cli("run", "--source", "synthetic:64x64", "--preview", "127.0.0.1:http", *model_args(models_dir))
    assert_one_line_error(proc, 2, "--preview")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--preview", "127.0.0.1:http"], "--preview (preview.listen) must be [HOST:]PORT"),
        (["--preview", "my camera:8080"], "HOST an IP address"),
        (["--preview", "0.0.0.0:8080"], "beyond this machine, without a token"),
        (["--preview", "0.0.0.0:8080", "--preview-token-file", "/nonexistent/token"], "cannot read preview token"),
    ],
)
def test_preview_problems_stop_the_run_before_the_model_loads(tmp_path: Path, flags: list[str], needle: str) -> None:
    """Checked with the config: the error names the preview, not the model that was never looked for."""
    missing = tmp_path / "no-models-here"
    proc = run_cli("run", "--source", "synthetic:64x64", "--max-frames", "1", *flags, "--models-dir", str(missing))
    assert_one_line_error(proc, 2, needle)
    assert "model" not in proc.stderr


def test_an_empty_token_file_counts_as_no_token(tmp_path: Path) -> None:
    empty = tmp_path / "token"
    empty.write_text("\n")
    proc = run_cli("run", "--source", "synthetic:64x64", "--preview", "0.0.0.0:8080", "--preview-token-file",
                   str(empty), "--models-dir", str(tmp_path / "none"))  # fmt: skip
    assert_one_line_error(proc, 2, f"preview token file {empty} is empty")


# ---------------------------------------------------------------- the page in a real browser


@needs_chromium
@pytest.mark.slow
def test_page_in_headless_chromium_shows_the_skeleton(
    models_dir: Path, clip: Path, person: np.ndarray, tmp_path: Path, runs: list[Run]
) -> None:
    port = free_port()
    run = start(runs, tmp_path, "--source", str(clip), "--realtime", "--preview", str(port), "--output", "-",
                *model_args(models_dir))  # fmt: skip
    wait_until(run, port)
    shot = tmp_path / "shot.png"
    ready = ("document.getElementById('delegate').textContent !== '–'"
             " && document.getElementById('fps').textContent !== '–'"
             " && document.getElementById('keypoints').rows.length > 17"
             " && document.getElementById('video').naturalWidth > 0")  # fmt: skip
    dom = loaded_page(f"http://127.0.0.1:{port}/", shot, tmp_path / "chrome", ready)
    assert run.proc.poll() is None, run.stderr()
    assert run.stop() == 0

    # The page filled in its tables from /events: fps, delegate, model, the 17 keypoint rows.
    assert 'id="delegate">xnnpack<' in dom or 'id="delegate">cpu<' in dom, dom[:3000]
    assert "movenet_single_pose_lightning_ptq.tflite" in dom
    assert 'id="fps">–<' not in dom
    for name in ("nose", "left_ankle", "right_wrist"):
        assert f"<td>{name}</td>" in dom

    # The picture sits at its natural size at IMAGE_OFFSET; the joints of the frame it shows land where that
    # frame's result says, in their score colour. (MoveNet's crop tracker moves joints a few pixels from frame
    # to frame even on a still clip, so the shown frame is the result that best explains the screenshot.)
    image = cv2.imread(str(shot))
    assert image is not None
    ox, oy = IMAGE_OFFSET
    height, width = person.shape[:2]
    results = [json.loads(line) for line in run.stdout().splitlines()]
    assert results

    def joint_hits(points: np.ndarray, picture: np.ndarray, offset: tuple[int, int]) -> int:
        hits = 0
        for x, y, s in points:
            cx, cy = round(x) + offset[0], round(y) + offset[1]
            patch = picture[cy - 1 : cy + 2, cx - 1 : cx + 2].reshape(-1, 3).astype(int)
            hits += int(np.abs(patch - np.array(score_color(s))).max(axis=1).min() < 70)
        return hits

    candidates = [np.array([[k["x"], k["y"], k["score"]] for k in r["keypoints"]]) for r in results]
    candidates = [c[c[:, 2] >= 0.4] for c in candidates]
    best = max(range(len(candidates)), key=lambda i: joint_hits(candidates[i], image, (ox, oy)))
    confident = candidates[best]
    assert len(confident) >= 12, confident
    hits = joint_hits(confident, image, (ox, oy))
    assert hits >= len(confident) - 1, f"{hits} of {len(confident)} joints drawn in their colour"
    assert joint_hits(confident, person, (0, 0)) <= 2, "control: the photo itself lacks those colours there"
    points = np.array([[k["x"], k["y"], k["score"]] for k in results[best]["keypoints"]])
    edge_hits = 0
    checked = 0
    for a, b in SKELETON_EDGES:
        if points[a, 2] >= 0.4 and points[b, 2] >= 0.4 and np.hypot(*(points[a, :2] - points[b, :2])) > 40:
            checked += 1
            mx, my = (points[a, :2] + points[b, :2]) / 2
            cx, cy = round(mx) + ox, round(my) + oy
            patch = image[cy - 2 : cy + 3, cx - 2 : cx + 3].reshape(-1, 3).astype(int)
            edge_hits += int(np.abs(patch - np.array(EDGE_COLOR)).max(axis=1).min() < 70)
    assert checked >= 8 and edge_hits >= checked - 1, (edge_hits, checked)
    # The picture has the frame's size: the page background starts right after it.
    assert np.abs(image[oy + height + 4, ox + 10].astype(int) - (26, 23, 21)).max() < 12
    assert np.abs(image[oy + 10, ox + width - 5].astype(int) - person[10, width - 5]).max() < 40


@needs_chromium
@pytest.mark.slow
def test_page_reconnects_after_a_restart(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    port = free_port()
    first = start(runs, tmp_path, "--source", "synthetic:320x240", "--preview", str(port), *model_args(models_dir))
    wait_until(first, port)
    browser = DevTools(tmp_path / "chrome")
    try:
        browser.open(f"http://127.0.0.1:{port}/")
        live = "document.getElementById('live').className === 'dot on'"
        browser.wait_for(f"{live} && document.getElementById('mode').textContent === 'video'")
        browser.wait_for("document.getElementById('video').naturalWidth === 320")
        assert first.stop() == 0
        browser.wait_for("document.getElementById('banner').style.display === 'inline'")  # "reconnecting…"
        second = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", str(port), "--preview-mode",
                       "skeleton", *model_args(models_dir))  # fmt: skip
        wait_until(second, port)
        # Both the events (the mode comes from the new process) and the stream (its frame size) came back.
        browser.wait_for(f"{live} && document.getElementById('mode').textContent === 'skeleton'")
        browser.wait_for("document.getElementById('video').naturalWidth === 160")
        image = cv2.imdecode(np.frombuffer(browser.screenshot(), np.uint8), cv2.IMREAD_COLOR)
        ox, oy = IMAGE_OFFSET
        canvas = np.abs(image[oy + 5 : oy + 115, ox + 5 : ox + 155].astype(int) - 32)
        assert np.percentile(canvas, 90) < 12, "skeleton mode: a blank canvas, not the synthetic picture"
        assert second.stop() == 0
    finally:
        browser.close()


# ---------------------------------------------------------------- the HTTP endpoints


@pytest.mark.slow
def test_stream_events_pose_metrics(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:320x240", "--preview", f"127.0.0.1:{port}",
                "--preview-fps", "5", *model_args(models_dir))  # fmt: skip
    wait_until(run, port)
    time.sleep(0.5)
    # Nothing watches yet: no JPEG was encoded.
    before = metrics(port)
    assert before["edgepose_frames_total"] > 0
    assert before["edgepose_preview_jpeg_frames_total"] == 0

    sock, body = open_stream(port)
    status = body.readline()
    assert status.startswith(b"HTTP/1.") and b" 200 " in status
    headers = []
    while (line := body.readline().strip()) != b"":
        headers.append(line.decode().lower())
    assert any(h.startswith("content-type: multipart/x-mixed-replace; boundary=") for h in headers), headers
    # Paced by the encoder, which starts a picture at most --preview-fps times a second: an upper bound on
    # the pictures made while the test reads, from the time it really took (a busy machine only adds).
    started = time.monotonic()
    encoded_before = metrics(port)["edgepose_preview_jpeg_frames_total"]
    parts = read_parts(body, 10)
    encoded = metrics(port)["edgepose_preview_jpeg_frames_total"] - encoded_before
    elapsed = time.monotonic() - started
    body.close()
    sock.close()
    for jpeg in parts:
        assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
        picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert picture is not None and picture.shape == (240, 320, 3)
    assert encoded <= 5 * elapsed + 2, f"{encoded} pictures in {elapsed:.2f} s at --preview-fps 5"

    # Encoding stops when the last watcher leaves (once the server has seen it go: event order, not a delay).
    deadline = time.monotonic() + 30
    while metrics(port)["edgepose_preview_clients{endpoint=stream}"] != 0:
        assert time.monotonic() < deadline, "the server never noticed the watcher leave"
        time.sleep(0.1)
    time.sleep(1.0)  # a picture the encoder had already started for it is finished by now
    encoded = metrics(port)["edgepose_preview_jpeg_frames_total"]
    time.sleep(1.0)
    after = metrics(port)
    assert after["edgepose_preview_jpeg_frames_total"] == encoded
    assert after["edgepose_frames_total"] > before["edgepose_frames_total"]
    info = [k for k in after if k.startswith("edgepose_backend_info{")]
    assert len(info) == 1 and after[info[0]] == 1 and "model=movenet_single_pose_lightning_ptq.tflite" in info[0]
    assert after["edgepose_stage_latency_seconds_count{stage=invoke}"] > 0
    assert after["edgepose_stage_latency_seconds_bucket{le=+Inf,stage=total}"] > 0
    assert "edgepose_dropped_frames_total" in after and "edgepose_fps" in after
    assert after["edgepose_people"] == 0, "synthetic frames hold nobody"
    assert "edgepose_mqtt_connected" not in after  # MQTT is off

    data = pose(port)
    assert data["width"] == 320 and data["height"] == 240 and len(data["keypoints"]) == 17
    assert data["backend"]["model"].endswith(".tflite") and data["mode"] == "video"
    code, page = get(port, "/")
    assert code == 200 and b"<title>edgepose preview</title>" in page and b"stream.mjpg" in page
    assert get(port, "/nope")[0] == 404
    assert run.stop() == 0


@pytest.mark.slow
def test_events_deliver_every_frame_of_a_finite_source(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    port = free_port()
    frames = 45
    # 10 fps: 4.5 s of frames, time for the /events request to reach a handler before the run ends
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--realtime", "--fps", "10", "--max-frames",
                str(frames), "--preview", str(port), "--output", "-", *model_args(models_dir))  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        assert run.proc.poll() is None and time.monotonic() < deadline, run.stderr()
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except OSError:
            time.sleep(0.05)
    # Last-Event-ID 0: everything since the start (the standard SSE resume), so the count is exact.
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nLast-Event-ID: 0\r\n\r\n".encode())
    body = sock.makefile("rb")
    assert b" 200 " in body.readline()
    events: list[tuple[str, str, dict[str, Any]]] = []
    current: dict[str, str] = {}
    for raw in body:  # until the server ends the stream on close
        line = raw.decode().rstrip("\n")
        if line == "":
            if "data" in current:
                events.append((current.get("event", "message"), current.get("id", ""), json.loads(current["data"])))
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            current[name] = value
    sock.close()
    assert run.proc.wait(30) == 0, run.stderr()
    lines = [json.loads(ln) for ln in run.stdout().splitlines()]
    results = [data for kind, _, data in events if kind == "message"]
    assert len(lines) == frames
    assert len(results) == frames, f"{len(results)} events for {frames} frames"
    assert [r["frame"] for r in results] == [ln["frame"] for ln in lines]
    assert results == lines
    ids = [int(i) for kind, i, _ in events if kind == "message"]
    assert ids == list(range(1, frames + 1))
    assert any(kind == "stats" for kind, _, _ in events)


def _read_messages(body: Any, count: int) -> list[bytes]:
    """Read Server-Sent Events from an open ``/events`` body until ``count`` result messages came (raw bytes)."""
    messages: list[bytes] = []
    event = b""
    while len(messages) < count:
        line = body.readline()
        assert line, "the event stream ended"
        event += line
        if line == b"\n":
            if event.startswith(b"id: "):  # a result; stats events start with "event: stats"
                messages.append(event)
            event = b""
    return messages


def test_events_encode_each_result_once_for_all_clients() -> None:
    """Three event clients, 20 results: 20 encodings (not 60), and every client gets the same bytes."""
    encoded: list[int] = []

    class Counted(PoseResult):  # a real result that counts its JSON encodings
        def to_dict(self) -> dict[str, Any]:
            encoded.append(self.frame)
            return super().to_dict()

    def result(frame: int) -> PoseResult:
        keypoints = np.tile(np.array([[10.0 + frame, 20.0, 0.9]], np.float32), (17, 1))
        return Counted(frame=frame, ts=1_700_000_000.0 + frame, width=64, height=48, keypoints=keypoints)

    sink = PreviewSink(PreviewConfig(listen="127.0.0.1:0"), PipelineStats(0.2), BackendInfo("r", "cpu", 1, "m"), 0.2,
                       5.0)  # fmt: skip
    sink.start()
    assert sink.address is not None
    clients = []
    try:
        for frame in range(10):
            sink.publish(result(frame))
        for _ in range(3):  # Last-Event-ID 0: from the first result on, whenever the client's request is served
            sock = socket.create_connection(sink.address, timeout=10)
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 0\r\n\r\n")
            body = sock.makefile("rb")
            assert b" 200 " in body.readline()
            clients.append((sock, body))
        for frame in range(10, 20):
            sink.publish(result(frame))
        received = [_read_messages(body, 20) for _, body in clients]
    finally:
        for sock, body in clients:
            body.close()
            sock.close()
        sink.close()
    assert received[0] == received[1] == received[2]
    assert [int(m.split(b"\n", 1)[0][4:]) for m in received[0]] == list(range(1, 21))
    assert [json.loads(m.split(b"data: ", 1)[1])["frame"] for m in received[0]] == list(range(20))
    assert sorted(encoded) == list(range(20)), f"{len(encoded)} encodings of 20 results for 3 clients"


class Camera:
    """A network camera served over HTTP as MJPEG that can be told to freeze."""

    def __init__(self) -> None:
        frame = np.zeros((120, 160, 3), np.uint8)
        frame[:] = (40, 120, 200)
        self.jpeg = cv2.imencode(".jpg", frame)[1].tobytes()
        self.flowing = threading.Event()
        self.flowing.set()
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not camera.closed:
                        if camera.flowing.is_set():
                            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(camera.jpeg)}\r\n\r\n"
                            self.wfile.write(head.encode() + camera.jpeg + b"\r\n")
                        time.sleep(1 / 20)
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.closed = False
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cam.mjpg"

    def close(self) -> None:
        self.closed = True
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_healthz_turns_503_when_the_source_stalls(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    camera = Camera()
    try:
        port = free_port()
        run = start(runs, tmp_path, "--source", camera.url, "--preview", str(port), *model_args(models_dir),
                    env={"EDGEPOSE_SOURCE_STALE_AFTER_S": "1.0"})  # fmt: skip
        assert wait_until(run, port).startswith(b"ok")
        camera.flowing.clear()
        reason = wait_until(run, port, status=503, timeout=15)
        assert reason.startswith(b"stale: last frame") and b"limit 1 s" in reason, reason
        camera.flowing.set()
        assert wait_until(run, port, timeout=15).startswith(b"ok")
        assert run.stop() == 0, run.stderr()
    finally:
        camera.close()


# ---------------------------------------------------------------- a stalled client never slows inference


@pytest.mark.slow
def test_stalled_client_never_stalls_the_pipeline(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    """A client that asks for the stream and never reads: inference goes on, its frames are skipped and
    counted, the encoder stops working for it, and it is cut off after the socket timeout."""
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:320x240", "--preview", str(port), *model_args(models_dir))
    wait_until(run, port)
    sock, _ = open_stream(port, rcvbuf=4096)  # connects, asks for the stream, never reads
    try:
        # The server registers the client once its handler has read the request: wait for that, not a delay.
        registered = time.monotonic() + 30
        while (snapshot := metrics(port))["edgepose_preview_clients{endpoint=stream}"] != 1:
            assert time.monotonic() < registered, "the server never registered the stream client"
            time.sleep(0.05)
        processed_at_start = snapshot["edgepose_frames_total"]
        # The loop keeps processing while the client reads nothing: 200 more frames pass.
        first = pose(port)["frame"]
        deadline = time.monotonic() + 120
        while pose(port)["frame"] < first + 200:
            assert time.monotonic() < deadline, "inference stopped while a preview client stalled"
            time.sleep(0.2)
        # Once its socket is full, the encoder does no more work for it; frames still flow meanwhile.
        last = -1.0
        while (count := metrics(port)["edgepose_preview_jpeg_frames_total"]) != last:
            assert time.monotonic() < deadline, "the encoder kept working for a client that never reads"
            last = count
            time.sleep(1.0)
        frame = pose(port)["frame"]
        while pose(port)["frame"] < frame + 50:
            assert time.monotonic() < deadline, "inference stopped while the stalled client's write blocked"
            time.sleep(0.2)
        assert metrics(port)["edgepose_preview_jpeg_frames_total"] == last
        # The server cuts it off when its write has waited SOCKET_TIMEOUT_S, and counts what it skipped.
        # Frame numbers count the source's frames, dropped ones too; what the client skipped is counted in
        # processed results, so the bound comes from the last count seen while it was still connected.
        processed_while_connected = 0.0
        while (snapshot := metrics(port))["edgepose_preview_clients{endpoint=stream}"] != 0:
            assert time.monotonic() < deadline, "the stalled client was never cut off"
            processed_while_connected = snapshot["edgepose_frames_total"] - processed_at_start
            time.sleep(0.5)
        after = metrics(port)
        assert after["edgepose_preview_dropped_clients_total"] == 1
        # (the count and the hub's publishing can be one result apart: slack of 2)
        assert after["edgepose_preview_skipped_frames_total"] >= processed_while_connected - last - 2
    finally:
        sock.close()
    assert run.stop() == 0


# ---------------------------------------------------------------- privacy: token and modes


def test_non_loopback_needs_a_token(models_dir: Path) -> None:
    proc = run_cli("run", "--source", "synthetic:64x64", "--max-frames", "1", "--preview", f"0.0.0.0:{free_port()}",
                   *model_args(models_dir))  # fmt: skip
    assert_one_line_error(proc, 2, "token")


@pytest.mark.slow
def test_token_is_required_and_never_logged(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    secret = "s3cret-preview-token"
    token_file = tmp_path / "token"
    token_file.write_text(secret + "\n")
    port = free_port()
    run = start(runs, tmp_path, "-v", "--source", "synthetic:160x120", "--preview", f"0.0.0.0:{port}",
                "--preview-token-file", str(token_file), *model_args(models_dir))  # fmt: skip
    wait_until(run, port)  # /healthz needs no token
    for path in ("/", "/pose", "/metrics", "/events", "/stream.mjpg", "/pose?token=wrong"):
        code, _ = get(port, path)
        assert code == 401, path
    assert get(port, "/pose", {"Authorization": "Bearer nope"})[0] == 401
    assert get(port, "/pose", {"Authorization": f"Bearer {secret}"})[0] == 200
    assert get(port, f"/pose?token={secret}")[0] == 200
    assert get(port, f"/?token={secret}")[0] == 200
    sock, body = open_stream(port, f"/stream.mjpg?token={secret}")
    assert b" 200 " in body.readline()
    body.close()
    sock.close()
    assert run.stop() == 0
    assert secret not in run.stderr() and secret not in run.stdout()
    assert "token=***" in run.stderr()  # the request log shows the redacted query

    proc = run_cli("run", "--preview", "0.0.0.0:1", "--preview-token", secret, "--print-config")
    assert proc.returncode == 0 and secret not in proc.stdout and 'token = "***"' in proc.stdout


@pytest.mark.slow
def test_token_from_systemd_credentials_and_insecure(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "preview_token").write_text("from-credentials")
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", f"0.0.0.0:{port}",
                *model_args(models_dir), env={"CREDENTIALS_DIRECTORY": str(creds)})  # fmt: skip
    wait_until(run, port)
    assert get(port, "/pose")[0] == 401
    assert get(port, "/pose", {"Authorization": "Bearer from-credentials"})[0] == 200
    assert run.stop() == 0

    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", f"0.0.0.0:{port}",
                "--preview-insecure", "--preview-mode", "skeleton", *model_args(models_dir))  # fmt: skip
    wait_until(run, port)
    assert pose(port)["mode"] == "skeleton"
    sock, body = open_stream(port)
    body.readline()
    while body.readline().strip():
        pass
    jpeg = read_parts(body, 1)[0]
    body.close()
    sock.close()
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    # skeleton mode: a blank dark canvas, not the synthetic gradient (40…200 grey) with its bright block.
    assert picture.shape == (120, 160, 3) and np.median(picture) < 40
    assert run.stop() == 0


def test_preview_without_prometheus_client(models_dir: Path, tmp_path: Path, runs: list[Run]) -> None:
    """Without the `preview` extra the page still works; /metrics says what to install."""
    blocker = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'prometheus_client':\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from edgepose.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    port = free_port()
    run = start(runs, tmp_path, "--source", "synthetic:160x120", "--preview", str(port), *model_args(models_dir),
                python=f"-c {blocker}")  # fmt: skip
    wait_until(run, port)
    assert pose(port)["width"] == 160
    code, body = get(port, "/metrics")
    assert code == 501 and b"pip install 'edgepose[preview]'" in body
    assert run.stop() == 0
    assert "prometheus-client" in run.stderr()
