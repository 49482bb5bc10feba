"""The preview shows the analytics: ``/pose`` carries the state and the last events; the page lists them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from browser import loaded_page, need_chromium
from clips import FALL_SIZE, render_tilted, write_frames, write_visit_clip
from conftest import model_args
from stickfigure import segments
from test_preview import Run, free_port, open_stream, pose, read_parts, start, wait_until

from edgepose.sinks.drawing import FALLEN_COLOR, LABEL_COLOR, SAFE_ZONE_COLOR


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


def _near(picture: np.ndarray, color: tuple[int, int, int], within: int = 60) -> np.ndarray:
    """A mask of the pixels within ``within`` (summed over B, G, R) of ``color``: JPEG moves colours a little."""
    return np.asarray(np.abs(picture.astype(int) - np.array(color)).sum(axis=2) < within)


@pytest.mark.slow
def test_the_stream_draws_zones_ids_postures_and_a_fallen_person(
    models_dir: Path, testdata: Path, tmp_path: Path, runs: list[Run]
) -> None:
    """The real photo lying on the floor from the first frame (8 s), getting up (1.5 s), standing (3 s), paced."""
    person = cv2.imread(str(testdata / "woman_standing.png"), cv2.IMREAD_UNCHANGED)
    tilt = segments((8.0, 88.0, 88.0), (1.5, 88.0, 0.0), (3.0, 0.0, 0.0))
    clip = write_frames(tmp_path / "lie.avi", [render_tilted(person, tilt(i / 15)) for i in range(round(12.5 * 15))])
    config = tmp_path / "edgepose.toml"
    config.write_text('[analytics]\nlong_lie_s = 2.0\n\n[[zones]]\nname = "sofa"\n'
                      "polygon = [[0.7, 0.05], [0.95, 0.05], [0.95, 0.3], [0.7, 0.3]]\nfalls = false\n")  # fmt: skip
    port = free_port()
    run = start(runs, tmp_path, "--config", str(config), "--source", str(clip), "--realtime", "--preview", str(port),
                "--preview-mode", "skeleton", "--preview-fps", "5", *model_args(models_dir))  # fmt: skip
    wait_until(run, port)
    sock, body = open_stream(port)
    try:
        fallen = None
        deadline = time.monotonic() + 60
        while fallen is None:
            assert time.monotonic() < deadline and run.proc.poll() is None, run.stderr()
            (jpeg,) = read_parts(body, 1)
            picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            if _near(picture, FALLEN_COLOR).sum() > 200:  # the red box and the red label band
                fallen = picture
    finally:
        body.close()
        sock.close()
    assert fallen.shape == (FALL_SIZE[1], FALL_SIZE[0], 3)
    # the sofa's outline (green: lying there is no alarm): its top edge, left to right
    top, left, right = round(0.05 * 239), round(0.7 * 319), round(0.95 * 319)
    assert _near(fallen[top - 1 : top + 2, left + 5 : right - 5], SAFE_ZONE_COLOR).any(axis=0).all()
    # the red band above the person carries white text (her id and posture: "1 lying FALLEN")
    red = np.argwhere(_near(fallen, FALLEN_COLOR))
    y0 = red[:, 0].min()
    band = fallen[y0 : y0 + 10]
    assert _near(band, LABEL_COLOR, 120).sum() > 10
    assert run.stop() == 0
