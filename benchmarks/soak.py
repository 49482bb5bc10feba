"""Soak test: minutes of replay through the whole service, with the broker killed and restarted on a schedule.

Runs the real ``edgepose run`` on a looped clip (``--realtime --loop``) publishing to a real mosquitto
on a free loopback port, with the HTTP preview on, and samples the process every few seconds: resident
memory, open file descriptors and threads. Every ``--restart-every`` seconds the broker is killed
(SIGKILL) and started again on the same port after ``--outage`` seconds. At the end it reports the RSS
slope after warm-up, the fd and thread ranges, p99 capture→result latency from the pose messages, and
the pose messages the sink could not account for.

    .venv/bin/python benchmarks/soak.py --minutes 30            # a real soak; a Markdown table
    .venv/bin/python benchmarks/soak.py --minutes 2 --json      # what tests/test_soak.py runs in CI

Needs ``mosquitto`` on the PATH and the models (``EDGEPOSE_MODEL_MIRROR`` or ``--models-dir``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from broker import Broker, free_port  # noqa: E402  (the tests' own real-mosquitto helper)
from clips import default_script, write_clip  # noqa: E402

from edgepose.sources.images import load_image  # noqa: E402

SAMPLE_EVERY_S = 2.0
DEVICE = "soak"


class PoseCounter:
    """A paho subscriber that counts pose messages and keeps their capture→result latency."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.poses = 0
        self.latency_ms: list[float] = []
        self.stats: dict[str, Any] = {}
        self.status: list[str] = []
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-{os.getpid()}")
        self.client.on_connect = lambda c, *_: c.subscribe(f"edgepose/{DEVICE}/#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1.0)
        self.client.connect_async("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        topic = msg.topic.rsplit("/", 1)[-1]
        if topic == "pose":
            self.poses += 1
            self.latency_ms.append(float(json.loads(msg.payload)["latency_ms"].get("total", 0.0)))
        elif topic == "stats":
            self.stats = json.loads(msg.payload)
        elif topic == "status":
            self.status.append(msg.payload.decode())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def sample(pid: int) -> dict[str, float]:
    """RSS (MB), threads and open file descriptors of a process, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {
        "t": time.monotonic(),
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def run(minutes: float, restart_every_s: float, outage_s: float, models_dir: str, warmup_s: float) -> dict[str, Any]:
    """Run the soak; return the report."""
    folder = Path(tempfile.mkdtemp(prefix="edgepose-soak-"))
    person = load_image(Path(os.environ.get("EDGEPOSE_TESTDATA", ROOT.parent / "shared" / "testdata"))
                        / "woman_standing.png")  # fmt: skip
    clip = write_clip(folder / "clip.avi", person, default_script(), fps=15.0)
    broker = Broker(folder / "broker").start()
    counter = PoseCounter(broker.port)
    cmd = [sys.executable, "-m", "edgepose", "run", "--source", str(clip), "--realtime", "--loop",
           "--mqtt", f"mqtt://127.0.0.1:{broker.port}", "--device-id", DEVICE, "--preview", str(free_port()),
           "--idle", "off", "--models-dir", models_dir]  # fmt: skip
    env = {**os.environ, "EDGEPOSE_MQTT_STATS_INTERVAL_S": "2", "EDGEPOSE_MQTT_RECONNECT_MAX_S": "2"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    stderr_lines: list[str] = []
    threading.Thread(target=lambda: stderr_lines.extend(proc.stderr or []), daemon=True).start()
    samples: list[dict[str, float]] = []
    restarts = 0
    started = time.monotonic()
    end = started + 60 * minutes
    next_restart = started + restart_every_s
    try:
        while (now := time.monotonic()) < end:
            if proc.poll() is not None:
                raise SystemExit(f"edgepose exited early ({proc.returncode}): {''.join(stderr_lines[-5:])}")
            samples.append(sample(proc.pid))
            if now >= next_restart and now + outage_s + 10 < end:
                broker.kill()
                time.sleep(outage_s)
                broker.start()
                restarts += 1
                next_restart = time.monotonic() + restart_every_s
            time.sleep(SAMPLE_EVERY_S)
        time.sleep(3)  # the last stats message
        final_stats = dict(counter.stats)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        finally:
            counter.close()
            broker.stop()
    steady = [s for s in samples if s["t"] - started >= warmup_s] or samples
    times = np.array([s["t"] - started for s in steady]) / 60.0
    rss = np.array([s["rss_mb"] for s in steady])
    slope = float(np.polyfit(times, rss, 1)[0]) if len(steady) >= 3 else 0.0
    mqtt = final_stats.get("mqtt", {})
    frames = int(final_stats.get("frames", 0))
    counted = sum(int(mqtt.get(k, 0)) for k in ("dropped", "overflow", "rate_limited", "backlog_skipped"))
    return {
        "minutes": round((time.monotonic() - started) / 60, 2),
        "broker_restarts": restarts,
        "exit_code": proc.returncode,
        "frames": frames,
        "pose_messages": counter.poses,
        "pose_dropped_counted": counted,
        "pose_unaccounted": max(0, frames - counter.poses - counted),
        "status_online_seen": counter.status.count("online"),
        "mqtt_reconnects": int(mqtt.get("reconnects", 0)),
        "rss_mb": {
            "start": round(float(rss[0]), 1),
            "end": round(float(rss[-1]), 1),
            "max": round(float(rss.max()), 1),
            "slope_mb_per_min": round(slope, 3),
        },
        "threads": {"min": min(s["threads"] for s in steady), "max": max(s["threads"] for s in steady)},
        "fds": {"min": min(s["fds"] for s in steady), "max": max(s["fds"] for s in steady)},
        "latency_ms": {
            "p50": round(float(np.percentile(counter.latency_ms, 50)), 2) if counter.latency_ms else None,
            "p99": round(float(np.percentile(counter.latency_ms, 99)), 2) if counter.latency_ms else None,
        },
        "samples": len(samples),
        "warmup_s": warmup_s,
    }


def main() -> int:
    """Parse the flags, run the soak, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--restart-every", type=float, default=60.0, metavar="S", help="broker restart period")
    parser.add_argument("--outage", type=float, default=3.0, metavar="S", help="how long the broker stays down")
    parser.add_argument("--warmup", type=float, default=20.0, metavar="S", help="samples before this are ignored")
    parser.add_argument("--models-dir", default=str(ROOT / "models"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args.minutes, args.restart_every, args.outage, args.models_dir, args.warmup)
    if args.json:
        print(json.dumps(report))
        return 0
    rss, lat = report["rss_mb"], report["latency_ms"]
    print("| minutes | broker restarts | RSS start → end (MB) | RSS slope (MB/min) | fds | threads | "
          "p99 latency (ms) | pose messages | dropped (counted) | unaccounted |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {report['minutes']} | {report['broker_restarts']} | {rss['start']} → {rss['end']} | "
          f"{rss['slope_mb_per_min']} | {report['fds']['min']}–{report['fds']['max']} | "
          f"{report['threads']['min']}–{report['threads']['max']} | {lat['p99']} | {report['pose_messages']} | "
          f"{report['pose_dropped_counted']} | {report['pose_unaccounted']} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
