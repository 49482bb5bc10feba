"""The preview shows the analytics: ``/pose`` carries the state and the last events; the page lists them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from browser import loaded_page, need_chromium
from clips import write_visit_clip
from conftest import model_args
from test_preview import Run, free_port, pose, start, wait_until


@pytest.mark.slow
def test_preview_shows_state_and_last_events(models_dir: Path, testdata: Path, tmp_path: Path, runs: list[Run]) -> None:
    person = np.ascontiguousarray(cv2.imread(str(testdata / "woman_standing.png"))[:, :, :3])
    # Paced at the clip's 15 fps: 2 s of the empty room, then the person stands there for 100 s, far
    # longer than enter_s and a browser visit, so the page must say "present" whenever it is read.
    clip = write_visit_clip(tmp_path / "visit.avi", person, 30, 1500, 0)
    port = free_port()
    run = start(runs, tmp_path, "--source", str(clip), "--realtime", "--preview", str(port), "--exercise", "squat",
                *model_args(models_dir))  # fmt: skip
    wait_until(run, port)
    deadline = time.monotonic() + 90
    latest = pose(port)
    while "person_entered" not in [e["type"] for e in latest["recent_events"]]:
        assert time.monotonic() < deadline, latest["recent_events"]
        assert run.proc.poll() is None, run.stderr()
        time.sleep(0.2)
        latest = pose(port)
    assert set(latest["state"]) == {"present", "fallen", "exercise", "reps", "people", "zones"}
    assert latest["state"]["present"] is True
    assert latest["state"]["exercise"] == "squat" and isinstance(latest["events"], list)
    entered = next(e for e in latest["recent_events"] if e["type"] == "person_entered")
    assert entered["entries"] >= 1 and entered["ts"] <= latest["ts"]
    need_chromium()  # the page's part (a failure under .ci/run)
    ready = ("document.getElementById('exercise').textContent === 'squat'"
             " && document.body.innerHTML.includes('<td>person_entered</td>')")  # fmt: skip
    dom = loaded_page(f"http://127.0.0.1:{port}/", tmp_path / "shot.png", tmp_path / "chrome", ready)

    def cell(element: str) -> str:
        found = re.search(rf'id="{element}"[^>]*>([^<]*)<', dom)
        assert found, (element, dom[:4000])
        return found.group(1)

    assert (cell("exercise"), cell("reps"), cell("fallen"), cell("present")) == ("squat", "0", "no", "present")
    assert "<td>person_entered</td>" in dom
    assert pose(port)["state"]["present"] is True, "still there: the page was read while the person stood"
    assert run.proc.poll() is None, run.stderr()
    assert run.stop() == 0
