"""Count the rows Home Assistant's recorder would write for edgepose's entities, on a real mosquitto.

    .venv/bin/python benchmarks/recorder_rows.py [--seconds 60] [--fps 30] [--models-dir DIR] [--edgepose-path DIR]

Runs ``edgepose run --realtime --ha-discovery`` (defaults otherwise) on a clip of a person in view who
sways a little (as a real person does: the pose score changes every frame), subscribes to everything on a
private mosquitto, then replays each announced entity the way Home Assistant keeps its state: a row each
time the shown state (``unavailable`` included) or the attributes change. Prints rows per entity for the
run and scaled to an hour. ``--edgepose-path`` runs another checkout's code (from that folder, with ``PYTHONPATH``
set to it), for a before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTO = Path(os.environ.get("EDGEPOSE_TESTDATA", ROOT.parent / "shared" / "testdata")) / "woman_standing.png"
MODELS = os.environ.get("EDGEPOSE_MODEL_MIRROR", str(ROOT.parent / "shared" / "models"))


def clip(path: Path, seconds: float, fps: float) -> Path:
    """A 640×480 MJPG clip: the person standing in a room, swaying ±20 px and breathing ±2 % in size."""
    person = cv2.imread(str(PHOTO))[:, :, :3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    for i in range(round(seconds * fps)):
        t = i / fps
        scale = 0.65 * (1 + 0.02 * np.sin(2 * np.pi * t / 3.1))
        small = cv2.resize(person, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        frame = np.full((480, 640, 3), (96, 112, 104), np.uint8)
        x0 = int(250 + 20 * np.sin(2 * np.pi * t / 4.3))
        h, w = min(small.shape[0], 470), min(small.shape[1], 640 - x0)
        frame[5 : 5 + h, x0 : x0 + w] = small[:h, :w]
        writer.write(frame)
    writer.release()
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shown_state(config: dict[str, Any], payload: bytes) -> str | None:
    """What the entity's ``value_template`` renders (the templates edgepose uses), or ``None`` to ignore it."""
    template = config.get("value_template", "")
    if not template:
        return payload.decode()
    data = json.loads(payload)
    if field := re.fullmatch(r"\{\{ value_json\.(\w+) \}\}", template):
        return str(data.get(field.group(1)))
    if field := re.fullmatch(r"\{\{ value_json\.(\w+) or 'None' \}\}", template):  # Posture
        return str(data.get(field.group(1)) or "None")
    if zone := re.search(r"value_json\.zones\['([\w-]+)'\]", template):  # a zone's occupancy or count
        count = data.get("zones", {}).get(zone.group(1))
        if count is None:
            return "None"
        return ("ON" if count > 0 else "OFF") if "'ON'" in template else str(count)
    if "value_json.fallen" in template:
        return "None" if data.get("fallen") is None else ("ON" if data["fallen"] else "OFF")
    if "value_json.state == 'ok'" in template:
        return "ON" if data.get("state") == "ok" else "OFF"
    if "event_type" in template:  # the event entity: one row per event it shows
        return f"{data.get('type')}@{data.get('ts')}" if data.get("type") in config["event_types"] else None
    raise ValueError(f"unknown template {template!r}")


def attributes(config: dict[str, Any], payload: bytes) -> str:
    """The entity's attributes from ``json_attributes_topic``: the fields its template names (else all of them)."""
    data = json.loads(payload)
    if names := re.findall(r"value_json\.(\w+)", config.get("json_attributes_template", "")):
        return json.dumps({name: data.get(name) for name in names}, sort_keys=True)
    return json.dumps(data, sort_keys=True)


def rows(config: dict[str, Any], messages: list[tuple[str, bytes, float]], start: float, end: float) -> int:
    """Return the rows written for one entity from ``start`` to ``end``: changes of (available, state, attributes)."""
    heard: dict[str, bool] = {}
    availability = config.get("availability", [])
    state, attrs, last, count = "unknown", "", None, 0
    for topic, payload, at in messages:
        for entry in availability:
            if topic == entry["topic"]:
                heard[topic] = payload.decode() == entry.get("payload_available", "online")
        if topic == config.get("state_topic") and payload:
            rendered = shown_state(config, payload)
            if rendered is not None:
                state = rendered
        if topic == config.get("json_attributes_topic") and payload:
            attrs = attributes(config, payload)
        if config.get("availability_mode") == "all":
            available = all(heard.get(e["topic"], False) for e in availability)
        else:
            available = any(heard.values())
        now = (available, state if available else "", attrs)
        if now != last:
            count += start <= at <= end
            last = now
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--models-dir", default=MODELS)
    parser.add_argument("--edgepose-path", default="", help="run this checkout's edgepose (PYTHONPATH)")
    args = parser.parse_args()
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    with tempfile.TemporaryDirectory() as tmp:
        folder, port = Path(tmp), free_port()
        (folder / "m.conf").write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        broker = subprocess.Popen([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(folder / "m.conf")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            time.sleep(0.5)
            messages: list[tuple[str, bytes, float]] = []
            lock = threading.Lock()

            def keep(_c: Any, _u: Any, msg: Any) -> None:
                with lock:
                    messages.append((msg.topic, bytes(msg.payload), time.monotonic()))

            sub = paho.Client(CallbackAPIVersion.VERSION2)
            sub.on_message = keep
            sub.connect("127.0.0.1", port)
            sub.subscribe("#", qos=1)
            sub.loop_start()
            video = clip(folder / "person.avi", args.seconds, args.fps)
            env = {**os.environ, "PYTHONPATH": args.edgepose_path} if args.edgepose_path else dict(os.environ)
            run = subprocess.run([sys.executable, "-m", "edgepose", "run", "--source", str(video), "--realtime",
                                  "--mqtt", f"mqtt://127.0.0.1:{port}", "--device-id", "rows", "--ha-discovery",
                                  "--models-dir", args.models_dir], env=env, cwd=args.edgepose_path or None,
                                 capture_output=True, text=True)  # fmt: skip
            time.sleep(1.0)
            sub.loop_stop()
        finally:
            broker.terminate()
            broker.wait()
    if run.returncode != 0:
        print(run.stderr, file=sys.stderr)
        return 1
    processed = re.search(r"processed (\d+) frames", run.stderr)
    print(f"{args.seconds:g} s at {args.fps:g} fps, {processed.group(1) if processed else '?'} frames processed, "
          f"{len(messages)} messages")  # fmt: skip
    configs = {
        t: json.loads(p) for t, p, _ in messages if t.startswith("homeassistant/") and t.endswith("/config") and p
    }
    poses = [at for t, _, at in messages if t == "edgepose/rows/pose"]
    start, end = poses[0] + 5.0, poses[-1]
    hour = 3600 / (end - start)
    total = 0
    print(f"steady part: {end - start:.1f} s; {len(poses)} pose messages in the run")
    print(f"{'entity':<16} {'rows':>6} {'rows/hour':>10}")
    for topic, config in sorted(configs.items()):
        if "state_topic" not in config:
            continue  # a button: no state
        n = rows(config, messages, start, end)
        total += n
        print(f"{topic.split('/')[-2]:<16} {n:>6} {round(n * hour):>10}")
    print(f"{'all':<16} {total:>6} {round(total * hour):>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
