"""A 2-minute soak in CI: replay with broker restarts; fds and threads stay flat, memory growth stays bounded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, cli_env


@pytest.mark.slow
def test_two_minute_soak_with_broker_restarts(models_dir: Path) -> None:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--minutes", "2", "--restart-every", "35",
           "--outage", "3", "--warmup", "30", "--models-dir", str(models_dir), "--json"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=cli_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\nsoak: {json.dumps(report)}")
    assert report["exit_code"] == 0, "SIGTERM ended the run cleanly"
    assert report["broker_restarts"] >= 2
    assert report["mqtt_reconnects"] >= report["broker_restarts"], "it reconnected after every restart"
    assert report["status_online_seen"] >= report["broker_restarts"] + 1, "QoS 1 'online' re-sent each time"
    assert report["pose_messages"] > 0 and report["frames"] > 0
    # Counts and bounds, never speed: nothing leaks per frame or per reconnect.
    assert report["fds"]["max"] - report["fds"]["min"] <= 6, report["fds"]
    assert report["threads"]["max"] - report["threads"]["min"] <= 4, report["threads"]
    rss = report["rss_mb"]
    assert rss["max"] - rss["start"] <= 40, rss
